# ---
# jupyter:
#   jupytext:
#     formats: notebooks///ipynb,py_percent///py:percent
#     notebook_metadata_filter: kernelspec,jupytext,colab,accelerator
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 5 — Fine-tuning for Q&A
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/your-username/GPT-0.5M/blob/main/notebooks/05_finetuning.ipynb)
#
# You will learn how to turn the pretrained book model into a small question answerer: the Q&A
# data and its four splits (held out by question and by position in the book), one prompt
# format with an end marker, closed-book and open-book (a passage retrieved from the book
# first), a loss that grades only the answer, a retriever written from scratch, and how the
# recipe was chosen on a dev split carved from the training facts.
#
# - **Reads:** the base model `checkpoints/full/base.pt` from lesson 3 (a short stand-in is
#   trained if it is missing), the book, `data/alice_qa.jsonl` and the recipe comparison
#   `tests/qa_recipes.json`.
# - **Writes:** the fine-tuned model `checkpoints/full/finetuned.pt`, used by lesson 6.
# - **Runtime:** on a 2-core CPU, several minutes (the fine-tune); a few minutes on a GPU.
#   The progress bars show the estimate.

# %% [markdown]
# **What the original notebook got wrong, and where this lesson fixes it**
#
# - *Fine-tuned on 20 pairs.* Here: the handcrafted records that §1.2 counts, every answer
#   backed by a quote from the book (§1).
# - *One vocabulary for pretraining, another for fine-tuning.* Here: one vocabulary, checked
#   (§1.1).
# - *Trained on `<q>`, prompted with `Q:`.* Here: one prompt function for training, generation
#   and evaluation (§2).
# - *Answers never stopped.* Here: an `<end>` marker the model learns to write; generation stops
#   there (§2, §8.5).
# - *Graded the question too, measured nothing.* Here: an answer-only loss (§3), a recipe chosen
#   on a dev split (§5), loss curves and a forgetting check (§8–§9).

# %% [markdown]
# ## 0. Setup
# This first cell makes the shared module `utils.py` importable (in Colab it clones the
# repository first) and prints the device.

# %% cellView="form"
# @title Setup: make `utils` importable (in Colab, clone the repository once)
import os, subprocess, sys  # noqa: E401, I001  (later cells use these too)

REPO, BRANCH = "https://github.com/your-username/GPT-0.5M", "main"  # a fork: set its address
if "google.colab" in sys.modules and not os.path.isdir("/content/GPT-0.5M"):
    subprocess.run(["git", "clone", "-q", "--depth=1", "-b", BRANCH, REPO, "/content/GPT-0.5M"])
sys.path[:0] = {"/content/GPT-0.5M/notebooks", os.path.abspath("notebooks")} - set(sys.path)
import utils  # not found in Colab? The clone failed: set REPO above to your fork's address

device = utils.setup_lesson(REPO, BRANCH)

# %% [markdown]
# The other imports of this lesson.

# %%
import dataclasses
import math
import time

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

# %% [markdown]
# ## 1. The two inputs: the base model and the Q&A data
# ### 1.1 One vocabulary for everything
# `utils.load_corpus()` reads the book and the Q&A file and builds **one** character vocabulary
# from both. The base model from lesson 3 was pretrained with exactly this vocabulary, so every
# character of every question and answer already has an embedding. `load_or_pretrain` refuses a
# checkpoint whose vocabulary differs; the assert below makes that visible.

# %%
corpus = utils.load_corpus()
tokenizer = corpus.tokenizer
base, base_tokenizer, _ = utils.load_or_pretrain(corpus, device)
assert base_tokenizer == tokenizer  # the vocabulary saved with the base model is the same one
block_size = base.config.block_size

# %%
# NBVAL_CHECK_OUTPUT
print(f"vocabulary: {tokenizer.vocab_size} characters, shared by pretraining and fine-tuning")
print(f"context: {block_size} characters | parameters: {base.num_parameters():,}")

# %% [markdown]
# ### 1.2 How many questions, in which split
# Each record has a `question`, a short `answer`, the `chapter`, an `evidence` quote from the
# book that supports the answer, a `fact` id and a `split`:
#
# - **train** — every fact here is asked in several phrasings. Only these records are trained on.
# - **paraphrase** — the same facts, asked yet another way. Did the model learn the *fact*, or
#   only the *string* of the training questions?
# - **unseen** — facts from the book's training text that no Q&A record trains on. The model
#   read them while pretraining; can it answer them?
# - **never_read** — facts whose evidence lies only in the held-out last 10% of the book. The
#   model never read them at all: only a passage in the prompt can help.
# - **reversal** — the other direction of a trained fact ("Who is Dinah?" is trained, "What is
#   Alice's cat called?" is not). Field `reverse_of` names the partner. Does training one
#   direction teach the other?

# %%
SPLITS = ("train", "paraphrase", "unseen", "never_read", "reversal")
qa = {name: utils.qa_split(corpus.qa, name) for name in SPLITS}

# %%
# NBVAL_CHECK_OUTPUT
print(f"Q&A records: {len(corpus.qa)}")
for name, records in qa.items():
    n_facts = len({r["fact"] for r in records})
    print(f"  {name:<10} {len(records):>4} questions about {n_facts:>3} facts")

# %% [markdown]
# ### 1.3 A few records, with the evidence that backs them
# Here is one fact in all its phrasings (train and paraphrase), and one unseen record. The
# evidence quote is never shown to the model; it is there so anyone can check the gold answer
# against the book, and so we can tell whether a retrieved passage contains it (§4).

# %%
fact = qa["train"][0]["fact"]
examples = [r for r in corpus.qa if r["fact"] == fact] + [qa["unseen"][0]]
for r in examples:
    print(f"[{r['split']:<10}] ch.{r['chapter']:>2}  Q: {r['question']}")
print(f"\nanswer: {examples[0]['answer']} | evidence: “{examples[0]['evidence']}”")

# %% [markdown]
# ### 1.4 Questions per chapter
# The questions cover all twelve chapters. The chart stacks the four splits per chapter; the
# never-read facts sit, by construction, at the end of the book.

# %%
chapters = sorted({r["chapter"] for r in corpus.qa})
fig, ax = plt.subplots(figsize=(7, 3.5))
bottom = [0] * len(chapters)
for name in SPLITS:
    counts = [sum(r["chapter"] == c for r in qa[name]) for c in chapters]
    ax.bar(chapters, counts, bottom=bottom, label=name)
    bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
ax.set(xlabel="chapter", ylabel="questions", title="Q&A records per chapter and split")
ax.set_xticks(chapters)
ax.set_ylim(0, 1.25 * max(bottom))  # room for the legend above the bars
ax.legend(ncol=4, loc="upper center")
plt.show()

# %% [markdown]
# ### 1.5 Held out by question *and* by position in the book
# - The held-out splits are our exam. A question the model was trained on measures memory.
# - "Never trained on" also means "never tuned on": no step count, learning rate or recipe is
#   chosen by their scores (§5 carves a dev split from train for that).
# - Held out by *position* too: the last 10% of the book is the validation text. A train
#   record whose evidence lies there would teach the model the held-out text. Every train,
#   paraphrase and unseen record quotes the training 90%; every never-read record quotes only
#   the last 10%.

# %%
train_text_squashed = utils.squash(corpus.train_text)
in_training_text = {
    r["fact"]: utils.squash(r["evidence"]) in train_text_squashed for r in corpus.qa
}
train_facts = {r["fact"] for r in qa["train"]}
assert all(in_training_text[r["fact"]] for r in corpus.qa if r["split"] != "never_read")
assert not any(in_training_text[r["fact"]] for r in qa["never_read"])
assert all(r["fact"] in train_facts for r in qa["paraphrase"])  # same facts, new wording
assert not any(r["fact"] in train_facts for r in qa["unseen"] + qa["never_read"] + qa["reversal"])
train_questions = {r["question"].lower() for r in qa["train"]}
assert not any(r["question"].lower() in train_questions for r in qa["paraphrase"])
print("splits are clean: by question, by fact and by position in the book")

# %% [markdown]
# ## 2. One prompt format, closed-book and open-book
# A fine-tuned model only answers well in the exact format it was trained on. So the format is
# defined **once**, in `utils.qa_prompt` (what we give the model) and `utils.qa_completion`
# (what it must write: the answer, then `<end>`). It has two forms:
#
# - **closed-book**: `<q>question⏎<a>` — the answer must come from the weights;
# - **open-book**: `<p>passage⏎<q>question⏎<a>` — a passage of the book comes first, and the
#   answer may be copied from it.

# %%
# NBVAL_CHECK_OUTPUT
record = qa["train"][0]
passage_example = "a White Rabbit with pink eyes ran close by her."
for passage in (None, passage_example):
    example = utils.qa_prompt(record["question"], passage) + utils.qa_completion(record["answer"])
    print(repr(example))

# %% [markdown]
# Everything must fit the block of 256 characters: the tags, a passage of at most
# `utils.PASSAGE_CHARS` characters, the question and the answer. The longest example of the
# data set shows the margin.

# %%
tags = len(utils.qa_prompt("", "x")) - 1 + len(utils.qa_completion(""))
longest = max(len(r["question"]) + len(r["answer"]) for r in corpus.qa)
need = tags + utils.PASSAGE_CHARS + longest
print(f"tags {tags} + passage {utils.PASSAGE_CHARS} + longest question and answer {longest}")
print(f"= {need} characters; the block holds {block_size} + 1 (inputs and shifted targets)")
assert need <= block_size + 1

# %% [markdown]
# The same two functions build the training rows (`encode_qa`), the prompt at generation time
# (`answer`) and the prompts of the evaluation (`evaluate_qa` calls `answer`). The check below
# reads their source code to prove it.

# %%
import inspect

assert "qa_prompt" in inspect.getsource(utils.encode_qa)
assert "qa_completion" in inspect.getsource(utils.encode_qa)
assert "qa_prompt" in inspect.getsource(utils.answer)
assert "answer(" in inspect.getsource(utils.evaluate_qa)
print(inspect.getsource(utils.answer))

# %% [markdown]
# ## 3. The answer-only loss mask
# ### 3.1 One training row, by hand
# A training row is the prompt followed by the completion, cut into inputs `x` and targets `y`
# (the same text shifted by one), padded to the block. A target of `-100` is ignored by the
# loss. The **answer-only mask** sets every target inside the prompt to `-100`, so the loss
# grades only the answer and `<end>`. Written out:

# %%
def encode_row(record: dict, mask_question: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """One record as inputs and targets of ``block_size`` characters."""
    prompt = tokenizer.encode(utils.qa_prompt(record["question"], record.get("passage")))
    ids = prompt + tokenizer.encode(utils.qa_completion(record["answer"]))
    x = torch.full((block_size,), tokenizer.encode("\n")[0])  # padding: newlines
    y = torch.full((block_size,), -100)  # padding: never graded
    x[: len(ids) - 1] = torch.tensor(ids[:-1])
    y[: len(ids) - 1] = torch.tensor(ids[1:])
    if mask_question:
        y[: len(prompt) - 1] = -100  # THE MASK: targets inside the prompt are not graded
    return x, y


# %% [markdown]
# In `utils.encode_qa` it is the same single line:

# %%
print(next(line for line in inspect.getsource(utils.encode_qa).splitlines() if "= -100" in line))

# %% [markdown]
# **Proof.** `encode_row` equals `utils.encode_qa` on closed- and open-book records, with and
# without the mask.

# %%
open_record = {**record, "passage": passage_example}
for r in (record, open_record):
    for mask in (True, False):
        x_row, y_row = encode_row(r, mask)
        x_lib, y_lib = utils.encode_qa([r], tokenizer, block_size, mask)
        assert torch.equal(x_row, x_lib[0]) and torch.equal(y_row, y_lib[0])
print("encode_row == utils.encode_qa")

# %% [markdown]
# Which characters does the loss grade? Character `j` of the text is graded when the target at
# position `j - 1` is not `-100`. Below, `·` marks a character the model is *not* graded on,
# and `⏎` is the newline.

# %%
# NBVAL_CHECK_OUTPUT
prompt, completion = utils.qa_prompt(record["question"]), utils.qa_completion(record["answer"])
text = tokenizer.normalize(prompt + completion)  # what the model reads (lower case)
_, y = encode_row(record)
_, y_full = encode_row(record, mask_question=False)


def graded_chars(targets: torch.Tensor, n: int) -> list[bool]:
    """For each of the first ``n`` characters: is it a graded target?"""
    return [j >= 1 and targets[j - 1].item() != -100 for j in range(n)]


def show(text: str, graded: list[bool]) -> str:
    return "".join(ch if g else "·" for ch, g in zip(text, graded, strict=True)).replace("\n", "⏎")


print("text       :", text.replace("\n", "⏎"))
print("answer mask:", show(text, graded_chars(y, len(text))))
print("no mask    :", show(text, graded_chars(y_full, len(text))))

# %% [markdown]
# The same thing as a picture: blue cells are graded, grey cells are not.

# %%
from matplotlib.colors import ListedColormap

rows = [graded_chars(y, len(text)), graded_chars(y_full, len(text))]
fig, ax = plt.subplots(figsize=(9, 1.6))
ax.imshow(rows, cmap=ListedColormap(["#e6e6e6", "#7fb3e6"]), aspect="auto", vmin=0, vmax=1)
for i in range(len(rows)):
    for j, ch in enumerate(text):
        ax.text(j, i, "⏎" if ch == "\n" else ch, ha="center", va="center", fontsize=8,
                family="monospace")  # fmt: skip
ax.set_yticks([0, 1], ["answer mask", "no mask"])
ax.set_xticks([])
ax.set_title("Which characters the loss grades")
plt.show()

# %% [markdown]
# ### 3.2 The loss really ignores `-100`
# `GPT.forward` passes `ignore_index=-100` to the cross-entropy. So the loss of a row equals a
# plain cross-entropy over the graded positions only; the graded targets decode to exactly the
# answer plus `<end>`.

# %%
x, y = utils.encode_qa([record], tokenizer, block_size)  # (1, T), (1, T)
with torch.no_grad():
    logits, loss = base(x.to(device), y.to(device))  # (1, T, vocab), scalar
keep = y[0] != -100  # (T,)
manual = F.cross_entropy(logits[0, keep.to(device)], y[0, keep].to(device))
assert abs(loss.item() - manual.item()) < 1e-5
assert tokenizer.decode(y[0, keep].tolist()) == tokenizer.normalize(completion)
print(f"masked loss {loss.item():.4f} == loss over the answer only {manual.item():.4f}")

# %% [markdown]
# ### 3.3 Why grade only the answer?
# - At test time the question is given. Learning to *write* questions is wasted effort.
# - Questions (and passages) are much longer than answers. Without the mask most graded
#   characters would be prompt text, and most of the gradient would memorise prompts:

# %%
masked_rows = utils.encode_qa(qa["train"], tokenizer, block_size)
unmasked_rows = utils.encode_qa(qa["train"], tokenizer, block_size, mask_question=False)
n_answer = (masked_rows[1] != -100).sum().item()
n_all = (unmasked_rows[1] != -100).sum().item()
print(f"graded characters over the train split: {n_answer:,} with the mask, {n_all:,} without")
print(f"without the mask only {n_answer / n_all:.0%} of the graded characters are answers")

# %% [markdown]
# ## 4. Open book: a retriever in a few dozen lines
# To answer from a passage we first need to *find* one. A retriever cuts the book into
# overlapping windows and scores each window against the question's words. We write it here,
# then prove `utils.Retriever` does the same.
#
# ### 4.1 Overlapping windows
# Windows of at most `utils.PASSAGE_CHARS` characters start every quarter window, cut at word
# boundaries. The overlap means a short quote is always whole inside some window.

# %%
def windows(text: str, width: int = utils.PASSAGE_CHARS, stride: int = utils.PASSAGE_CHARS // 4):
    flat = " ".join(text.split())
    out = []
    for start in range(0, max(1, len(flat) - width + stride), stride):
        if start and flat[start - 1] != " ":  # begin at the next whole word
            start = flat.find(" ", start) + 1 or len(flat)
        piece = flat[start : start + width]
        if start + width < len(flat) and flat[start + width] != " " and " " in piece:
            piece = piece[: piece.rindex(" ")]  # end at the last whole word
        out.append(piece.strip())
    return out


passages = windows(corpus.train_text)
assert passages == utils.book_windows(corpus.train_text)
print(f"{len(passages):,} windows of the training text; two neighbours:")
print(" ", passages[100], "\n ", passages[101])

# %% [markdown]
# ### 4.2 BM25 scoring
# BM25, the classic search-engine score: for each question word $w$ that occurs $c$ times in a
# passage of length $\ell$ (mean length $\bar\ell$),
#
# $$\text{score} = \sum_w \text{idf}(w)\,
#   \frac{c\,(k_1+1)}{c + k_1\,(1 - b + b\,\ell/\bar\ell)},\qquad
#   \text{idf}(w) = \ln\Big(1 + \frac{N - n_w + 0.5}{n_w + 0.5}\Big)$$
#
# where $N$ is the number of passages and $n_w$ how many contain $w$. Rare words count more
# (idf); repeating a word helps less and less ($k_1 = 1.2$); long passages are discounted
# ($b = 0.75$). Words like "the" or "what" are skipped (`utils.STOP_WORDS`). Among passages with
# the same best score (overlapping windows around the same words) we take the middle one.

# %%
from collections import Counter


def bm25_search(question: str, passages: list[str], k1: float = 1.2, b: float = 0.75) -> str:
    counts = [Counter(utils.words(p)) for p in passages]
    lengths = [sum(c.values()) for c in counts]
    mean_length = sum(lengths) / len(lengths)
    scores = {}
    for w in set(utils.words(question)):
        n_w = sum(w in c for c in counts)
        idf = math.log(1 + (len(passages) - n_w + 0.5) / (n_w + 0.5))
        for i, c in enumerate(counts):
            if w in c:
                tf = c[w] * (k1 + 1) / (c[w] + k1 * (1 - b + b * lengths[i] / mean_length))
                scores[i] = scores.get(i, 0.0) + idf * tf
    if not scores:
        return passages[0]
    top = max(scores.values())
    tied = sorted(i for i, s in scores.items() if s >= top - 1e-9)
    return passages[tied[len(tied) // 2]]


# %% [markdown]
# **Proof.** On a few questions, our search returns the same passage as `utils.Retriever`
# (which keeps an index of which passages hold each word, so it does not rescan the book).

# %%
train_index = utils.Retriever(corpus.train_text)  # for TRAINING examples: training text only
for r in qa["train"][: utils.by_mode(full=8, quick=3)]:
    assert bm25_search(r["question"], passages) == train_index.search(r["question"])
print("bm25_search == utils.Retriever.search")
print(f"Q: {record['question']}\n-> {train_index.search(record['question'])}")

# %% [markdown]
# ### 4.3 Which text may the retriever search?
# - **Training examples** get passages from the **training text only**: a passage from the
#   held-out last 10% would leak it into fine-tuning.
# - At **evaluation** time the reader may search the **whole book**: that is what an open-book
#   exam is, and it is the only way a never-read fact can be answered.
#
# ### 4.4 Retrieval recall
# Is the evidence quote inside the retrieved passage? That is the retriever's *recall*, and it
# caps what an open-book reader can do from the passage alone.

# %%
book_index = utils.Retriever(corpus.book)  # for EVALUATION: the whole book
recall = {}
for name in SPLITS:
    records = qa[name][: utils.by_mode(full=len(qa[name]), quick=10)]
    recall[name] = sum(utils.evidence_found(r, book_index.search(r["question"])) for r in records)
    recall[name] /= len(records)
    print(f"{name:<10}: evidence inside the retrieved passage for {recall[name]:.0%} of "
          f"{len(records)} questions")  # fmt: skip

# %% [markdown]
# Word overlap finds the right place only when the question shares rare words with the book's
# sentence; a reworded question ("Of what colour…" for "pink eyes") often lands a window or two
# away. Recall well below 100% is normal for a retriever this simple.

# %% [markdown]
# ## 5. Choosing a recipe on a dev split
# ### 5.1 The dev split, carved from the train facts only
# `utils.dev_split` splits the **train** records, deterministically by a hash of the fact id:
#
# - **dev_unseen** — about 12% of the train facts, held out whole (a stand-in for unseen);
# - **dev_paraphrase** — one phrasing of every other fact, the one least like its other
#   phrasings, as a real paraphrase is (a stand-in for paraphrase);
# - **fit** — everything else: what a recipe trial trains on.

# %%
dev = utils.dev_split(corpus.qa)
for name, records in dev.items():
    n_facts = len({r["fact"] for r in records})
    print(f"{name:<15} {len(records):>4} questions about {n_facts:>3} facts")
assert sum(len(v) for v in dev.values()) == len(qa["train"])  # only train records, each once
fit_facts = {r["fact"] for r in dev["fit"]}
assert not any(r["fact"] in fit_facts for r in dev["dev_unseen"])
assert all(r["fact"] in fit_facts for r in dev["dev_paraphrase"])

# %% [markdown]
# ### 5.2 The recipes
# A recipe is a `utils.FinetunePlan`: the prompt mode (`closed`, `open` with a retrieved
# passage, or `both`: every record once each way), the share of book text per batch, the mask,
# and how many synthetic **reading exercises** to add. Those are an attempt to teach *reading*
# rather than recall: cloze questions cut automatically from the training text, whose answer is
# a word of the passage in front of them.

# %%
for exercise in utils.reading_exercises(corpus.train_text, 2):
    print(repr(utils.qa_prompt(exercise["question"], exercise["passage"])
               + utils.qa_completion(exercise["answer"])))  # fmt: skip

# %% [markdown]
# The full comparison fine-tunes the base model once per recipe and scores each on the dev
# split; it takes a while, so it lives in a script, `tests/qa_recipes.py`, which writes
# `tests/qa_recipes.json` together with the command that produced it. The recipe
# `mixed_pretraining` answers a different question: instead of fine-tuning after pretraining, it
# mixes the Q&A rows into pretraining from the start, for the same total number of steps.
#
# Here is a miniature of one trial (a few steps, a few questions), so the code runs in this
# lesson too; its numbers mean nothing.

# %%
mini_steps = utils.by_mode(full=20, quick=3)
mini_cfg = dataclasses.replace(utils.FINETUNE, max_steps=mini_steps, warmup_steps=mini_steps // 4)
mini_plan = dataclasses.replace(utils.FINETUNE_PLAN, dev=True)
mini, _ = utils.finetune(base, corpus, mini_cfg, None, mini_plan, progress=False)
mini_scores = utils.evaluate_qa(mini, tokenizer, dev["dev_paraphrase"][:3], book_index)
print({k: v for k, v in mini_scores.items() if k != "rows"})

# %% [markdown]
# ### 5.3 The results on dev
# The table reads the committed results. Only dev numbers are in it: dev-paraphrase and
# dev-unseen exact match, closed- and open-book, and the **book dev loss**, the loss on the last
# tenth of the *training* text. Every recipe read that text in pretraining, so its rise over the
# base model's loss there measures forgetting, while the book's validation text stays unread
# until lesson 6. The held-out Q&A splits were not looked at to choose either.

# %%
import json

recipes_path = utils.REPO_ROOT / "tests" / "qa_recipes.json"
recipes = json.loads(recipes_path.read_text()) if recipes_path.exists() else {}
columns = ["closed/dev_paraphrase", "closed/dev_unseen", "open/dev_paraphrase", "open/dev_unseen"]
print(f"{'recipe':<18} {'steps':>5}" + "".join(f"{c:>23}" for c in columns) + f"{'book rise':>10}")
for name, entry in recipes.items():
    cells = "".join(f"{entry[c]['exact_match']:>23.1%}" for c in columns)
    rise = entry["book_dev_loss"] - entry["base_book_dev_loss"]
    print(f"{name:<18} {entry['steps']:>5}{cells}{rise:>+10.4f}")
if recipes:
    print("\ncommands:", *sorted({e["command"] for e in recipes.values()}), sep="\n  ")
else:
    print(f"No results yet: run `python tests/qa_recipes.py` to write {recipes_path.name}.")

# %% [markdown]
# The rule, fixed before the runs: among the recipes that keep the book (book dev loss at most
# 0.05 above the base model's; if none does, the one that forgets least), pick the best
# dev-paraphrase exact match in its better mode, ties broken by dev-unseen. The code applies
# the rule and checks that it is the recipe `utils.FINETUNE_PLAN` trains.

# %%
BOOK_BUDGET = 0.05  # the largest rise of the book loss we accept


def best_dev(entry: dict) -> tuple[float, float]:
    """Exact match on dev-paraphrase and dev-unseen, each in the recipe's better mode."""
    return tuple(
        max(entry[f"{mode}/{split}"]["exact_match"] for mode in ("closed", "open"))
        for split in ("dev_paraphrase", "dev_unseen")
    )


def book_rise(entry: dict) -> float:
    return entry["book_dev_loss"] - entry["base_book_dev_loss"]


if recipes:
    keep = {n: e for n, e in recipes.items() if book_rise(e) <= BOOK_BUDGET}
    keep = keep or {min(recipes, key=lambda n: book_rise(recipes[n])): None}
    chosen = max(keep, key=lambda n: best_dev(recipes[n]))
    print(f"within the book budget: {', '.join(keep)}")
    print(f"chosen on dev: {chosen} ({best_dev(recipes[chosen])[0]:.1%} dev-paraphrase EM, "
          f"book rise {book_rise(recipes[chosen]):+.4f})")  # fmt: skip
    plan = {k: v for k, v in recipes[chosen]["plan"].items() if k != "dev"}
    ours = {k: v for k, v in dataclasses.asdict(utils.FINETUNE_PLAN).items() if k != "dev"}
    print(f"utils.FINETUNE_PLAN = {ours}")
    assert plan == ours or chosen == "mixed_pretraining", "the lesson's plan is not the dev winner"

# %% [markdown]
# The same choice as a picture: what each recipe buys on dev (left) against what it costs the
# book (right; the dotted line is the budget).

# %%
if recipes:
    names = list(recipes)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3), sharey=True)
    for k, mode in enumerate(("closed", "open")):
        ems = [recipes[n][f"{mode}/dev_paraphrase"]["exact_match"] for n in names]
        ax1.barh([i + (k - 0.5) * 0.4 for i in range(len(names))], ems, 0.4, label=f"{mode}-book")
    ax1.set(yticks=range(len(names)), yticklabels=names, xlabel="dev-paraphrase exact match")
    ax1.legend(fontsize=8)
    ax2.barh(range(len(names)), [book_rise(recipes[n]) for n in names], color="tab:gray")
    ax2.axvline(BOOK_BUDGET, color="k", linestyle=":")
    ax2.set(xlabel="book dev loss rise over the base model")
    ax1.invert_yaxis()
    plt.tight_layout()
    plt.show()

# %% [markdown]
# Two of the recipes answer the questions the research raises (§5.2). Both change the recipe
# `both` in one way, so each is compared with it, in each recipe's better mode:
# - **reading exercises**: do cloze questions cut from the text teach the model to read, so
#   that facts held out whole (dev-unseen) get answered?
# - **Q&A mixed into pretraining**, for the same total steps as pretraining plus fine-tuning:
#   is it better than fine-tuning after pretraining?

# %%
def compare_recipe(name: str, reference: str = "both") -> None:
    """One sentence: ``name`` against ``reference`` on dev, in each one's better mode."""
    if name not in recipes or reference not in recipes:
        print(f"{name}: not in {recipes_path.name}")
        return
    (para, unseen), (ref_para, ref_unseen) = best_dev(recipes[name]), best_dev(recipes[reference])
    print(f"{name} against {reference}: dev-paraphrase EM {para:.1%} vs {ref_para:.1%}, "
          f"dev-unseen EM {unseen:.1%} vs {ref_unseen:.1%}, book rise "
          f"{book_rise(recipes[name]):+.4f} vs {book_rise(recipes[reference]):+.4f}")  # fmt: skip


compare_recipe("both + reading")
compare_recipe("mixed_pretraining")

# %% [markdown]
# ## 6. Mixing book text into training
# Trained only on short Q&A rows, a model drifts away from what it knew and its book loss
# climbs: *catastrophic forgetting*. The standard remedy is to keep replaying some pretraining
# data. `utils.qa_batches` makes a share `book_fraction` of the training steps, drawn at random,
# book steps: whole-block windows of the book (the train part only), exactly as in pretraining.
# The other steps are Q&A rows.

# %%
plan = utils.FINETUNE_PLAN
ft_rows = utils.encode_qa(utils.finetune_examples(corpus, plan), tokenizer, block_size)
get_batch = utils.qa_batches(
    ft_rows, corpus.splits, block_size, utils.FINETUNE.batch_size, plan.book_fraction
)
generator = torch.Generator().manual_seed(0)
batches = [get_batch("train", generator) for _ in range(400)]  # (B, T), (B, T) each
is_book = [bool((yb != -100).all()) for _, yb in batches]  # a book step grades every character
print(f"book_fraction {plan.book_fraction}: {sum(is_book)} book steps of {len(batches)} drawn")
xb, yb = batches[is_book.index(False)]
print(f"a Q&A step {tuple(xb.shape)}:", repr(tokenizer.decode(xb[0, :60].tolist())))
xb, yb = batches[is_book.index(True)]
print(f"a book step {tuple(xb.shape)}:", repr(tokenizer.decode(xb[0, :60].tolist())))

# %% [markdown]
# Q&A rows are masked, book windows are graded on every character. The loss is a mean over
# graded characters, and a book step has far more of them than a Q&A step, so the book weighs
# more in training than its share of steps suggests.

# %%
graded = [(yb != -100).sum().item() for _, yb in batches]  # graded characters per step
book_graded = sum(n for n, book in zip(graded, is_book, strict=True) if book)
qa_graded = sum(graded) - book_graded
share = book_graded / (qa_graded + book_graded)
print(f"book steps: {sum(is_book) / len(batches):.0%} of the steps, "
      f"{share:.0%} of the graded characters")  # fmt: skip
assert share > sum(is_book) / len(batches)

# %% [markdown]
# ### 6.1 Buckets: no compute spent on padding
# The Q&A step above is not `block_size` wide. `encode_qa` pads every row to the block, but
# most Q&A rows are much shorter, and a step costs as much as its widest row. So `qa_batches`
# sorts the rows into **buckets**: a row that fits in `block_size / 2**k` characters goes to
# bucket k, whose batches are cut to that width and hold `2**k` times as many rows. Every step
# then has as many characters as a pretraining step, and the bucket of each step is drawn in
# proportion to its rows, so every example is still drawn equally often.

# %%
lengths = utils.qa_lengths(ft_rows)  # characters each row really uses
widths = {}
for k in range(4):
    width = block_size // 2**k
    widths[width] = int(((lengths <= width) & (lengths > width // 2)).sum())
assert sum(widths.values()) == len(lengths)  # every row is in one of these buckets
print("rows per bucket width:", widths)
wasted = 1 - lengths.sum().item() / (len(lengths) * block_size)
print(f"padded to the block, {wasted:.0%} of the Q&A characters computed would be padding")

fig, ax = plt.subplots(figsize=(7, 2.5))
ax.hist(lengths.numpy(), bins=range(0, block_size + 9, 8), color="tab:blue")
for width in widths:
    ax.axvline(width, color="gray", linestyle=":")
ax.set(xlabel="characters used by a Q&A row", ylabel="rows",
       title="Q&A row lengths; dotted: bucket widths")  # fmt: skip
plt.show()

# %% [markdown]
# Cutting a bucket's rows to its width drops only padding: every row of every Q&A batch still
# ends with its whole graded answer and `<end>`, and every batch has as many characters as a
# pretraining batch.

# %%
seen_widths = set()
for seed in range(20):
    xb, yb = get_batch("qa", torch.Generator().manual_seed(seed))
    assert xb.numel() == utils.FINETUNE.batch_size * block_size
    for row in yb:
        assert tokenizer.decode(row[row != -100].tolist()).endswith(utils.END_TAG)
    seen_widths.add(xb.shape[1])
print(f"20 batches checked; widths seen: {sorted(seen_widths)}")

# %% [markdown]
# During fine-tuning, `train` draws these mixed steps. Two more splits are only *measured*:
# `qa` (Q&A rows only: the answer loss on the training examples) and `val` (windows of the
# held-out end of the book, so it tracks forgetting).

# %% [markdown]
# ## 7. The base model before fine-tuning
# What does the pretrained model write after a Q&A prompt? It has read the book, but it has
# never seen `<q>`, `<a>` or `<end>`. Expect book-like babble that never stops on its own.

# %%
demo = [qa["train"][0], qa["paraphrase"][0], qa["unseen"][0], qa["never_read"][0]]
for r in demo:
    print(f"Q: {r['question']}\n   gold: {r['answer']}")
    print(f"   base: {utils.answer(base, tokenizer, r['question'])!r}\n")

# %% [markdown]
# ## 8. Fine-tuning
# ### 8.1 The recipe
# `utils.FINETUNE` is the schedule: the same loop as pretraining (AdamW, warm-up + cosine,
# clipping), with far fewer steps, starting from the base weights instead of random ones.
# `utils.FINETUNE_PLAN` is the rest of the recipe, chosen on dev in §5.

# %%
for key, value in dataclasses.asdict(utils.FINETUNE).items():
    print(f"{key:>14}: {value}")
for key, value in dataclasses.asdict(utils.FINETUNE_PLAN).items():
    print(f"{key:>14}: {value}")
ratio = utils.FINETUNE.lr / utils.PRETRAIN.lr
relation = "the same as" if ratio == 1 else f"{ratio:.2g} times"
print(f"peak learning rate {utils.FINETUNE.lr}: {relation} pretraining's {utils.PRETRAIN.lr}, "
      f"over {utils.FINETUNE.max_steps / utils.PRETRAIN.max_steps:.0%} of its steps")  # fmt: skip

# %% [markdown]
# ### 8.2 The plan goes into the checkpoint
# Everything that defines the run — the base weights' fingerprint, the plan and a hash of the
# training examples — is saved as the checkpoint's `origin`. A checkpoint is resumed only if
# all of it matches; if the plan (or the Q&A file) changed, `utils.finetune` warns, naming what
# changed, and trains from the base model again instead of silently continuing an old run.
#
# ### 8.3 The run
# `utils.finetune` copies the base model, builds the examples of the plan, the mixed steps of
# §6 and trains. It saves `utils.FINETUNED_CHECKPOINT` for lesson 6. If a finished checkpoint
# of the same plan is already there, it is loaded instead of trained again.

# %%
start = time.perf_counter()
ft_model, history = utils.finetune(base, corpus, utils.FINETUNE, utils.FINETUNED_CHECKPOINT)
print(f"done in {time.perf_counter() - start:.0f} s -> "
      f"{utils.display_path(utils.FINETUNED_CHECKPOINT)}")  # fmt: skip
origin = json.loads(utils.load_checkpoint(utils.FINETUNED_CHECKPOINT)["extra"]["origin"])
print("saved origin:", origin)
assert origin["mode"] == utils.FINETUNE_PLAN.mode

# %% [markdown]
# ### 8.4 Curves
# - `qa`: answer loss on the training examples. It should fall fast.
# - `val`: loss on held-out book text, estimated on a few windows. A clear rise would mean the
#   model is forgetting the book (§9 measures it exactly).
#
# Your curves may differ slightly: random initialisation, hardware, quick mode.

# %%
utils.plot_losses(history, best=None, title="Fine-tuning: answer loss (qa) and book loss (val)")
plt.show()

# %% [markdown]
# ### 8.5 Answers after fine-tuning
# The same questions as in §7, closed-book and open-book. A ✓ marks an exact match (after
# normalising case, punctuation and articles; lesson 6 explains the metric).

# %%
for r in demo:
    passage = book_index.search(r["question"])
    closed = utils.answer(ft_model, tokenizer, r["question"])
    opened = utils.answer(ft_model, tokenizer, r["question"], passage)
    marks = ["✓" if utils.exact_match(p, r["answer"]) else "✗" for p in (closed, opened)]
    print(f"[{r['split']}] Q: {r['question']}\n   gold: {r['answer']}")
    print(f"   closed-book: {closed!r} {marks[0]}\n   open-book  : {opened!r} {marks[1]}")
    print(f"   passage    : {passage}\n")

# %% [markdown]
# Does the model stop by itself? One raw continuation, **without** stopping at `<end>`.
# Nothing after `<end>` was ever graded (padding targets are `-100`), so what follows is
# arbitrary; `utils.answer` cuts there.

# %%
raw = utils.generate(ft_model, tokenizer, prompt, 60, temperature=0.0)
print(repr(raw))
if utils.END_TAG in raw:
    print(f"-> wrote {utils.END_TAG} after {raw.index(utils.END_TAG)} characters")
else:
    print(f"-> no {utils.END_TAG} within 60 characters (expected if the model is barely trained)")

# %% [markdown]
# ## 9. How much of the book was forgotten?
# For the verdict, `utils.evaluate_text` grades every character of the validation text exactly
# once, for the base and the fine-tuned model.

# %%
val_base = utils.evaluate_text(base, corpus.splits["val"])
val_ft = utils.evaluate_text(ft_model, corpus.splits["val"])
change = val_ft - val_base
uniform = math.log(tokenizer.vocab_size)
print(f"book validation loss, base      : {val_base:.4f} nats/char")
print(f"book validation loss, fine-tuned: {val_ft:.4f} nats/char ({change:+.4f}, "
      f"{change / val_base:+.1%})")  # fmt: skip
print(f"(a uniform guess would score ln({tokenizer.vocab_size}) = {uniform:.4f})")
assert math.isfinite(val_base) and math.isfinite(val_ft)
print("Fine-tuning cost some book knowledge: the loss went up." if change > 0 else
      "The fine-tuned model predicts the book at least as well as the base model.")  # fmt: skip

# %% [markdown]
# ## Summary
#
# - One vocabulary and one prompt format (`qa_prompt` + `qa_completion`, ending in `<end>`),
#   closed-book or with a passage first, serve fine-tuning, generation and evaluation alike.
# - The answer-only mask sets prompt and padding targets to `-100` (one line), so the loss
#   grades exactly the answer and `<end>`.
# - A BM25 retriever over overlapping windows finds passages; training passages come from the
#   training text only, evaluation may search the whole book. Recall says how often the
#   evidence is in the passage.
# - Recipes are chosen on a dev split carved from the train facts; the plan is saved in the
#   checkpoint, and a changed plan is never resumed silently.
# - A share of the fine-tuning steps replays whole-block book windows, and `evaluate_text`
#   measures what survives. Q&A rows are bucketed by length, so no step computes padding.

# %% [markdown]
# ## Exercises
#
# 1. **What the mask removes.** Encode one training record with `utils.encode_qa`, with and
#    without `mask_question`, and count the graded targets (those that are not `-100`).
# 2. **The original notebook's prompt.** Ask the fine-tuned model a question in the original
#    notebook's format, `"Q: ...\nA:"`, instead of `utils.qa_prompt`. What does it write?
# 3. **A changed plan.** Call `utils.finetune` with the lesson's checkpoint path but another
#    `book_fraction`, for one step, and read the warning. (Use a copy of the checkpoint.)

# %% [markdown]
# ## Solutions
# Solution 1: the same record, with and without the answer-only mask.

# %%
record = qa["train"][0]
graded = {}
for mask in (True, False):
    _, targets = utils.encode_qa([record], tokenizer, base.config.block_size, mask_question=mask)
    graded[mask] = int((targets != -100).sum())
answer_part = len(tokenizer.encode(utils.qa_completion(record["answer"])))
print(f"graded targets: {graded[True]} with the mask, {graded[False]} without")
print(f"the answer and <end> are {answer_part} characters: the mask grades exactly those")
assert graded[True] == answer_part < graded[False]

# %% [markdown]
# Solution 2: the model never saw `Q:` / `A:` during fine-tuning, so the prompt looks like
# ordinary text and it continues it; compare with the answer in the trained format.

# %%
question = qa["train"][0]["question"]
print("Q:/A: format:", repr(utils.generate(ft_model, tokenizer, f"Q: {question}\nA:", 60,
                                           temperature=0.0)))  # fmt: skip
print("qa_prompt   :", repr(utils.answer(ft_model, tokenizer, question)))

# %% [markdown]
# Solution 3: the warning names the field that changed; the copy is trained again from the
# base model, the lesson's checkpoint is untouched.

# %%
import shutil
import tempfile
import warnings
from pathlib import Path

with tempfile.TemporaryDirectory() as folder:
    copy = Path(folder) / "finetuned.pt"
    shutil.copy(utils.FINETUNED_CHECKPOINT, copy)
    one_step = dataclasses.replace(utils.FINETUNE, max_steps=1, warmup_steps=0)
    half = utils.FINETUNE_PLAN.book_fraction / 2
    other = dataclasses.replace(utils.FINETUNE_PLAN, book_fraction=half)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        utils.finetune(base, corpus, one_step, copy, other, progress=False)
message = str(caught[0].message)
assert "book_fraction" in message
print(message)
