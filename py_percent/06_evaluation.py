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
# You will learn how to measure a language model twice over: how well it predicts the book
# (loss, bits per character, perplexity) and how well it answers questions (exact match and F1)
# on trained, paraphrased and unseen questions, for the base and the fine-tuned model.
#
# - **Reads:** `checkpoints/full/base.pt` (lesson 03) and `checkpoints/full/finetuned.pt`
#   (lesson 05); short stand-ins are trained if they are missing.
# - **Writes:** `checkpoints/full/evaluation.json` with every metric, for lesson 07.
# - **Runtime:** a few minutes on a CPU (a few hundred greedy answers per model).

# %% [markdown]
# ## 0. Setup
# The same first cell opens every lesson. It makes the shared helper module `utils.py` importable
# wherever this runs: Jupyter, `pytest --nbval`, Colab (it clones the repository first; Colab
# already has torch, matplotlib and tqdm, so nothing is installed), or
# `python py_percent/NN_name.py`.

# %%
import os
import subprocess
import sys
from pathlib import Path

# The repository's address, named once in pyproject.toml ([tool.gpt05m]) and copied here by
# `python tests/repository.py`. In a fork, change it to your fork's address (see the README).
REPO_URL = "https://github.com/your-username/GPT-0.5M"
if "google.colab" in sys.modules and not Path("utils.py").exists():
    clone = Path("/content/GPT-0.5M")
    if not clone.exists():
        print(f"cloning {REPO_URL}")
        no_prompt = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}  # fail fast, never ask a password
        cloned = subprocess.run(["git", "clone", "--depth=1", REPO_URL, str(clone)], env=no_prompt)
        if cloned.returncode != 0:
            raise RuntimeError(
                f"Could not clone {REPO_URL}. In a fork, set REPO_URL above to your fork's "
                "address, https://github.com/<your-username>/GPT-0.5M (to change it in every "
                "lesson and badge at once, run `python tests/repository.py <address>` in the "
                "fork and commit)."
            )
    os.chdir(clone / "notebooks")
for folder in (Path.cwd(), Path.cwd() / "notebooks", Path.cwd().parent / "notebooks"):
    if (folder / "utils.py").exists():
        sys.path.insert(0, str(folder))
        break
import utils

device = utils.pick_device()
print(f"device: {device} | quick mode: {utils.QUICK}")

# %% [markdown]
# The other imports of this lesson.

# %%
import json
import math
from collections import Counter

import matplotlib.pyplot as plt

# %% [markdown]
# ## 1. The two models
# The base model is the pretrained one from lesson 03; the fine-tuned model is its copy after
# lesson 05. Both were trained with the same vocabulary, the one `load_corpus` builds.

# %%
corpus = utils.load_corpus()
tokenizer = corpus.tokenizer
base, base_tokenizer, _ = utils.load_or_pretrain(corpus, device)
finetuned, ft_tokenizer, _ = utils.load_or_finetune(corpus, device)
assert base_tokenizer == ft_tokenizer == tokenizer
models = {"base": base, "fine-tuned": finetuned}

# %%
# NBVAL_CHECK_OUTPUT
for name, model in models.items():
    print(f"{name:>10}: {model.num_parameters():,} parameters, vocabulary {tokenizer.vocab_size}")

# %% [markdown]
# ## 2. Book metrics: how well does each model predict the book?
# ### 2.1 Three ways to write one number
# - **Loss** (nats per character): the mean of $-\ln p(\text{next character})$ over the
#   held-out text. Lower is better.
# - **Bits per character** = loss / ln 2: the same number in bits, i.e. how many yes/no
#   questions the model needs, on average, to pin down the next character.
# - **Perplexity** = $e^{\text{loss}}$: the model is as unsure as if it chose uniformly among
#   that many characters.
#
# A baseline puts them in scale: a model that guesses uniformly over the vocabulary has loss
# ln(vocab size), perplexity equal to the vocabulary size.

# %%
uniform_loss = math.log(tokenizer.vocab_size)
print(f"uniform guess over {tokenizer.vocab_size} characters: loss ln({tokenizer.vocab_size})"
      f" = {uniform_loss:.4f} nats = {uniform_loss / math.log(2):.4f} bits")  # fmt: skip

# %% [markdown]
# ### 2.2 Measure
# `utils.evaluate_text` grades every character of the validation text exactly once (lesson 03's
# curves used a few random windows instead, which is fine for a curve but noisy for a report).
# The helper turns one loss into all three metrics.


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
# Your numbers may differ slightly: random initialisation, hardware, quick mode. Compare the
# base and fine-tuned rows: fine-tuning mixed book text into every batch precisely so that this
# number would not get much worse.

# %%
gap = book["fine-tuned"]["loss"] - book["base"]["loss"]
print(f"fine-tuned minus base: {gap:+.4f} nats/char ({gap / math.log(2):+.4f} bits/char)")

# %% [markdown]
# ## 3. Q&A metrics: exact match and F1
# ### 3.1 Normalising answers
# "The Queen of Hearts!" and "queen of hearts" are the same answer. Like the SQuAD benchmark,
# `utils.normalize_answer` lower-cases, drops punctuation and the articles *a*, *an*, *the*, and
# squeezes spaces before answers are compared.

# %%
# NBVAL_CHECK_OUTPUT
for text in ["The Queen of Hearts!", "“A watch,” said Alice.", "  the  Mock   Turtle’s song "]:
    print(f"{text!r:34} -> {utils.normalize_answer(text)!r}")

# %% [markdown]
# ### 3.2 Exact match (EM)
# EM is 1 if the normalised prediction equals the normalised gold answer, else 0. It is strict:
# "golden key" for "a tiny golden key" scores 0.

# %%
# NBVAL_CHECK_OUTPUT
for predicted, gold in [("The white rabbit.", "white rabbit"), ("golden key", "a tiny golden key")]:
    print(f"EM({predicted!r}, {gold!r}) = {utils.exact_match(predicted, gold)}")

# %% [markdown]
# ### 3.3 F1, by hand
# F1 gives partial credit for overlapping words. With the normalised words of both answers:
#
# - common = number of words they share (counting repeats at most as often as both have them),
# - precision = common / words in the prediction, recall = common / words in the gold answer,
# - F1 = 2 · precision · recall / (precision + recall), their harmonic mean.

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
# F1 is kinder than EM, and that cuts both ways: a *wrong* answer that shares a word with the
# gold one also gets credit. Read F1 next to EM, never alone.

# %%
# NBVAL_CHECK_OUTPUT
wrong, gold = "the march hatter", "the march hare"
print(f"F1({wrong!r}, {gold!r}) = {utils.f1_score(wrong, gold)}")

# %% [markdown]
# ## 4. Base vs fine-tuned on the three splits
# `utils.evaluate_qa` asks every question with the one prompt format (`utils.qa_prompt`), takes
# the greedy answer up to `<end>` and scores it. The base model gets exactly the same prompts.
# In quick mode only the first few questions of each split are asked, to keep the test short.

# %%
SPLITS = ("train", "paraphrase", "unseen")
qa = {split: utils.qa_split(corpus.qa, split) for split in SPLITS}
n_ask = utils.by_mode(full=len(corpus.qa), quick=6)  # questions per split (all in full mode)
results = {
    name: {split: utils.evaluate_qa(model, tokenizer, qa[split][:n_ask]) for split in SPLITS}
    for name, model in models.items()
}

# %% [markdown]
# The scores as a table. EM is never above F1: an exact match always has F1 = 1.

# %%
print(f"{'model':<11} {'split':<11} {'n':>4} {'EM':>7} {'F1':>7}")
for name, by_split in results.items():
    for split, r in by_split.items():
        print(f"{name:<11} {split:<11} {r['n']:>4} {r['exact_match']:>7.1%} {r['f1']:>7.1%}")
        assert 0.0 <= r["exact_match"] <= r["f1"] + 1e-12 <= 1.0 + 1e-12
        assert r["n"] == len(qa[split][:n_ask]) == len(r["rows"])

# %% [markdown]
# And as a grouped bar chart: one group per split, one bar per model.

# %%
fig, axes = plt.subplots(1, 2, figsize=(9, 3.5), sharey=True)
width = 0.38
for ax, metric, label in zip(axes, ("exact_match", "f1"), ("exact match", "F1"), strict=True):
    for k, name in enumerate(results):
        xs = [i + (k - 0.5) * width for i in range(len(SPLITS))]
        values = [results[name][split][metric] for split in SPLITS]
        bars = ax.bar(xs, values, width, label=name)
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.set_xticks(range(len(SPLITS)), SPLITS)
    ax.set(title=label, ylim=(0, 1.1))
axes[0].set_ylabel("score")
axes[0].legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 5. Right and wrong answers
# Averages hide the interesting part. For the fine-tuned model, here are up to two right and
# three wrong answers per split.


# %%
def clip(text: str, width: int) -> str:
    """Shorten ``text`` to ``width`` characters, marking a cut with an ellipsis."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


print(f"{'split':<10} {'question':<44} {'gold':<20} {'predicted':<20} {'EM':>3} {'F1':>5}")
for split in SPLITS:
    rows = results["fine-tuned"][split]["rows"]
    right = [r for r in rows if r["exact_match"]][:2]
    wrong = [r for r in rows if not r["exact_match"]][:3]
    for r in right + wrong:
        print(
            f"{split:<10} {clip(r['question'], 44):<44} {clip(r['gold'], 20):<20} "
            f"{clip(r['predicted'], 20):<20} {r['exact_match']:>3.0f} {r['f1']:>5.2f}"
        )

# %% [markdown]
# One more number helps to read the wrong answers: how often is the model's answer to a question
# one of the answers it was *trained* on? A model that memorised answers tends to reuse them.

# %%
train_answers = {utils.normalize_answer(r["answer"]) for r in qa["train"]}


def reused_share(rows: list[dict]) -> float:
    """Share of predictions that equal (after normalising) some train-split answer."""
    hits = [utils.normalize_answer(r["predicted"]) in train_answers for r in rows]
    return sum(hits) / max(1, len(hits))


reused = {split: reused_share(results["fine-tuned"][split]["rows"]) for split in SPLITS}
for split in SPLITS:
    print(f"{split:<10}: {reused[split]:.0%} of the fine-tuned answers are a train-split answer")

# %% [markdown]
# ## 6. What the numbers teach
# The sentences below are computed from this run's results, so they stay true when you re-run
# with other settings.

# %%
em = {split: results["fine-tuned"][split]["exact_match"] for split in SPLITS}
f1 = {split: results["fine-tuned"][split]["f1"] for split in SPLITS}
base_em = max(results["base"][split]["exact_match"] for split in SPLITS)
print(
    f"Fine-tuned EM: train {em['train']:.0%}, paraphrase {em['paraphrase']:.0%}, "
    f"unseen {em['unseen']:.0%}; the base model's best split: {base_em:.0%}."
)


def points(x: float) -> str:
    return f"{100 * x:.0f} percentage points"


if em["paraphrase"] < em["train"]:
    print(
        f"Rewording a trained question costs {points(em['train'] - em['paraphrase'])} of EM: "
        "part of what was learned is tied to the exact wording."
    )
else:
    print("Rewording a trained question did not lower EM in this run.")
if f1["paraphrase"] > em["paraphrase"]:
    print(
        f"On paraphrases F1 is {points(f1['paraphrase'] - em['paraphrase'])} above EM: "
        "some wrong answers are partly right."
    )
else:
    print("On paraphrases F1 equals EM: no answer was partly right.")
print(
    f"On unseen facts {em['unseen']:.0%} of the answers are exactly right, and "
    f"{reused['unseen']:.0%} are copies of a train answer."
)

# %% [markdown]
# How to read them:
#
# - **Train questions** measure memory. The model saw each of them many times; a high score here
#   shows the fine-tune worked, not that the model understands the book.
# - **Paraphrases** ask a trained fact in new words. The gap to the train split shows how much of
#   the answer is keyed to the wording of the question rather than to the fact.
# - **Unseen facts** were in the pretraining text but were never asked. A 0.5M-parameter
#   character model cannot look up a fact it only ever read as running text: expect few exact
#   answers here. The reuse rate of §5 shows how often it falls back on an answer memorised for
#   another question.
# - **The base model** scores at or near zero EM on every split not because it knows nothing of
#   the book, but because it never learned the format: it does not know it should answer, and
#   it never writes `<end>`.

# %% [markdown]
# ## 7. Save the metrics for lesson 07
# Everything above goes into one JSON file: book metrics per model, Q&A scores per model and
# split, and every question with its gold and predicted answer.

# %%
evaluation = {
    "mode": "quick" if utils.QUICK else "full",
    "questions_per_split": {split: len(qa[split][:n_ask]) for split in SPLITS},
    "book": book,
    "qa": results,
}
path = utils.CHECKPOINT_DIR / "evaluation.json"
utils.write_text_atomic(path, json.dumps(evaluation, indent=1, ensure_ascii=False))
reloaded = json.loads(path.read_text(encoding="utf-8"))
assert reloaded["qa"]["fine-tuned"]["train"]["exact_match"] == em["train"]
print(f"wrote {utils.display_path(path)} ({path.stat().st_size:,} bytes)")

# %% [markdown]
# ## Summary
#
# - Book loss, bits per character and perplexity are one number in three units; a uniform guess
#   scores ln(vocab size) and sets the scale.
# - `evaluate_text` grades every validation character once, so it is the book number to report.
# - Exact match is strict; F1 gives partial credit and can reward wrong answers that share a word.
# - Trained, paraphrased and unseen questions measure different things: memory, robustness to
#   wording, and knowledge the Q&A training never touched.
# - All metrics are saved to `evaluation.json` for lesson 07.

# %% [markdown]
# ## Exercises
#
# 1. **Scores per chapter.** Using `results["fine-tuned"]["paraphrase"]["rows"]` and the records
#    in `qa["paraphrase"]` (same order), compute exact match per chapter. Are some chapters
#    easier?
# 2. **Does it stop?** For the fine-tuned model, count how often it writes `<end>` within 80
#    characters on the unseen questions. Use `utils.generate` without `stop`.
# 3. **A looser metric.** Count an answer as right if the normalised gold answer is contained in
#    the normalised prediction. Compare with EM for the base model. Why is this metric easy to
#    game?

# %% [markdown]
# ## Solutions
#
# <details><summary>Solution 1</summary>
#
# ```python
# per_chapter = {}
# for record, row in zip(qa["paraphrase"], results["fine-tuned"]["paraphrase"]["rows"]):
#     per_chapter.setdefault(record["chapter"], []).append(row["exact_match"])
# for chapter, scores in sorted(per_chapter.items()):
#     print(chapter, f"{sum(scores) / len(scores):.0%} of {len(scores)}")
# ```
#
# With only a handful of paraphrases per chapter, one question moves a chapter's score a lot;
# differences between chapters are mostly noise at this size.
# </details>
#
# <details><summary>Solution 2</summary>
#
# ```python
# stopped = 0
# for record in qa["unseen"]:
#     reply = utils.generate(finetuned, tokenizer, utils.qa_prompt(record["question"]), 80,
#                            temperature=0.0)
#     stopped += utils.END_TAG in reply
# print(f"{stopped / len(qa['unseen']):.0%} of the answers end with {utils.END_TAG}")
# ```
#
# A well fine-tuned model stops almost always, even when its answer is wrong: it learned the
# format, which is separate from knowing the fact.
# </details>
#
# <details><summary>Solution 3</summary>
#
# ```python
# def contains(predicted, gold):
#     return float(utils.normalize_answer(gold) in utils.normalize_answer(predicted))
#
# rows = results["base"]["train"]["rows"]
# print(sum(contains(r["predicted"], r["gold"]) for r in rows) / len(rows))
# ```
#
# A model that writes long text never stopping (like the base model) contains many words by
# chance, so short gold answers ("pink", "a watch") are "found" without being answered. EM and
# F1 penalise the extra words; a containment metric does not.
# </details>
