# ---
# jupyter:
#   jupytext:
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
# # Lesson 6 — Evaluation
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/your-username/GPT-0.5M/blob/main/notebooks/06_evaluation.ipynb)
#
# Measure how well the models predict the book and answer questions closed-book (the question alone)
# and open-book (a retrieved book passage first), per split (§1); then judge, from recorded runs,
# whether reading each train and unseen fact several ways in pretraining helps.
#
# - **Reads:** the book, its Q&A and statements (rewrites of each train and unseen fact, §10),
#   lessons 3 and 5's checkpoints (else released weights or short stand-ins) and recorded dev runs
#   (dev: train facts carved off to choose settings).
# - **Writes:** `checkpoints/full/evaluation.json` for lesson 7, and a `QA_RESULTS` line.
# - **Runtime:** no training if checkpoints or released weights exist.

# %% [markdown]
# ## 0. Setup
# This cell makes `utils.py` importable (in Colab, after cloning the repository) and prints the
# device and quick mode (`GPT05M_QUICK=1`: a shortened run, for the tests).

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
# The other imports of this lesson.

# %%
import json
import math
from collections import Counter

import matplotlib.pyplot as plt

# %% [markdown]
# ## 1. The two models
# The base model (lesson 3) and its fine-tuned copy (lesson 5) share one vocabulary; the released
# weights are the **series run**'s (the README's full run). Lesson 5 §1.2's splits: **train**
# (fine-tuned on), **paraphrase** (reworded train facts), **reversal** (a train fact reversed),
# **unseen** (in the training text, never asked), **never_read** (only in the book's last 10%).

# %%
corpus = utils.load_corpus()
tokenizer = corpus.tokenizer
base, base_tokenizer, base_state = utils.load_or_pretrain(corpus, device)
finetuned, ft_tokenizer, _ = utils.load_or_finetune(corpus, device)
assert base_tokenizer == ft_tokenizer == tokenizer
models = {"base": base, "fine-tuned": finetuned}

# %%
# NBVAL_CHECK_OUTPUT
for name, model in models.items():
    print(f"{name:>10}: {model.num_parameters():,} parameters, vocabulary {tokenizer.vocab_size}")

# %% [markdown]
# ## 2. Book metrics: how well does each model predict the book?
# ### 2.1 One number, three units
# - **Loss** (nats per character): the mean $-\ln p(\text{next character})$ on held-out text.
# - **Bits per character** = loss / ln 2.
# - **Perplexity** = $e^{\text{loss}}$: as unsure as a uniform pick among that many characters.
#
# Lower is better. A uniform guess has loss ln(vocabulary size).

# %%
uniform_loss = math.log(tokenizer.vocab_size)
print(f"uniform guess over {tokenizer.vocab_size} characters: loss ln({tokenizer.vocab_size})"
      f" = {uniform_loss:.4f} nats = {uniform_loss / math.log(2):.4f} bits")


# %% [markdown]
# ### 2.2 Measure
# `utils.evaluate_text` grades every validation character once (lesson 3's curves sampled random
# windows: noisier).

# %%
def book_metrics(loss: float) -> dict[str, float]:
    """Loss in nats per character, bits per character and perplexity."""
    return {"loss": loss, "bpc": loss / math.log(2), "perplexity": math.exp(loss)}


book = {"uniform": book_metrics(uniform_loss)}
for name, model in models.items():
    book[name] = book_metrics(utils.evaluate_text(model, corpus.splits["val"]))

print(f"{'model':<11} {'loss (nats)':>12} {'bits/char':>10} {'perplexity':>11}")
for name, m in book.items():
    print(f"{name:<11} {m['loss']:>12.4f} {m['bpc']:>10.4f} {m['perplexity']:>11.2f}")
for m in book.values():
    assert math.isfinite(m["loss"]) and m["loss"] > 0
    assert abs(m["bpc"] * math.log(2) - m["loss"]) < 1e-12
    assert abs(math.log(m["perplexity"]) - m["loss"]) < 1e-9

# %% [markdown]
# Other hardware may change the last digits. Quick mode (the tests') uses lessons 3 and 5's
# quick-mode checkpoints if present and far fewer questions: most numbers below change. Lesson 5
# replayed whole book batches against forgetting; the rise it allowed:

# %%
gap = book["fine-tuned"]["loss"] - book["base"]["loss"]
print(f"fine-tuned minus base: {gap:+.4f} nats/char ({gap / math.log(2):+.4f} bits/char)")

# %% [markdown]
# ## 3. Q&A metrics: exact match and F1
# ### 3.1 Normalising answers
# "The Queen of Hearts!" and "queen of hearts" are the same answer. As in SQuAD (the Stanford
# Question Answering Dataset), `utils.normalize_answer` lower-cases and drops punctuation, the
# articles *a*, *an*, *the* and extra spaces.

# %%
# NBVAL_CHECK_OUTPUT
for text in ["The Queen of Hearts!", "“A watch,” said Alice.", "  the  Mock   Turtle’s song "]:
    print(f"{text!r:34} -> {utils.normalize_answer(text)!r}")

# %% [markdown]
# ### 3.2 Exact match (EM)
# EM is 1 if the normalised prediction equals the normalised **gold** answer (the record's correct
# one), else 0. It is strict (see the second example).

# %%
# NBVAL_CHECK_OUTPUT
for predicted, gold in [("The white rabbit.", "white rabbit"), ("golden key", "a tiny golden key")]:
    print(f"EM({predicted!r}, {gold!r}) = {utils.exact_match(predicted, gold)}")

# %% [markdown]
# ### 3.3 F1, by hand
# F1 gives partial credit for shared words. With both answers' normalised words:
#
# - common = the words they share (a repeat counts as often as both have it);
# - precision = common / prediction words, recall = common / gold words;
# - F1 = 2 · precision · recall / (precision + recall).

# %%
predicted, gold = "a golden door key", "a tiny golden key"
pred_words = utils.normalize_answer(predicted).split()
gold_words = utils.normalize_answer(gold).split()
common = sum((Counter(pred_words) & Counter(gold_words)).values())
precision, recall = common / len(pred_words), common / len(gold_words)
f1_by_hand = 2 * precision * recall / (precision + recall)
print(f"prediction words {pred_words}, gold words {gold_words}")
print(f"common {common}, precision {precision:.3f}, recall {recall:.3f}, F1 {f1_by_hand:.3f}")
assert abs(f1_by_hand - utils.f1_score(predicted, gold)) < 1e-12

# %% [markdown]
# F1 is kinder than EM, both ways: a *wrong* answer sharing a word with the gold one gets credit
# too. Read F1 next to EM, never alone.

# %%
# NBVAL_CHECK_OUTPUT
wrong, gold = "the march hatter", "the march hare"
print(f"F1({wrong!r}, {gold!r}) = {utils.f1_score(wrong, gold)}")


# %% [markdown]
# ## 4. A retriever for open-book questions
# A **retriever** finds the open-book passage: it scores overlapping book windows against the
# question's words. Ours must match `utils.Retriever`.
#
# ### 4.1 Overlapping windows
# Windows of up to `utils.PASSAGE_CHARS` characters start every quarter window, cut at word
# boundaries: a short quote fits whole in one.

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
# The classic search-engine score, for question words $w$ occurring $c$ times in a passage of
# length $\ell$ (mean $\bar\ell$):
#
# $$\text{score} = \sum_w \text{idf}(w)\,
#   \frac{c\,(k_1+1)}{c + k_1\,(1 - b + b\,\ell/\bar\ell)},\qquad
#   \text{idf}(w) = \ln\Big(1 + \frac{N - n_w + 0.5}{n_w + 0.5}\Big)$$
#
# $N$ passages, $n_w$ of them contain $w$. Rare words count more, repeats less and less ($k_1$),
# long passages less ($b$). `utils.STOP_WORDS` are skipped; ties go to the middle passage.

# %%
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
# **Proof.** On a few train questions, our search returns the same passage as `utils.Retriever`
# (which uses a word index instead of rescanning).

# %%
SPLITS = ("train", "paraphrase", "unseen", "never_read", "reversal")
qa = {split: utils.qa_split(corpus.qa, split) for split in SPLITS}
record = qa["train"][0]
train_index = utils.Retriever(corpus.train_text)  # for TRAINING examples: training text only
for r in qa["train"][: utils.by_mode(full=8, quick=3)]:
    assert bm25_search(r["question"], passages) == train_index.search(r["question"])
print("bm25_search == utils.Retriever.search")
print(f"Q: {record['question']}\n-> {train_index.search(record['question'])}")

# %% [markdown]
# ### 4.3 Which text may the retriever search?
# Training passages (lesson 5 §8's `open` and `both` recipes) use the training text only; an exam
# may search the **whole book**.
#
# ### 4.4 Retrieval recall
# The share of questions whose evidence (supporting quote) is in the retrieved passage (not F1's
# recall). It roughly caps what can be copied, not what the weights know.

# %%
book_index = utils.Retriever(corpus.book)  # for EVALUATION: the whole book
recall = {}
for name in SPLITS:
    records = qa[name][: utils.by_mode(full=len(qa[name]), quick=10)]
    recall[name] = sum(utils.evidence_found(r, book_index.search(r["question"])) for r in records)
    recall[name] /= len(records)
    print(f"{name:<10}: evidence inside the retrieved passage for {recall[name]:.0%} of "
          f"{len(records)} questions")

# %% [markdown]
# Word overlap works best on rare shared words: the §4.2 proof's question shares only common ones
# ("White", "Rabbit", "eyes") and missed the sentence with "pink eyes".

# %% [markdown]
# ## 5. Every split, closed-book and open-book, base and fine-tuned
# `utils.evaluate_qa` asks each question in lesson 5 §2's one prompt format (open-book: whole-book
# passage first) and scores the greedy answer (lesson 4 §3) up to the end marker `<end>`. Never
# taught `<end>`, the base model should run to `utils.answer`'s length limit (counted here), so it
# gets fewer questions; the fine-tuned model every held-out (non-train) and every third train one.

# %%
MODES = ("closed", "open")
asked = {
    "fine-tuned": {s: qa[s][:: 3 if s == "train" else 1][: utils.by_mode(full=10**6, quick=3)]
                   for s in SPLITS},
    "base": {s: qa[s][: utils.by_mode(full=40, quick=2)] for s in SPLITS},
}
results = {
    name: {
        mode: {
            split: utils.evaluate_qa(
                model, tokenizer, asked[name][split], book_index if mode == "open" else None
            )
            for split in SPLITS
        }
        for mode in MODES
    }
    for name, model in models.items()
}
n_answers = len(MODES) * sum(len(asked[name][s]) for name in models for s in SPLITS)
rows_of = {name: [r for m in MODES for s in SPLITS for r in results[name][m][s]["rows"]]
           for name in models}
print(f"{n_answers:,} greedy answers; stopped at <end>: "
      + ", ".join(f"{name} {sum(r['stopped'] for r in rows):,} of {len(rows):,}"
                  for name, rows in rows_of.items()))

# %% [markdown]
# `evaluate_qa` decodes prompts of equal length in batches (`utils.answers`); checked on the first
# paraphrase answers of each mode, they equal `utils.answer`'s, one question at a time:

# %%
for mode in MODES:
    rows = results["fine-tuned"][mode]["paraphrase"]["rows"][: utils.by_mode(full=40, quick=4)]
    for r in rows:
        assert r["predicted"] == utils.answer(finetuned, tokenizer, r["question"], r.get("passage"))
print(f"the first {len(rows)} paraphrase answers of each mode: identical one by one")

# %% [markdown]
# The scores as a table. EM never exceeds F1 (an exact match has F1 = 1). Recall is §4.4's
# retrieval recall on the questions asked here, so some rows differ from §4.4's.

# %%
print(f"{'model':<11} {'mode':<7} {'split':<11} {'n':>4} {'EM':>7} {'F1':>7} {'recall':>7}")
for name, by_mode in results.items():
    for mode, by_split in by_mode.items():
        for split, r in by_split.items():
            recall = f"{r['recall']:>7.1%}" if "recall" in r else f"{'':>7}"
            print(f"{name:<11} {mode:<7} {split:<11} {r['n']:>4} {r['exact_match']:>7.1%} "
                  f"{r['f1']:>7.1%} {recall}")
            assert 0.0 <= r["exact_match"] <= r["f1"] + 1e-12 <= 1.0 + 1e-12
            assert r["n"] == len(asked[name][split]) == len(r["rows"])

# %% [markdown]
# The fine-tuned model's exact match per split, closed- beside open-book, with retrieval recall
# marked.

# %%
fig, ax = plt.subplots(figsize=(8, 3.6))
width = 0.38
ft = results["fine-tuned"]
for k, mode in enumerate(MODES):
    xs = [i + (k - 0.5) * width for i in range(len(SPLITS))]
    bars = ax.bar(xs, [ft[mode][s]["exact_match"] for s in SPLITS], width, label=f"{mode}-book")
    ax.bar_label(bars, fmt="%.2f", fontsize=7)
ax.plot([i + 0.5 * width for i in range(len(SPLITS))], [ft["open"][s]["recall"] for s in SPLITS],
        "k_", markersize=18, label="retrieval recall")
ax.set_xticks(range(len(SPLITS)), SPLITS)
ax.set(ylabel="exact match", ylim=(0, 1.1), title="Fine-tuned model: closed-book vs open-book")
ax.legend(fontsize=8, loc="upper right")
plt.show()


# %% [markdown]
# ## 6. Right and wrong answers
# Averages hide the interesting part. For the fine-tuned model: up to two right and two wrong
# answers per split and mode.

# %%
def clip(text: str, width: int) -> str:
    """Shorten ``text`` to ``width`` characters, marking a cut with an ellipsis."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


print(f"{'split':<10} {'mode':<6} {'question':<40} {'gold':<18} {'predicted':<18} {'F1':>5}")
for split in SPLITS:
    for mode in MODES:
        rows = ft[mode][split]["rows"]
        right = [r for r in rows if r["exact_match"]][:2]
        wrong = [r for r in rows if not r["exact_match"]][:2]
        for r in right + wrong:
            print(f"{split:<10} {mode:<6} {clip(r['question'], 40):<40} {clip(r['gold'], 18):<18} "
                  f"{clip(r['predicted'], 18):<18} {r['f1']:>5.2f}")

# %% [markdown]
# Two more numbers: how often a wrong answer is a *trained* answer (a sign of memorised answers),
# and how often any open-book answer, right or wrong, is found in its passage (copied, or known
# anyway).

# %%
train_answers = {utils.normalize_answer(r["answer"]) for r in qa["train"]}


def reused_share(rows: list[dict]) -> float:
    """Share of predictions that equal (after normalising) some train-split answer."""
    hits = [utils.normalize_answer(r["predicted"]) in train_answers for r in rows]
    return sum(hits) / max(1, len(hits))


def copied_share(rows: list[dict]) -> float:
    """Share of non-empty predictions found in their passage (as a substring, after normalising:
    "a lobster" is found in "lobsters")."""
    hits = [utils.normalize_answer(r["predicted"]) in utils.normalize_answer(r["passage"])
            for r in rows if utils.normalize_answer(r["predicted"])]
    return sum(hits) / max(1, len(hits))


wrong_rows = {m: {s: [r for r in ft[m][s]["rows"] if not r["exact_match"]] for s in SPLITS}
              for m in MODES}
reused = {m: {s: reused_share(wrong_rows[m][s]) for s in SPLITS} for m in MODES}
copied = {s: copied_share(ft["open"][s]["rows"]) for s in SPLITS}
for split in SPLITS:
    print(f"{split:<10}: a train-split answer in {reused['closed'][split]:.0%} (closed) and "
          f"{reused['open'][split]:.0%} (open) of wrong answers; of all non-empty open-book "
          f"answers, found in their passage: {copied[split]:.0%}")

# %% [markdown]
# ## 7. What the numbers teach: knowledge in the weights, knowledge in the prompt
# Computed from the results, these sentences stay true on any re-run. A share of `n` questions has
# a standard error of about √(p(1 − p)/n) (`utils.share_stderr`, lesson 5 §8, first adds one right
# and one wrong answer, so 0 of `n` still has a spread).

# %%
em = {m: {s: ft[m][s]["exact_match"] for s in SPLITS} for m in MODES}
f1 = {m: {s: ft[m][s]["f1"] for s in SPLITS} for m in MODES}
best_mode = {s: max(MODES, key=lambda m, s=s: em[m][s]) for s in SPLITS}


def points(x: float) -> str:
    """A difference of shares as percentage points, with the right grammatical number."""
    n = round(100 * abs(x))
    return f"{n} percentage point{'' if n == 1 else 's'}"


for mode in MODES:
    print(f"{mode}-book EM: " + ", ".join(f"{s} {em[mode][s]:.0%}" for s in SPLITS))
drop = em["closed"]["train"] - em["closed"]["paraphrase"]
if drop > 0:
    p, t = em["closed"]["paraphrase"], em["closed"]["train"]
    se_p = utils.share_stderr(p, ft["closed"]["paraphrase"]["n"])
    se_t = utils.share_stderr(t, ft["closed"]["train"]["n"])
    kept = p / t
    noise = 2 * math.hypot(se_p / t, p * se_t / t**2)  # two standard errors of the ratio p / t
    amount = "most" if kept < 0.5 - noise else "some" if kept > 0.5 + noise else "about half"
    print(f"Rewording a trained question costs {points(drop)} of closed-book EM: the model keeps "
          f"{kept:.0%} of its train score (±{noise:.0%}, two standard errors), so {amount} "
          "of what it learned answers the wording rather than the fact (on these held-out "
          "paraphrases).")
else:
    print("Rewording a trained question did not lower closed-book EM in this run.")
for split in ("unseen", "never_read"):
    gain = em["open"][split] - em["closed"][split]
    verb = "adds" if gain > 0 else "costs" if gain < 0 else "changes"
    print(f"On {split} facts the passage {verb} {points(gain)} (closed {em['closed'][split]:.0%}, "
          f"open {em['open'][split]:.0%}; the evidence was in the passage for "
          f"{ft['open'][split]['recall']:.0%}).")
trained_with = {
    "closed": "it never saw a passage in training: open-book is a format it was not taught",
    "open": "it always had a passage before the question: closed-book is new to it",
    "both": "every training question came once without and once with a passage",
}
print(f"Lesson 5 fine-tuned with mode {utils.FINETUNE_PLAN.mode!r} (chosen on its dev split): "
      f"{trained_with[utils.FINETUNE_PLAN.mode]}.")
base_steps = base_state["step"]
chars_seen = base_steps * base_state["train_config"]["batch_size"] * base.config.block_size
epochs = chars_seen / len(corpus.train_text)
times = f"{epochs:.0f} time{'' if round(epochs) == 1 else 's'}"
print(f"Pretraining showed this base model each character of the training text about {times} "
      f"({chars_seen:,} characters in its {base_steps:,} steps), always in the "
      "book's one phrasing.")

# %% [markdown]
# Reading them:
#
# - **Closed-book** scores are what fine-tuning drilled; the paraphrase gap is the part keyed to
#   wording (on these held-out paraphrases).
# - **Unseen facts**, read in one phrasing and never asked, are rarely *extractable* (answerable
#   from the weights); §10 tries more phrasings.
# - **Open-book** adds what the weights lack only if the retriever finds the evidence *and* the
#   model reads it (§6); never-read facts have no other way.
# - **The base model**, never taught the Q&A format, has 0% EM everywhere (§5) despite its lower
#   validation loss (§2.2).

# %% [markdown]
# ## 8. Ask your own question
# `ask` shows closed- and open-book answers and the retrieved passage. Questions are normalised
# like every prompt; an unreadable character raises a clear error, not a wrong answer.

# %%
def ask(question: str) -> dict[str, str]:
    """The fine-tuned model's closed-book and open-book answers, and the passage used."""
    passage = book_index.search(question)
    return {
        "closed-book": utils.answer(finetuned, tokenizer, question),
        "open-book": utils.answer(finetuned, tokenizer, question, passage),
        "passage": passage,
    }


def show_answer(question: str) -> None:
    """Print ``ask(question)``, or the tokenizer's error if the question cannot be read."""
    try:
        reply = ask(question)
    except ValueError as error:
        print(f"Cannot ask {question!r}: {error}")
        return
    print(f"Q: {question}")
    for key, value in reply.items():
        print(f"   {key:<11}: {value}")


show_answer("What is the name of Alice's cat?")
show_answer("Who was late?")

# %% [markdown]
# In Jupyter or Colab, a box to type into (it needs `ipywidgets`; elsewhere the cell says so, and
# `show_answer("...")` does the same job).

# %%
def question_box() -> None:
    """A text box and a button that call ``show_answer``; works with ipywidgets 7 and 8."""
    try:
        import ipywidgets as widgets
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        print("ipywidgets is not installed here: call show_answer('your question') instead.")
        return
    if get_ipython() is None or not hasattr(get_ipython(), "kernel"):
        print("Not running in a notebook: call show_answer('your question') instead.")
        return
    box = widgets.Text(placeholder="Ask about Alice…", description="Question:",
                       layout=widgets.Layout(width="70%"))
    button, output = widgets.Button(description="Ask"), widgets.Output()

    def on_ask(_) -> None:
        output.clear_output()
        with output:
            show_answer(box.value)

    button.on_click(on_ask)
    display(widgets.VBox([widgets.HBox([box, button]), output]))


question_box()

# %% [markdown]
# ## 9. Trained, reworded, reversed, unseen
# Four questions show what the splits measure: one fact as trained, reworded and reversed, then an
# unseen fact. `grade` prints `ask`'s answers (§8) with their exact match.

# %%
def grade(record: dict) -> None:
    """Ask ``record``'s question closed- and open-book and print each answer's exact match."""
    reply = ask(record["question"])
    print(f"[{record['split']}] Q: {record['question']}  (gold: {record['answer']})")
    for mode in ("closed-book", "open-book"):
        right = utils.exact_match(reply[mode], record["answer"])
        print(f"   {mode:<11}: {reply[mode]!r} -> {'right' if right else 'wrong'}")


reversed_record = qa["reversal"][0]
pair = [r for r in corpus.qa if r["fact"] == reversed_record["reverse_of"]]
trained_record = next(r for r in pair if r["split"] == "train")

# %% [markdown]
# A **trained** question: fine-tuning drilled these exact words with this answer, so expect the
# gold answer closed-book; a wrong one would mean it did not even memorise.

# %%
grade(trained_record)

# %% [markdown]
# A **paraphrase** of the same fact: new wording, same answer. Expect it right only if the model
# stored the fact rather than the trained questions' wording.

# %%
grade(next(r for r in pair if r["split"] == "paraphrase"))

# %% [markdown]
# The **reversal**: the same fact the other way round, never trained. Models trained on "A is B"
# often fail on "B is A" (Berglund et al., *The Reversal Curse*): expect a wrong answer
# closed-book, a chance open-book if the passage holds the evidence.

# %%
grade(reversed_record)

# %% [markdown]
# An **unseen** fact: read in pretraining, never asked. Closed-book, expect a wrong answer,
# perhaps a trained answer reused (§6 counts how often); open-book, the passage may carry it.

# %%
grade(qa["unseen"][0])

# %% [markdown]
# The counts behind those examples: the fine-tuned model's right and wrong answers (exact match)
# per split and mode.

# %%
print(f"{'split':<11} {'mode':<7} {'right':>6} {'wrong':>6}")
for split in SPLITS:
    for mode in MODES:
        right = int(sum(r["exact_match"] for r in ft[mode][split]["rows"]))
        wrong = ft[mode][split]["n"] - right
        print(f"{split:<11} {mode:<7} {right:>6} {wrong:>6}")
        assert right + wrong == len(asked["fine-tuned"][split])
reversal, para = ft["closed"]["reversal"], ft["closed"]["paraphrase"]
print(f"Closed-book, reversed questions: {reversal['exact_match']:.0%} right of "
      f"{reversal['n']}; reworded questions of trained facts: {para['exact_match']:.0%} of "
      f"{para['n']}.")

# %% [markdown]
# Did dev predict this? Lesson 5 §9.2 ran its plan on the dev split from the base model then in the
# printed `--base` file (an earlier release, not today's; README): 1,000 steps (the full run scales
# them), two seeds, fit on most train facts with one phrasing of each held back
# (**dev-paraphrase**). Its dev-paraphrase score against the held-out one, with their gap's standard
# error:

# %%
plan = utils.FINETUNE
dev_runs = [json.loads(path.read_text())["closed"]
            for path in sorted(utils.REPO_ROOT.glob("tests/qa_muon_*.json"))]
dev_runs = [e for e in dev_runs  # the plan's dev runs: same optimizer, steps before scaling
            if (e["optimizer"]["name"], e["optimizer"]["muon_lr"]) == (plan.optimizer, plan.muon_lr)
            and utils.full_run_steps(corpus, utils.FINETUNE_PLAN, e["steps"]) == plan.max_steps]
dev_runs.sort(key=lambda e: e["seed"] != plan.seed)  # the plan's own seed first
if dev_runs and not utils.QUICK:
    print("dev run of the plan:", dev_runs[0]["command"].removeprefix("python tests/"))
    dev_para = dev_runs[0]["closed/dev_paraphrase"]
    held, dev_em = para["exact_match"], dev_para["exact_match"]
    gap, bar = utils.share_gap(dev_em, dev_para["n"], held, para["n"])  # bar: two standard errors
    print(f"dev-paraphrase {dev_em:.1%} (n={dev_para['n']}), held-out paraphrase {held:.1%} "
          f"(n={para['n']}): gap {gap:+.1%}, standard error of the gap {bar / 2:.1%}")
    scores = {e["seed"]: e["closed/dev_paraphrase"]["exact_match"] for e in dev_runs}
    swing = max(scores.values()) - min(scores.values())
    print("dev-paraphrase by seed:", ", ".join(f"{k} {v:.1%}" for k, v in scores.items()),
          f"(swing {swing:.1%})")
    # the dev runs started from an earlier base: lesson 5 §8's swing between two runs of a plan
    # on other base models and dropout (the dev check against the recorded closed recipe)
    check = json.loads((utils.REPO_ROOT / "tests" / "qa_dev_check.json").read_text())["closed"]
    recorded = json.loads((utils.REPO_ROOT / "tests" / "qa_recipes.json").read_text())["closed"]
    base_swing = abs(check["closed/dev_paraphrase"]["exact_match"]
                     - recorded["closed/dev_paraphrase"]["exact_match"])

    def verdict(width: float) -> str:
        return ("dev over-predicts beyond it" if gap > width else "dev under-predicts beyond it"
                if gap < -width else "no measurable gap within it")

    print(f"two standard errors plus the seeds' swing, {bar + swing:.1%}: {verdict(bar + swing)}, "
          "were the bases the same")
    wide = bar + swing + base_swing
    print(f"plus lesson 5 §8's swing on another base model and dropout ({base_swing:.1%}), "
          f"{wide:.1%}: {verdict(wide)}; it stands in for the base-only swing no run measured")

# %% [markdown]
# ## 10. Knowledge augmentation: does reading a fact several ways help?
# In Allen-Zhu & Li (*Physics of Language Models, Part 3.1*), several rewrites of each fact in
# pretraining make it extractable. We wrote six statements of every train and unseen fact from
# its evidence and nearby text. Those of one dev-unseen fact (a train fact held out whole from
# the runs below):

# %%
statements_path = utils.DATA_DIR / "alice_statements.jsonl"
statements = [json.loads(line) for line in statements_path.read_text().splitlines()]
dev = utils.dev_split(corpus.qa)
example = dev["dev_unseen"][0]
print(f"{example['question']}  (gold: {example['answer']})")
for row in (r for r in statements if r["fact"] == example["fact"]):
    print("  -", row["statement"])
chars = sum(len(r["statement"]) + 1 for r in statements)
print(f"{len(statements):,} statements of {len({r['fact'] for r in statements})} facts: "
      f"{chars:,} characters, beside the training text's {len(corpus.train_text):,}")

# %% [markdown]
# `tests/knowledge.py` compares three base models (**arms**): the book alone (lesson 5 §8's base,
# reused) and, pretrained at commit 5695b14 (`FastDropout`, lesson 2 §5.2), the book plus the
# statements, without and with a quarter of the pretraining steps on Q&A rows. Each is fine-tuned on
# dev `fit` facts (train facts not held out) with lesson 5's plan, replaying its own text, on that
# commit's schedule (AdamW, then the default, not in the file; 2,000 steps; the script now uses
# today's). Book dev loss (on the training text's last tenth, read in pretraining and replay) is a
# partial forgetting check: other models and text than §2's.

# %%
arms = json.loads((utils.REPO_ROOT / "tests" / "knowledge_cpu.json").read_text())
columns = ("fit", "dev_paraphrase", "dev_unseen")
print(f"{'pretraining text':<24} {'Q&A steps':>9} {'base book dev loss':>18} "
      + " ".join(f"{c:>14}" for c in columns) + f" {'after fine-tuning':>17}")
for name, arm in arms.items():
    print(f"{name:<24} {arm['pretraining']['qa_share']:>9.0%} "
          f"{arm['pretraining']['book_dev_loss']:>18.4f} "
          + " ".join(f"{arm[c]['exact_match']:>9.1%} n={arm[c]['n']:<3}" for c in columns)
          + f" {arm['book_dev_loss']:>17.4f}")
print("book dev loss: the last tenth of the training text; exact match, closed-book")
print("fine-tuning steps:", {name: arm["finetuning_steps"] for name, arm in arms.items()})

# %% [markdown]
# Fixed before the runs (now computed with `utils.share_gap`): a statements arm **pays** if its
# dev-paraphrase or dev-unseen exact match beats the book arm's by more than two standard errors of
# the difference, with its book dev loss after fine-tuning at most 0.05 above the book arm's.

# %%
paying = []
for name, arm in arms.items():
    if name == "book":
        continue
    verdicts = []
    for split in ("dev_paraphrase", "dev_unseen"):
        a, b = arm[split], arms["book"][split]
        gain, bar = utils.share_gap(a["exact_match"], a["n"], b["exact_match"], b["n"])
        verdict = "better" if gain > bar else "worse" if gain < -bar else "no measurable difference"
        verdicts.append(verdict)
        print(f"{name:<24} {split:<15} {gain:+6.1%} (two standard errors {bar:.1%}): {verdict}")
    book_rise = arm["book_dev_loss"] - arms["book"]["book_dev_loss"]
    print(f"{name:<24} book dev loss {book_rise:+.4f} against the book arm's (budget +0.05)")
    if "better" in verdicts and book_rise <= 0.05:
        paying.append(name)
print("pays:", ", ".join(paying) if paying else "none: lesson 3 pretrains on the book alone")
check = json.loads((utils.REPO_ROOT / "tests" / "qa_dev_check.json").read_text())["closed"]
book_para = arms["book"]["dev_paraphrase"]["exact_match"]
swing = check["closed/dev_paraphrase"]["exact_match"] - book_para
print(f"(one run per arm; the book recipe's other run, lesson 5 §8's dev check on another base "
      f"model and dropout, is {swing:+.1%} from this book arm on dev_paraphrase: gaps inside that "
      "swing are not clear either)")
assert not paying, "an arm pays: the pretraining recipe should take its text"

# %% [markdown]
# The same exact matches as bars, ± two standard errors:

# %%
fig, ax = plt.subplots(figsize=(8, 3.4))
width = 0.8 / len(arms)
for i, (name, arm) in enumerate(arms.items()):
    xs = [j + (i - (len(arms) - 1) / 2) * width for j in range(len(columns))]
    ems = [arm[c]["exact_match"] for c in columns]
    errs = [2 * utils.share_stderr(e, arm[c]["n"]) for e, c in zip(ems, columns, strict=True)]
    ax.bar(xs, ems, width, yerr=errs, capsize=3, label=name)
ax.set_xticks(range(len(columns)), columns)
ax.set_ylabel("closed-book exact match")
ax.set_ylim(0, 1)
ax.set_title("Dev split, by pretraining text (fine-tuned on the fit facts)")
ax.legend(frameon=False)
plt.show()

# %% [markdown]
# No statements arm beats the book arm by more than two standard errors; both raise the book dev
# loss past the budget, likely (untested) because statements are most of their text in
# pretraining and replay, so the book is read less.
#
# Likely, untested: Allen-Zhu & Li's synthetic people share a few attributes and question
# templates, so Q&A on some teaches one transferable skill, *find attribute X of person Y*. Our
# facts share no template; our model is far smaller than their GPT-2-sized ones.

# %% [markdown]
# ## 11. Save the metrics for lesson 7
# One JSON file: book metrics per model, Q&A scores per model, mode and split, and every question
# asked, with its gold and predicted answers.

# %%
evaluation = {
    "mode": "quick" if utils.QUICK else "full",
    "book": book,
    "qa": results,
}
path = utils.CHECKPOINT_DIR / "evaluation.json"
utils.write_text_atomic(path, json.dumps(evaluation, indent=1, ensure_ascii=False))
reloaded = json.loads(path.read_text(encoding="utf-8"))
assert reloaded["qa"]["fine-tuned"]["closed"]["train"]["exact_match"] == em["closed"]["train"]
print(f"wrote {utils.display_path(path)} ({path.stat().st_size:,} bytes)")

# %% [markdown]
# ## Summary
#
# - Book loss, bits per character, perplexity: one number, three units.
# - EM is strict; F1 gives partial credit, even to wrong answers sharing a word.
# - Trained, paraphrased, unseen and never-read questions measure memory, robustness to
#   wording, knowledge read but never asked, and knowledge never read.
# - Closed-book answers come from the weights; open-book ones can copy from a BM25 passage,
#   limited by its recall and the model's reading. `ask()` shows both.
# - Six statements of each train and unseen fact in pretraining did not pay on dev (§10).

# %% [markdown]
# ## Exercises
#
# 1. **Scores per chapter.** The fine-tuned model's closed-book EM per chapter on the
#    paraphrase split. Are some chapters easier?
# 2. **Does it stop?** How often does it write `<end>` before the length limit on the unseen
#    questions, closed-book? §5's result rows record it.
# 3. **A looser metric.** Count an answer right if it contains the (normalised) gold answer.
#    Compare with EM for the base model. Why is it easy to game?

# %% [markdown]
# ## Solutions
#
# Each solution is a code cell run with the lesson and the tests, collapsed in Jupyter.
#
# **Solution 1.** With few questions per chapter, one question moves a chapter's score a lot. Each
# chapter is set against all the other chapters' questions, with two standard errors of the gap
# (`utils.share_gap`); with one test per chapter, one flag can be chance:

# %% jupyter={"source_hidden": true}
per_chapter: dict[int, list[float]] = {}
for record, row in zip(asked["fine-tuned"]["paraphrase"], ft["closed"]["paraphrase"]["rows"],
                       strict=True):
    per_chapter.setdefault(record["chapter"], []).append(row["exact_match"])
right, asked_n = sum(sum(s) for s in per_chapter.values()), sum(map(len, per_chapter.values()))
beyond = []
for chapter, scores in sorted(per_chapter.items()):
    n, share = len(scores), sum(scores) / len(scores)
    if n == asked_n:  # a single chapter (quick mode): no rest to compare with
        print(f"chapter {chapter:>2}: {share:>4.0%} of {n:>2}")
        continue
    gap, bar = utils.share_gap(share, n, (right - sum(scores)) / (asked_n - n), asked_n - n)
    print(f"chapter {chapter:>2}: {share:>4.0%} of {n:>2} | against the rest {gap:+.0%} "
          f"(±{bar:.0%})")
    if abs(gap) > bar:
        beyond.append(f"chapter {chapter} ({'easier' if gap > 0 else 'harder'})")
print(f"beyond two standard errors, of {len(per_chapter)} chapters:",
      ", ".join(beyond) if beyond else "none: no chapter measurably easier or harder than the rest")

# %% [markdown]
# **Solution 2.** Stopping is the format, learned separately from the fact: the share of answers
# that stop, beside the exact match on the same questions:

# %% jupyter={"source_hidden": true}
unseen_rows = ft["closed"]["unseen"]["rows"]
stopped = sum(r["stopped"] for r in unseen_rows)
print(f"{stopped / len(unseen_rows):.0%} of {len(unseen_rows)} unseen answers end with "
      f"{utils.END_TAG}; exact match {em['closed']['unseen']:.0%}")

# %% [markdown]
# **Solution 3.** Long text that never stops (the base model's) can contain a short gold answer
# by chance; EM and F1 penalise the extra words, containment does not. Does it here?

# %% jupyter={"source_hidden": true}
def contains(predicted: str, gold: str) -> float:
    return float(utils.normalize_answer(gold) in utils.normalize_answer(predicted))


rows = results["base"]["closed"]["train"]["rows"]
loose = sum(contains(r["predicted"], r["gold"]) for r in rows) / len(rows)
print(f"base model, train split: containment {loose:.0%} vs exact match "
      f"{results['base']['closed']['train']['exact_match']:.0%}")
assert loose >= results["base"]["closed"]["train"]["exact_match"]

# %% [markdown]
# ## The results in one line
# For scripts: n, exact match and F1 per mode and split of the fine-tuned model (the base model's
# under `base`), and both models' book validation loss.

# %%
def summary(by_mode: dict) -> dict:
    return {m: {s: {k: r[k] for k in ("n", "exact_match", "f1")} for s, r in by_mode[m].items()}
            for m in MODES}


qa_results = {
    **summary(results["fine-tuned"]),
    "base": summary(results["base"]),
    "book_val_loss": {name: book[name]["loss"] for name in models},
}
print("QA_RESULTS " + json.dumps(qa_results))
