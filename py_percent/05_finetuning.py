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
# We turn the pretrained book model into a question answerer.
#
# - **Reads:** `checkpoints/full/base.pt` (lesson 3, else the released weights, else a short
#   stand-in it trains), the book, `data/alice_qa.jsonl`, `tests/qa_*.json` (§8–9's runs) and
#   an earlier `finetuned.pt`, resumed only if it matches.
# - **Writes:** `checkpoints/full/finetuned.pt`, for lesson 6.
# - **Runtime:** printed in §6.2.

# %% [markdown]
# **What the original notebook got wrong, and where this lesson fixes it**
#
# - *A few hand-written pairs.* §1.2's records, each backed by a book quote.
# - *Two vocabularies.* One, checked (§1.1).
# - *Trained on `<q>`, prompted with `Q:`.* One prompt function (§2).
# - *Answers never stopped.* An `<end>` marker (§2, §6.4).
# - *Graded the question, measured nothing.* An answer-only loss (§3), curves and a
#   forgetting check (§6, §7), a recipe chosen on train questions set aside (§8–9).

# %% [markdown]
# ## 0. Setup
# This cell makes the shared module `utils.py` importable (cloning the repository first in Colab)
# and prints the device and whether quick mode (`GPT05M_QUICK=1`: a shortened run, for the tests)
# is on.

# %% cellView="form"
# @title Setup: make `utils` importable (in Colab, clone the repository once)
import os, subprocess, sys  # noqa: E401, I001

REPO, BRANCH = "https://github.com/your-username/GPT-0.5M", "main"  # a fork: set its address
if "google.colab" in sys.modules and not os.path.isdir("/content/GPT-0.5M"):
    subprocess.run(["git", "clone", "-q", "--depth=1", "-b", BRANCH, REPO, "/content/GPT-0.5M"])
sys.path[:0] = {"/content/GPT-0.5M/notebooks", os.path.abspath("notebooks")} - set(sys.path)
import utils  # not found in Colab? The clone failed: set REPO above to your fork's address

device = utils.setup_lesson(REPO, BRANCH)

# %% [markdown]
# Other imports (Solution 3 adds more).

# %%
import dataclasses
import hashlib
import json
import math
import time

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

# %% [markdown]
# ## 1. The base model and the Q&A data
# ### 1.1 One vocabulary
# `utils.load_corpus()` builds **one** character vocabulary from the book and the Q&A file, so every
# Q&A character has a base-model embedding; the assert checks the checkpoint saved this one. The
# **series run** is the README's full run.

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
# ### 1.2 Five splits
# A record: `question`, `answer`, `chapter`, an `evidence` quote, a `fact` id and its `split`:
#
# - **train**: each fact in several phrasings; the only records trained on;
# - **paraphrase**: the same facts, worded anew;
# - **unseen**: training-text facts never trained on;
# - **never_read**: facts only in the book's held-out last 10%;
# - **reversal**: the other direction of a trained fact, named by `reverse_of`.

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
# ### 1.3 One fact in all its phrasings
# One fact's train and paraphrase questions, then an unseen one. Training never reads `evidence`
# (though a retrieved book passage, put before an open-book question in §2, may hold the same
# words): it lets anyone check a **gold** (correct) answer against the book.

# %%
fact = qa["train"][0]["fact"]
examples = [r for r in corpus.qa if r["fact"] == fact] + [qa["unseen"][0]]
for r in examples:
    print(f"[{r['split']:<10}] ch.{r['chapter']:>2}  Q: {r['question']}")
print(f"\nanswer: {examples[0]['answer']} | evidence: “{examples[0]['evidence']}”")

# %% [markdown]
# ### 1.4 Questions per chapter
# The chart stacks the five splits over all twelve chapters; never-read facts sit, by
# construction, at the book's end.

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
ax.set_ylim(0, 1.45 * max(bottom))  # room for the legend above the bars
ax.legend(ncol=4, loc="upper center")
plt.show()

# %% [markdown]
# ### 1.5 Held out by question and by position
# No setting is chosen on held-out scores (§8 uses a dev split of train). The book's last 10% is
# validation text: train, paraphrase and unseen evidence lies before it, never-read evidence
# inside it, as asserted.

# %%
train_text_squashed = utils.squash(corpus.train_text)
in_training_text = {
    r["fact"]: utils.squash(r["evidence"]) in train_text_squashed for r in corpus.qa
}
train_facts = {r["fact"] for r in qa["train"]}
assert all(in_training_text[r["fact"]] for r in corpus.qa if r["split"] != "never_read")
assert not any(in_training_text[r["fact"]] for r in qa["never_read"])
assert all(utils.squash(r["evidence"]) in utils.squash(corpus.val_text) for r in qa["never_read"])
assert all(r["fact"] in train_facts for r in qa["paraphrase"])  # same facts, new wording
assert not any(r["fact"] in train_facts for r in qa["unseen"] + qa["never_read"] + qa["reversal"])
train_questions = {r["question"].lower() for r in qa["train"]}
assert not any(r["question"].lower() in train_questions for r in qa["paraphrase"])
val_share = len(corpus.val_text) / len(corpus.book)
print(f"validation text: the book's last {val_share:.0%}, holding every never-read evidence quote")
print("splits are clean: by question, by fact and by position in the book")

# %% [markdown]
# ## 2. One prompt format, ending in `<end>`
# A fine-tuned model answers well only in its fine-tuning format, so it is defined once:
# `utils.qa_prompt` (what the model reads) and `utils.qa_completion` (the answer, then `<end>`).
# **Closed-book** it is `<q>question⏎<a>`; **open-book** puts a passage first (lesson 6
# retrieves one).

# %%
# NBVAL_CHECK_OUTPUT
record = qa["train"][0]
passage_example = "a White Rabbit with pink eyes ran close by her."
for passage in (None, passage_example):
    example = utils.qa_prompt(record["question"], passage) + utils.qa_completion(record["answer"])
    print(repr(example))

# %% [markdown]
# Tags, a passage of at most `utils.PASSAGE_CHARS` characters, question and answer must fit in
# the block's 256 inputs plus one shifted target. The longest example shows the margin:

# %%
tags = len(utils.qa_prompt("", "x")) - 1 + len(utils.qa_completion(""))
longest = max(len(r["question"]) + len(r["answer"]) for r in corpus.qa)
need = tags + utils.PASSAGE_CHARS + longest
print(f"tags {tags} + passage {utils.PASSAGE_CHARS} + longest question and answer {longest}")
print(f"= {need} characters; the block holds {block_size} + 1 (inputs and shifted targets)")
assert need <= block_size + 1

# %% [markdown]
# Generation and evaluation share the prompt. Checked on the base model: `utils.answer` is
# greedy generation after `qa_prompt`, cut at `<end>`; `utils.evaluate_qa` scores that answer.

# %%
question = record["question"]
prompt_text = utils.qa_prompt(question)
by_hand = utils.generate(base, tokenizer, prompt_text, 80, temperature=0.0, stop=utils.END_TAG)
assert utils.answer(base, tokenizer, question) == by_hand.strip()
assert utils.evaluate_qa(base, tokenizer, [record])["rows"][0]["predicted"] == by_hand.strip()
print(f"utils.answer == greedy text after qa_prompt: {by_hand.strip()!r}")


# %% [markdown]
# ## 3. The answer-only loss mask
# ### 3.1 One training row, by hand
# A row is prompt plus completion, padded to the block: inputs `x`, targets `y` (shifted by one).
# The loss ignores `-100` targets; the **answer-only mask** sets every prompt target to it, so only
# the answer and `<end>` are graded.

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
# Which characters are graded? `·` marks one the loss ignores; `⏎` is the newline.

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
# ### 3.2 The loss really ignores `-100`
# `GPT.forward` passes `ignore_index=-100` to the cross-entropy, so a row's loss equals a plain
# cross-entropy over the graded positions, which decode to the answer plus `<end>`.

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
# At test time the question is given: learning to write it is wasted. Questions are also
# longer, so without the mask most graded characters would be question text:

# %%
masked_rows = utils.encode_qa(qa["train"], tokenizer, block_size)
unmasked_rows = utils.encode_qa(qa["train"], tokenizer, block_size, mask_question=False)
n_answer = (masked_rows[1] != -100).sum().item()
n_all = (unmasked_rows[1] != -100).sum().item()
print(f"graded characters over the train split: {n_answer:,} with the mask, {n_all:,} without")
print(f"without the mask only {n_answer / n_all:.0%} of the graded characters are answer or <end>")

# %% [markdown]
# ## 4. Book replay against forgetting
# Trained only on Q&A rows (not run here), a model can drift from what it knew, its book loss
# climbing: **catastrophic forgetting**. The usual remedy (unmeasured here) is **replay**:
# `utils.qa_batches` makes a random `book_fraction` of the steps whole training-text windows,
# the rest Q&A rows.

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
# Book windows are graded on every character, Q&A rows only on the answer. Each step counts once,
# so the book gets its share of steps though holding most graded characters:

# %%
graded = [(yb != -100).sum().item() for _, yb in batches]  # graded characters per step
book_graded = sum(n for n, book in zip(graded, is_book, strict=True) if book)
qa_graded = sum(graded) - book_graded
share = book_graded / (qa_graded + book_graded)
print(f"book steps: {sum(is_book) / len(batches):.0%} of the steps, "
      f"{share:.0%} of the graded characters")
assert share > sum(is_book) / len(batches)

# %% [markdown]
# Q&A rows are short, so `qa_batches` groups them by length into **buckets**: width
# `block_size / 2**k`, `2**k` times as many rows per batch, every row equally likely to be drawn.
# Checked: each Q&A batch holds a pretraining batch's characters; each row ends in a graded `<end>`.

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
# ## 5. The base model before fine-tuning
# It has read the book but never seen `<q>`, `<a>` or `<end>`. Expect book-like babble, cut at
# 80 characters.

# %%
demo = [qa["train"][0], qa["paraphrase"][0], qa["unseen"][0], qa["never_read"][0]]
for r in demo:
    print(f"Q: {r['question']}\n   gold: {r['answer']}")
    print(f"   base: {utils.answer(base, tokenizer, r['question'])!r}\n")

# %% [markdown]
# ## 6. Fine-tuning
# ### 6.1 The recipe
# `utils.FINETUNE` is the schedule: lesson 3's `utils.train` loop with Muon (§3 there) on the
# blocks' matrices, AdamW elsewhere (§9.2 chose it), warm-up + cosine and clipping
# (`decay_fraction`: `wsd` only, lesson 3 §4). `utils.FINETUNE_PLAN` is the rest (§8 chose its
# `mode`; replay and the mask were fixed).

# %%
for key, value in dataclasses.asdict(utils.FINETUNE).items():
    print(f"{key:>14}: {value}")
for key, value in dataclasses.asdict(utils.FINETUNE_PLAN).items():
    print(f"{key:>14}: {value}")
for name in ("lr", "muon_lr"):
    ours, theirs = getattr(utils.FINETUNE, name), getattr(utils.PRETRAIN, name)
    print(f"peak {name} {ours}: {ours / theirs:.2g} times pretraining's {theirs}")
print(f"{utils.FINETUNE.max_steps / utils.PRETRAIN.max_steps:.0%} of pretraining's steps")

# %% [markdown]
# ### 6.2 The run
# `utils.finetune` copies the base model, trains on §4's mixed steps and saves
# `utils.FINETUNED_CHECKPOINT`. Its `origin` (base weights' **fingerprint**, plan, examples'
# **hash**: short codes computed from data, other if any byte differs) decides: a checkpoint of
# another origin is not resumed (it trains again from the base, with a warning); the same with
# another schedule raises `ValueError`. Step-line times omit evaluation and saving, which "done in"
# includes; these times come from lesson 5 re-run alone after the series run (same losses; README).

# %%
start = time.perf_counter()
ft_model, history = utils.finetune(base, corpus, utils.FINETUNE, utils.FINETUNED_CHECKPOINT)
print(f"done in {time.perf_counter() - start:.0f} s -> "
      f"{utils.display_path(utils.FINETUNED_CHECKPOINT)}")
origin = json.loads(utils.load_checkpoint(utils.FINETUNED_CHECKPOINT)["extra"]["origin"])
print("saved origin:", origin)
assert origin["mode"] == utils.FINETUNE_PLAN.mode

# %% [markdown]
# ### 6.3 Curves
# - `qa`: the training examples' answer loss;
# - `val`: an estimate on fixed random windows of the book's held-out end, first at step 100,
#   after fine-tuning began; §7 measures the base model on the whole text.

# %%
utils.plot_losses(history, best=None, title="Fine-tuning: answer loss (qa) and book loss (val)")
plt.show()

# %% [markdown]
# The first and last points of both curves:

# %%
steps, losses = history["step"], history["losses"]
for split in ("qa", "val"):
    first, last = losses[split][0], losses[split][-1]
    print(f"{split}: {first:.4f} at step {steps[0]} -> {last:.4f} at step {steps[-1]}")

# %% [markdown]
# ### 6.4 Answers after fine-tuning
# §5's questions again, closed-book. ✓ marks an exact match (case, punctuation and articles
# normalised; lesson 6 explains it).

# %%
for r in demo:
    reply = utils.answer(ft_model, tokenizer, r["question"])
    mark = "✓" if utils.exact_match(reply, r["answer"]) else "✗"
    print(f"[{r['split']}] Q: {r['question']}\n   gold: {r['answer']}")
    print(f"   fine-tuned: {reply!r} {mark}\n")

# %% [markdown]
# Does the model stop by itself? §3.1's train question, continued **without** stopping at
# `<end>`. Nothing after `<end>` was graded (padding targets are `-100`), so what follows is
# arbitrary; `utils.answer` cuts there.

# %%
raw = utils.generate(ft_model, tokenizer, prompt, 60, temperature=0.0)
print(repr(raw))
if utils.END_TAG in raw:
    print(f"-> wrote {utils.END_TAG} after {raw.index(utils.END_TAG)} characters")
else:
    print(f"-> no {utils.END_TAG} within 60 characters (expected if the model is barely trained)")

# %% [markdown]
# ## 7. How much of the book was forgotten?
# `utils.evaluate_text` grades every validation character once, for both models: exact losses, so
# a rise is real for this checkpoint. Its spread across fine-tuning seeds is unmeasured on this
# text (§9.2, §9.3: two seeds each, other text).

# %%
val_base = utils.evaluate_text(base, corpus.splits["val"])
val_ft = utils.evaluate_text(ft_model, corpus.splits["val"])
change = val_ft - val_base
uniform = math.log(tokenizer.vocab_size)
print(f"book validation loss, base      : {val_base:.4f} nats/char")
print(f"book validation loss, fine-tuned: {val_ft:.4f} nats/char ({change:+.4f}, "
      f"{change / val_base:+.1%})")
print(f"(a uniform guess would score ln({tokenizer.vocab_size}) = {uniform:.4f})")
assert math.isfinite(val_base) and math.isfinite(val_ft)
print("This fine-tuned model predicts the book's validation text worse than its base: the loss "
      "went up." if change > 0 else
      "This fine-tuned model predicts the book's validation text at least as well as its base.")

# %% [markdown]
# ## 8. How the plan was chosen
# `utils.dev_split` makes a dev split of the **train** records only, by fact-id hash: **dev_unseen**
# (facts held out whole), **dev_paraphrase** (for each remaining fact, its phrasing least like the
# others by word overlap: like a real paraphrase in that, not in length; `tests/qa_phrasing.py`) and
# **fit** (the rest).

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
# `tests/qa_recipes.py` trained each recipe once on fit, with `FastDropout` (lesson 2 §5.2) and
# AdamW (2,000 fine-tuning steps), scoring each dev split's first `n` questions. Recipes: prompt
# mode `closed`, `open` or `both` (each question closed- and open-book); `both + reading`
# (plus **cloze**: fill-in-the-blank from the book); `mixed_pretraining` (Q&A mixed into
# pretraining from scratch). **Book rise**: the loss rise over the base on the training text's
# replayed last tenth, a partial forgetting check. **An earlier base model**: one whose loss on that
# tenth is not today's.

# %%
recipes_path = utils.REPO_ROOT / "tests" / "qa_recipes.json"
recipes = json.loads(recipes_path.read_text()) if recipes_path.exists() else {}
dev_book = torch.tensor(tokenizer.encode(utils.split_text(corpus.train_text)[1]))
today_dev_loss = utils.evaluate_text(base, dev_book)  # identifies today's base model
print(f"book dev text: the last {len(dev_book) / len(corpus.train_text):.0%} of the training text "
      f"({len(dev_book):,} characters); today's base model's loss on it: {today_dev_loss:.4f}")


def base_label(entry: dict) -> str:
    """Whether a recorded run fine-tuned today's base model (same book dev loss) or another."""
    same = abs(entry["base_book_dev_loss"] - today_dev_loss) < 1e-4
    earlier = f"an earlier base model, book dev loss {entry['base_book_dev_loss']:.4f}"
    return "today's base model" if same else earlier


qa_now = hashlib.sha256(utils.QA_PATH.read_bytes()).hexdigest()[:16]  # today's Q&A file
columns = ["closed/dev_paraphrase", "closed/dev_unseen", "open/dev_paraphrase", "open/dev_unseen"]
print(f"{'recipe':<18} {'steps':>5}" + "".join(f"{c:>23}" for c in columns) + f"{'book rise':>10}")
for name, entry in recipes.items():
    cells = "".join(f"{entry[c]['exact_match']:>14.1%} (n={entry[c]['n']:>3})" for c in columns)
    rise = entry["book_dev_loss"] - entry["base_book_dev_loss"]
    older = f", older Q&A file; base: {entry['base']}" if entry["qa_sha256"] != qa_now else ""
    print(f"{name:<18} {entry['steps']:>5}{cells}{rise:>+10.4f}  ({base_label(entry)}{older})")
if recipes:
    print(f"\ncommands (each wrote its --out file, or {recipes_path.name} without one; "
          f"all merged into {recipes_path.name}):",
          *sorted({e["command"] for e in recipes.values()}), sep="\n  ")
    print("base model of these runs:", *sorted({e["base"] for e in recipes.values()}))
    older = sum(e["qa_sha256"] != qa_now for e in recipes.values())
    print(f"runs on an older Q&A file than today's: {older} of {len(recipes)}")
else:
    print(f"No results yet: run `python tests/qa_recipes.py` to write {recipes_path.name}.")

# %% [markdown]
# Fixed before the runs: among recipes with a book rise of at most `BOOK_BUDGET`, 0.05 (else the
# one that forgets least), the best dev-paraphrase exact match in its better mode wins, ties broken
# by dev-unseen; asserted to be `utils.FINETUNE_PLAN`.
#
# A score is a share of `n` questions, so it has a **standard error**, √(p(1 − p)/n).
# `utils.share_stderr` adds one right and one wrong answer (so 0 of `n` has one); `utils.share_gap`
# gives a gap's two standard errors.

# %%
BOOK_BUDGET = 0.05  # the largest rise of the book loss we accept
# one right and one wrong answer added: 0 of 100 has a standard error of about 1%
assert math.isclose(utils.share_stderr(0.0, 100), math.sqrt(1 / 102 * (101 / 102) / 100))


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
    print(f"within the book budget (one seed each): {', '.join(keep)}")
    print(f"chosen on dev: {chosen} ({best_dev(recipes[chosen])[0]:.1%} dev-paraphrase exact "
          f"match, book rise {book_rise(recipes[chosen]):+.4f})")
    if len(keep) > 1:
        runner_up = max((n for n in keep if n != chosen), key=lambda n: best_dev(recipes[n]))
        a, b = best_dev(recipes[chosen])[0], best_dev(recipes[runner_up])[0]
        n = recipes[chosen]["closed/dev_paraphrase"]["n"]
        _, bar = utils.share_gap(a, n, b, n)
        lead = "beyond question sampling (one run each)" if a - b > bar else "no measurable lead"
        print(f"ahead of {runner_up} ({b:.1%}) by {a - b:.1%}; two standard errors of the gap "
              f"over {n} questions: {bar:.1%} -> {lead}")
    ours = {k: v for k, v in dataclasses.asdict(utils.FINETUNE_PLAN).items() if k != "dev"}
    plan = {k: v for k, v in recipes[chosen]["plan"].items() if k != "dev"}
    print(f"utils.FINETUNE_PLAN = {ours}")
    assert plan == {**ours, "reading": 0}, "utils.FINETUNE_PLAN is not the dev winner"

# %% [markdown]
# The four fine-tuning recipes used AdamW alone; `mixed_pretraining` is older: 3,000 + 2,000 steps,
# an older dev split (other `n`), its book rise against a base it never started from, over budget by
# 0.0161, less than the book-rise gap between §9.2's two seeds of the Muon plan (0.0346, a stand-in
# for its own noise). The chosen plan run again on another base model (`nn.Dropout`) is the **dev
# check** (today: add `--optimizer adamw --steps 2000`; today's base gives other numbers):

# %%
check_path = utils.REPO_ROOT / "tests" / "qa_dev_check.json"
swings = {}  # the 2,000-step plan run twice (recorded above, dev check): how far apart?
if check_path.exists():
    dev_check = json.loads(check_path.read_text())["closed"]
    print("command:", dev_check["command"])
    print("base:", dev_check["base"], "=", base_label(dev_check))
    print(f"Q&A file is today's: {dev_check['qa_sha256'] == qa_now}")
    for column in columns:
        print(f"  {column:<22} {dev_check[column]['exact_match']:.1%} "
              f"(n={dev_check[column]['n']})")
    print(f"  book rise {dev_check['book_dev_loss'] - dev_check['base_book_dev_loss']:+.4f} "
          f"(budget {BOOK_BUDGET})")
    if "closed" in recipes:
        swings = {s: dev_check[f"closed/{s}"]["exact_match"]
                  - recipes["closed"][f"closed/{s}"]["exact_match"]
                  for s in ("fit", "dev_paraphrase")}
        print("the two runs' swing, closed-book (another base model and dropout):",
              ", ".join(f"{s} {v:+.1%}" for s, v in swings.items()))
    if swings and len(keep) > 1:
        both = abs(swings["dev_paraphrase"]) + bar  # the swing plus two standard errors of sampling
        size = "beyond" if a - b > both else "not beyond"
        print(f"the winner's dev-paraphrase lead, {a - b:.1%}, is {size} that swing plus the "
              f"sampling bar ({both:.1%}); the rule fixed in advance takes the measured best")

# %% [markdown]
# ## 9. How long to fine-tune, and with which optimizer?
# ### 9.1 AdamW's length
# The AdamW plan (the chosen plan, AdamW alone, 2,000 steps) also ran on dev for 1,000 to 3,000
# steps, each with its own warm-up and decay. The script now defaults to Muon: to repeat them
# (today's base and dropout), add `--optimizer adamw` (and `--steps 2000` where no length is given).

# %%
ADAMW_STEPS = 2000  # the AdamW plan's length, before §9.2
step_runs = {
    entry["steps"]: entry
    for entry in [recipes.get("closed")]
    + [json.loads(p.read_text())["closed"] for p in utils.REPO_ROOT.glob("tests/qa_steps_*.json")]
    if entry and entry["qa_sha256"] == qa_now
}
splits = ("closed/fit", "closed/dev_paraphrase")
counts = sorted({entry[split]["n"] for entry in step_runs.values() for split in splits})
print(f"exact match, closed-book, over {' or '.join(map(str, counts))} questions per split:")
print(f"{'steps':>5} {'fit':>7} {'dev-paraphrase':>15} {'book rise':>10}  command")
for steps, entry in sorted(step_runs.items()):
    print(f"{steps:>5} {entry['closed/fit']['exact_match']:>7.1%} "
          f"{entry['closed/dev_paraphrase']['exact_match']:>15.1%} {book_rise(entry):>+10.4f}  "
          f"{entry['command'].removeprefix('python tests/qa_recipes.py ')}")

# %% [markdown]
# Closed-book exact match against fine-tuning steps, ± two standard errors:

# %%
fig, ax = plt.subplots(figsize=(7, 3.4))
for split in ("fit", "dev_paraphrase"):
    scores = [step_runs[s][f"closed/{split}"] for s in sorted(step_runs)]
    ems = [x["exact_match"] for x in scores]
    errs = [2 * utils.share_stderr(x["exact_match"], x["n"]) for x in scores]
    ax.errorbar(sorted(step_runs), ems, yerr=errs, marker="o", capsize=3, label=split)
ax.axvline(ADAMW_STEPS, color="gray", linestyle=":", label="the AdamW plan")
ax.set(xlabel="fine-tuning steps", ylabel="closed-book exact match", ylim=(0, 1))
ax.set_title("The AdamW plan on dev, by fine-tuning length (one seed each)")
ax.legend(frameon=False)
ax.grid(alpha=0.3)
plt.show()

# %% [markdown]
# The rule, fixed before the longer runs: a longer run replaces AdamW's 2,000 steps only if its fit
# exact match gains more than two standard errors of the gap, its dev-paraphrase no lower by that
# much, and its book rise within `BOOK_BUDGET`. A shorter one replaces it if lower by that much on
# neither, within the same budget.

# %%
def gap_verdict(entry: dict, reference: dict, split: str,
                widen: float = 0.0) -> tuple[float, float, str]:
    """Gain of ``entry`` over ``reference`` on one dev split, two standard errors of the gap
    (plus ``widen``, e.g. a run-to-run swing), and the verdict."""
    a, b = entry[f"closed/{split}"], reference[f"closed/{split}"]
    gain, bar = utils.share_gap(a["exact_match"], a["n"], b["exact_match"], b["n"])
    bar += widen
    verdict = "higher" if gain > bar else "lower" if gain < -bar else "no measurable difference"
    return gain, bar, verdict


def length_verdicts(steps: int, entry: dict, reference: dict,
                    widen: dict | None = None) -> dict[str, tuple[float, float, str]]:
    """``gap_verdict`` on fit and dev-paraphrase, printed; ``widen``: a swing per split."""
    label = "two standard errors" + (" plus the runs' swing" if widen else "")
    verdicts = {}
    for split in ("fit", "dev_paraphrase"):
        verdicts[split] = gain, bar, verdict = gap_verdict(
            entry, reference, split, abs((widen or {}).get(split, 0.0)))
        print(f"{steps:>5} steps, {split:<15} {gain:+6.1%} ({label} {bar:.1%}): {verdict}")
    return verdicts


if ADAMW_STEPS in step_runs:
    reference, better = step_runs[ADAMW_STEPS], []
    for steps, entry in sorted(step_runs.items()):
        if steps == ADAMW_STEPS:
            continue
        verdicts = length_verdicts(steps, entry, reference)
        if steps > ADAMW_STEPS:  # longer: must gain on fit, lose nothing measurable
            ok = verdicts["fit"][2] == "higher" and verdicts["dev_paraphrase"][2] != "lower"
            assert all(v[2] == "no measurable difference" for v in verdicts.values())  # below
        else:  # shorter: must lose nothing measurable on either
            ok = all(v[2] != "lower" for v in verdicts.values())
            assert verdicts["fit"][2] == "lower"  # the sentence below says so
        if ok and book_rise(entry) <= BOOK_BUDGET:
            better.append(steps)
    stay = f"none: {ADAMW_STEPS} steps stay"
    print("replaces the AdamW plan's length:", better or stay)
    assert not better, "another length passes the rule: the AdamW plan should take it"
    print("base model of every run above:", *sorted({base_label(e) for e in step_runs.values()}))
    if swings:  # §8's two runs of the 2,000-step plan: the shorter lengths again, bars widened
        passing = []
        for steps, entry in sorted(step_runs.items()):
            if steps >= ADAMW_STEPS:
                continue
            verdicts = length_verdicts(steps, entry, reference, swings)
            if all(v[2] != "lower" for v in verdicts.values()) and book_rise(entry) <= BOOK_BUDGET:
                passing.append(steps)
        print("with the swing counted, shorter lengths the rule would take:", passing or "none")
        assert passing == [1500]  # the sentence below says so

# %% [markdown]
# By the rule (question sampling; one seed each), fewer AdamW steps lose on trained questions, more
# stay within noise: 2,000 stay. With §8's two runs' swing, 1,500 would pass; the fixed rule
# ignores it.
#
# ### 9.2 Fewer steps with Muon
# Muon (lesson 3 §3) fine-tunes §8's dev-check base for fewer steps, beside that check (AdamW).
# Their `--base` file held that base then, today's now:

# %%
def settings(entry: dict) -> tuple:
    """The schedule of a recorded run: optimizer, Muon's learning rate (if any), steps, seed."""
    optimizer = entry.get("optimizer", {"name": "adamw", "muon_lr": None})  # older runs: AdamW
    return optimizer["name"], optimizer["muon_lr"], entry["steps"], entry.get("seed", 1337)


muon_runs = {
    path.stem.removeprefix("qa_"): json.loads(path.read_text())["closed"]
    for path in sorted(utils.REPO_ROOT.glob("tests/qa_muon_*.json"))
}
adamw_check = json.loads(check_path.read_text())["closed"] if check_path.exists() else None
print(f"{'run':<20} {'optimizer':>9} {'muon_lr':>7} {'steps':>5} {'seed':>5} {'fit':>6} "
      f"{'dev-paraphrase':>15} {'book rise':>10}  base")
for name, entry in [("dev check", adamw_check), *muon_runs.items()]:
    if entry is not None:
        optimizer, muon_lr, steps, seed = settings(entry)
        print(f"{name:<20} {optimizer:>9} {muon_lr or '-':>7} {steps:>5} {seed:>5} "
              f"{entry['closed/fit']['exact_match']:>6.1%} "
              f"{entry['closed/dev_paraphrase']['exact_match']:>15.1%} "
              f"{book_rise(entry):>+10.4f}  {base_label(entry)}")
print("commands:", *(e["command"].removeprefix("python tests/qa_recipes.py ")
                     for e in muon_runs.values()), sep="\n  ")

# %% [markdown]
# The rule: §9.1's for a shorter run, against the dev check (fit and dev-paraphrase exact match no
# lower than the check's by more than two standard errors; book rise within `BOOK_BUDGET`); then
# fewest steps, then best dev-paraphrase. Seed
# 1337 is the recipe's; another seed shows the swing.

# %%
if adamw_check and muon_runs:
    first = {n: e for n, e in muon_runs.items() if settings(e)[3] == utils.FINETUNE.seed}
    passing, fit_verdicts = [], {}
    for name, entry in first.items():
        print(name)
        verdicts = length_verdicts(entry["steps"], entry, adamw_check)
        fit_verdicts[name] = verdicts["fit"][2]
        if all(v[2] != "lower" for v in verdicts.values()) and book_rise(entry) <= BOOK_BUDGET:
            passing.append(name)
    rank = lambda n: (first[n]["steps"], -first[n]["closed/dev_paraphrase"]["exact_match"])
    chosen_run = min(passing, key=rank) if passing else None
    print("passing the rule:", passing or "none", "| chosen:", chosen_run or "the AdamW plan")
    ours = (utils.FINETUNE.optimizer, utils.FINETUNE.muon_lr, utils.FINETUNE.max_steps)
    print(f"utils.FINETUNE: optimizer {ours[0]}, muon_lr {ours[1]}, {ours[2]} steps")
    dev_steps = first[chosen_run]["steps"]
    scale = len(utils.finetune_examples(corpus, utils.FINETUNE_PLAN)) / len(dev["fit"])
    print(f"full run: {dev_steps} dev steps x {scale:.3f} (train examples / fit examples) = "
          f"{dev_steps * scale:.0f}, rounded to {round(dev_steps * scale, -2):.0f}")
    full_steps = utils.full_run_steps(corpus, utils.FINETUNE_PLAN, dev_steps)
    assert full_steps == round(dev_steps * scale, -2)  # the helper is this rule
    if not utils.QUICK:  # quick mode shortens utils.FINETUNE
        assert settings(first[chosen_run])[:2] == ours[:2], "not FINETUNE's optimizer"
        assert ours[2] == round(dev_steps * scale, -2), "not FINETUNE's length"
        assert dev_steps == ADAMW_STEPS // 2  # "1,000 ... 2,000", below
    shorter = [n for n in first if first[n]["steps"] < first[chosen_run]["steps"]]
    assert shorter and all(fit_verdicts[n] == "lower" for n in shorter)  # "fewer steps lose"
    rises = []  # the book rise's swing between seeds
    for name, entry in muon_runs.items():
        if settings(entry)[:3] == settings(first[chosen_run])[:3] and name not in first:
            swing = {s: entry[f"closed/{s}"]["exact_match"]
                     - first[chosen_run][f"closed/{s}"]["exact_match"]
                     for s in ("fit", "dev_paraphrase")}
            rises.append(rise := book_rise(entry) - book_rise(first[chosen_run]))
            print(f"seed {settings(entry)[3]} against seed {utils.FINETUNE.seed}:",
                  ", ".join(f"{s} {v:+.1%}" for s, v in swing.items()) + f", book rise {rise:+.4f}")
    swing = max(map(abs, rises))
    same = [e for e in muon_runs.values() if settings(e)[:3] == settings(first[chosen_run])[:3]]
    more = [book_rise(e) - book_rise(adamw_check) for e in same]  # one per seed
    verdict = ("higher beyond the seeds' swing" if min(more) > swing else
               "higher with every seed, not beyond their swing" if min(more) > 0 else
               "no measurable difference")
    print("book rise against AdamW's, by seed:", ", ".join(f"{m:+.4f}" for m in more),
          f"(seeds' swing {swing:.4f}): {verdict}")
    assert verdict == "higher with every seed, not beyond their swing"  # below
    for name, entry in {**recipes, **first}.items():  # §8's recipes and these runs
        if book_rise(entry) > BOOK_BUDGET:
            over = book_rise(entry) - BOOK_BUDGET
            print(f"{name}: over the budget by {over:.4f}, "
                  f"{'beyond' if over > swing else 'within'} the seeds' swing")
            assert over < swing  # "by less than the swing", below

# %% [markdown]
# Muon's 1,000 steps (seed 1337's) show no measurable difference from AdamW's 2,000 in fit and
# dev-paraphrase exact match; its book rise is higher with both seeds, not beyond their swing,
# within the budget. Fewer Muon steps lose on fit. The budget ignores the swing (two runs exceed it
# by less than the swing). §6's fine-tune on the whole train split has more examples than `fit`, so
# its steps grow in the same ratio (printed above).

# %% [markdown]
# ### 9.3 Forgetting on text the base never read
# §8's book dev text was read by the base. `--dev-base` pretrains a base without it and keeps
# replay off it; from it, Muon's plan with two seeds, beside §7's full run (more steps and
# examples, another base and text):

# %%
unread_path = utils.REPO_ROOT / "tests" / "qa_unread_book.json"
unread_runs = json.loads(unread_path.read_text()) if unread_path.exists() else {}
for label, entry in unread_runs.items():
    print(f"{label}: {settings(entry)[:3]}, base book dev {entry['base_book_dev_loss']:.4f},"
          f" book rise {book_rise(entry):+.4f}, fit {entry['closed/fit']['exact_match']:.1%}, "
          f"dev-paraphrase {entry['closed/dev_paraphrase']['exact_match']:.1%}")
if unread_runs:
    unread_rises = [book_rise(entry) for entry in unread_runs.values()]
    seeds_apart, gap = max(unread_rises) - min(unread_rises), change - max(unread_rises)
    noise = max(seeds_apart, swing)  # swing: §9.2's two seeds of this plan, on read text
    side = "beyond the noise" if abs(gap) > noise else "no measurable difference: within the noise"
    print(f"full run (§7), on the validation text: {change:+.4f}: "
          f"{'above' if gap > 0 else 'below'} the unread runs' higher seed by {abs(gap):.4f}; "
          f"{side} ({noise:.4f}: these seeds {seeds_apart:.4f}, §9.2's {swing:.4f})")

# %% [markdown]
# Two seeds are a thin sample: §9.2's two seeds of this plan moved the rise far more, so that
# swing is the noise. More seeds would tell if the full run forgets more.

# %% [markdown]
# ## Summary
#
# - One vocabulary and one prompt format (ending in `<end>`) serve training, generation and
#   evaluation.
# - Padding targets are `-100` anyway; the answer-only mask sets the prompt's too.
# - Book replay mixes book windows into the steps; `evaluate_text` measures forgetting.
# - Prompt mode, optimizer and length are chosen on a dev split of train; the checkpoint saves
#   the plan.

# %% [markdown]
# ## Exercises
#
# 1. **What the mask removes.** Encode a training record with `utils.encode_qa`, with and
#    without `mask_question`; count targets that are not `-100`.
# 2. **The original notebook's prompt.** Ask the fine-tuned model `"Q: ...\nA:"` instead of
#    `utils.qa_prompt`. What does it write?
# 3. **A changed plan.** On a copy of the checkpoint, run `utils.finetune` for one step with
#    another `book_fraction`; read the warning.

# %% [markdown]
# ## Solutions
#
# Each solution is a code cell, run with the lesson and its tests. In Jupyter it starts
# collapsed: click to open it.
#
# **Solution 1.** The same record, with and without the answer-only mask:

# %% jupyter={"source_hidden": true}
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
# **Solution 2.** The model never saw `Q:` / `A:` in fine-tuning, so it continues the prompt as
# ordinary text. Beside it, the trained format:

# %% jupyter={"source_hidden": true}
question = qa["train"][0]["question"]
print("Q:/A: format:", repr(utils.generate(ft_model, tokenizer, f"Q: {question}\nA:", 60,
                                           temperature=0.0)))
print("qa_prompt   :", repr(utils.answer(ft_model, tokenizer, question)))

# %% [markdown]
# **Solution 3.** The warning names the changed field; the copy is retrained from the base model;
# the lesson's checkpoint is untouched:

# %% jupyter={"source_hidden": true}
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
