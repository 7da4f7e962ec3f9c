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
# # Lesson 1 — Setup and data
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/your-username/GPT-0.5M/blob/main/notebooks/01_setup.ipynb)
#
# **What you will learn:** how to check your environment, where the book comes from, how a
# character tokenizer turns text into numbers, why we split the book by position, and what a
# training batch looks like.
#
# - **Reads:** `data/alice.txt` (downloaded from Project Gutenberg on first use) and
#   `data/alice_qa.jsonl`.
# - **Writes:** only the cached book `data/alice.txt`, if it is missing.
# - **Runtime:** nothing is trained in this lesson.

# %% [markdown]
# ## 0. Setup
# This first cell makes the shared module `utils.py` importable (in Colab it clones the repository
# first). It prints the device, and whether **quick mode** is on: a shortened run, for tests (see
# the README).

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
# ## 1. Check the environment
#
# What are we running on?
#
# - **Versions**: the lessons need PyTorch `utils.MIN_TORCH` or newer (checked below).
# - **Device**: `utils.pick_device()` picks an NVIDIA GPU (CUDA), else an Apple-silicon GPU (MPS),
#   else the CPU; every lesson also runs on a CPU.
# - **CPU threads**: PyTorch spreads each matrix multiplication over them.

# %%
import platform

import matplotlib
import torch

in_colab = "google.colab" in sys.modules
gpu = f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""
print(f"Python      {platform.python_version()}")
print(f"PyTorch     {torch.__version__}")
print(f"matplotlib  {matplotlib.__version__}")
print(f"device      {device}{gpu}")
print(f"Colab       {'yes' if in_colab else 'no'}")
print(f"CPU threads {torch.get_num_threads()} used by PyTorch, {os.cpu_count()} logical cores")

# %% [markdown]
# The version check fails loudly, instead of letting a very old PyTorch break later with a
# strange error.

# %%
oldest = ".".join(map(str, utils.MIN_TORCH))
assert utils.torch_version() >= utils.MIN_TORCH, f"PyTorch {torch.__version__}: need >= {oldest}"
print(f"PyTorch {torch.__version__}: at least {oldest}, OK")

# %% [markdown]
# ## 2. Get the book
#
# We train on *Alice's Adventures in Wonderland* by Lewis Carroll (Project Gutenberg eBook #11,
# public domain).

# %% [markdown]
# `utils.load_alice()` finds it in this order:
#
# 1. **`$GPT05M_BOOK`**: a file named by this environment variable (for a machine without
#    internet).
# 2. **The cache `data/alice.txt`**, written by the first download.
# 3. **A download from Project Gutenberg**, stripped of its licence header and footer, then
#    cached.
# 4. **A clear error** saying where to put a copy by hand.

# %% [markdown]
# This cell tells you which of these the next call will use.

# %%
from pathlib import Path

if os.environ.get(utils.BOOK_ENV):
    print(f"the book comes from ${utils.BOOK_ENV} ({Path(os.environ[utils.BOOK_ENV]).name})")
elif utils.BOOK_CACHE.is_file():
    print(f"the book comes from the cache: {utils.BOOK_CACHE.relative_to(utils.REPO_ROOT)}")
else:
    print("the book will be downloaded")
print(f"its source: {utils.GUTENBERG_URLS[0]} (eBook 11)")

# %% [markdown]
# Now load it. The result is one Python string.

# %%
book = utils.load_alice()
print(type(book).__name__)

# %% [markdown]
# ### 2.1 The Gutenberg wrapper
#
# A fresh download wraps the book in a licence header and footer. The book sits between two
# marker lines, `*** START OF THE PROJECT GUTENBERG EBOOK ... ***` and `*** END OF ... ***`.

# %% [markdown]
# The model should not learn licence text, so `utils.strip_gutenberg` keeps only what lies between
# the markers. On a tiny made-up file, with the Windows line ends `\r\n` and byte-order mark
# `\ufeff` (an invisible first character) of real downloads:

# %%
wrapped = (
    "\ufeffThe Project Gutenberg eBook of A Tiny Book\r\n"
    "This eBook is for the use of anyone anywhere...\r\n"
    "*** START OF THE PROJECT GUTENBERG EBOOK A TINY BOOK ***\r\n"
    "\r\n"
    "Once upon a time there was a White Rabbit.\r\n"
    "The End.\r\n"
    "\r\n"
    "*** END OF THE PROJECT GUTENBERG EBOOK A TINY BOOK ***\r\n"
    "Updated editions will replace the previous one...\r\n"
)
stripped = utils.strip_gutenberg(wrapped)
print(repr(stripped))
assert stripped == "Once upon a time there was a White Rabbit.\nThe End."

# %% [markdown]
# A download without the markers is not silently accepted: it is probably an error page or a cut
# download, so `strip_gutenberg` raises a `ValueError` that says what to do. (Every saved copy,
# with the markers stripped or without them like this machine's cache, is also checked: UTF-8,
# not a web page, the title, the length.)

# %%
try:
    utils.strip_gutenberg("<html>Service temporarily unavailable</html>")
except ValueError as error:
    print(f"ValueError: {error}")
else:
    raise AssertionError("a text without markers must raise ValueError")

# %% [markdown]
# ### 2.2 The download path, without the internet
#
# `load_alice` takes the cache path, the URLs and the fetch function as arguments, so a fake
# "download" in a temporary folder shows steps 3 and 4:
#
# - a fetch returning our tiny file: the text is stripped **and cached**;
# - a failing fetch (no internet): a `FileNotFoundError` that says what to do.
#
# The cell hides `$GPT05M_BOOK` meanwhile, or step 1 would win.

# %%
import tempfile

saved_book_env = os.environ.pop(utils.BOOK_ENV, None)
try:
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "alice.txt"
        urls = ["https://example.org/tiny.txt"]
        text = utils.load_alice(cache=cache, urls=urls, fetch=lambda url: wrapped)
        print(f"downloaded: {text!r}")
        print(f"cached:     {cache.read_text(encoding='utf-8')!r}")
        assert text == stripped and cache.read_text(encoding="utf-8") == stripped

        def no_internet(url: str) -> str:
            raise OSError("no internet (simulated)")

        try:
            utils.load_alice(cache=Path(tmp) / "missing.txt", urls=urls, fetch=no_internet)
        except FileNotFoundError as error:
            print("\nFileNotFoundError:", str(error).replace(str(Path(tmp).resolve()), "<tmp>"))
finally:
    if saved_book_env is not None:
        os.environ[utils.BOOK_ENV] = saved_book_env

# %% [markdown]
# ## 3. Look at the text
#
# A character-level model sees the book as one long sequence of characters. How long is it?

# %%
# NBVAL_CHECK_OUTPUT
print(f"{len(book):,} characters")

# %% [markdown]
# The first lines: an illustration marker and blank lines, the title, then the beginning of the
# table of contents:

# %%
print("\n".join(book.splitlines()[:18]))

# %% [markdown]
# And this is where the story itself begins:

# %%
story_start = book.index("\nCHAPTER I.\n")
first_paragraph_end = book.index("\n\n", book.index("Alice was beginning", story_start))
print(book[story_start:first_paragraph_end].strip())

# %% [markdown]
# How many **different** characters occur, before and after lower-casing? Like the **original
# notebook** (the one this series rebuilds; the README lists its defects), we lower-case
# everything: a small model then need not learn that `A` and `a` are almost the same.

# %%
# NBVAL_CHECK_OUTPUT
print(f"distinct characters:                    {len(set(book))}")
print(f"distinct characters after lower-casing: {len(set(book.lower()))}")

# %% [markdown]
# ### 3.1 Which characters are common?
#
# The 40 most frequent characters (lower-cased), with space and newline drawn as `␣` and `↵`.
# Two kinds among them may surprise you:
#
# - the curly quotes `“ ” ’`: this edition uses them instead of a keyboard's `"` and `'` (§4.5);
# - the underscore `_`: Project Gutenberg's italics, `_very_` means *very*.

# %%
from collections import Counter

import matplotlib.pyplot as plt

counts = Counter(book.lower())
top = counts.most_common(40)
fig, ax = plt.subplots(figsize=(7, 3.5))
ax.bar(range(len(top)), [n / len(book) * 100 for _, n in top], color="tab:blue")
ax.set_xticks(range(len(top)), [utils.visible_char(ch) for ch, _ in top], fontsize=10)
ax.set(ylabel="% of all characters", title="The 40 most frequent characters (lower-cased)")
ax.grid(axis="y", alpha=0.3)
plt.tight_layout()
plt.show()

# %% [markdown]
# The rarest characters appear only a handful of times; the model will see almost no examples of
# them.

# %%
rare = [(ch, n) for ch, n in counts.most_common() if n < 10]
listed = ", ".join(f"{utils.visible_char(ch)!r}: {n}" for ch, n in rare)
print(f"{len(rare)} characters occur fewer than 10 times: {listed}")
assert rare, "the sentence above promises some rare characters"

# %% [markdown]
# ## 4. A character tokenizer
#
# A neural network works with numbers, not letters. A **tokenizer** maps text to a list of integer
# ids and back. Ours is the simplest: **one id per character**.

# %% [markdown]
# ### 4.1 Step by step
#
# 1. The vocabulary: every distinct character, sorted (so the order never depends on chance).
# 2. Two lookup tables: `stoi` (string → id) and `itos` (id → string).

# %%
chars = sorted(set(book.lower()))
stoi = {ch: i for i, ch in enumerate(chars)}  # character -> id
itos = {i: ch for ch, i in stoi.items()}  # id -> character
print(f"{len(chars)} characters: {''.join(chars)!r}")

# %% [markdown]
# 3. `encode` lower-cases and looks up each character; `decode` does the reverse.


# %%
def encode(text: str) -> list[int]:
    return [stoi[ch] for ch in text.lower()]


def decode(ids: list[int]) -> str:
    return "".join(itos[i] for i in ids)


ids = encode("Alice")
print(ids, "->", repr(decode(ids)))

# %% [markdown]
# ### 4.2 One vocabulary for the book *and* the Q&A data
#
# In lesson 5 we **fine-tune** the model (train it further, starting from what it learned from
# the book) on handcrafted questions and answers about the book, stored in `data/alice_qa.jsonl`.
# Each record is one JSON object:

# %%
qa = utils.load_qa()
print(f"{len(qa)} records; the first one:")
print(qa[0])

# %% [markdown]
# Fine-tuning also uses four tags the book never has: `<p>` starts a passage (a snippet of the book
# put before an *open-book* question, lesson 6), `<q>` a question, `<a>` the answer, and `<end>`
# ends it. `utils.build_tokenizer(book, qa)` builds **one** vocabulary from the book, the Q&A
# records and the tags. We build it by hand and compare.

# %%
tags = utils.PASSAGE_TAG + utils.QUESTION_TAG + utils.ANSWER_TAG + utils.END_TAG
qa_text = "".join(record["question"] + record["answer"] for record in qa)
all_chars = sorted(set(book.lower()) | set(qa_text.lower()) | set(tags) | {"\n"})

tokenizer = utils.build_tokenizer(book, qa)
print(tokenizer)
print("added by the Q&A file and the tags:", sorted(set(all_chars) - set(chars)))
assert tokenizer.chars == all_chars
assert tokenizer.stoi == {ch: i for i, ch in enumerate(all_chars)}

# %% [markdown]
# Why **one** vocabulary? The original notebook built two: the book's for **pretraining** (learning
# from the raw book, lesson 3), the Q&A text's for fine-tuning. An id is a position in a sorted
# list, so in two lists **the same character gets different ids**: the fine-tuned model reads each
# letter as another.

# %% [markdown]
# See for yourself with a vocabulary built from the Q&A text alone:

# %%
qa_only = sorted(set(qa_text.lower()) | set(tags) | {"\n"})
print("char  book-only id  Q&A-only id  shared id")
for ch in "a?z":
    print(f"{ch!r:>4}  {chars.index(ch):>12}  {qa_only.index(ch):>11}  {tokenizer.stoi[ch]:>9}")

# %% [markdown]
# Every checkpoint (a file holding a trained model's **weights**, the numbers it learned; lesson
# 3) saves the vocabulary, so a model always loads with the table it was trained with. Its size is
# the number of rows of the model's embedding table (one learned vector per id, lesson 2):

# %%
# NBVAL_CHECK_OUTPUT
print(f"vocabulary size: {tokenizer.vocab_size}")

# %% [markdown]
# ### 4.3 The round trip
#
# `decode(encode(text))` must give back the lower-cased book. Our tokenizer of §4.1 must agree
# with `utils` too; its ids differ (no `<` or `>`), so we compare decoded text.

# %%
book_ids = tokenizer.encode(book)
assert tokenizer.decode(book_ids) == book.lower()
assert decode(encode(book)) == tokenizer.decode(book_ids)
print(f"round trip OK for all {len(book_ids):,} characters")
print(book_ids[:20], "->", repr(tokenizer.decode(book_ids[:20])))

# %% [markdown]
# ### 4.4 Unknown characters fail loudly
#
# A character outside the vocabulary, say `&` or the digit `7`, makes `encode` raise a
# `ValueError` that **names** it, so you can fix your input. (The straight apostrophe `'` is not
# refused: §4.5 turns it into the book's `’`.)

# %%
try:
    tokenizer.encode("Alice's cat & 7 dwarves")
except ValueError as error:
    print(f"ValueError: {error}")
else:
    raise AssertionError("unknown characters must raise ValueError")

# %% [markdown]
# The original notebook mapped every unknown character to id 0, silently. Id 0 is the first
# character of the sorted vocabulary, here the newline. So the model quietly got another text:

# %%
prompt = "alice & the 7 dwarves"
silent_ids = [tokenizer.stoi.get(ch, 0) for ch in prompt]  # the old behaviour
print(f"id 0 is {tokenizer.decode([0])!r}")
assert tokenizer.decode([0]) == "\n"  # the newline, as the text above says
print(f"you typed:        {prompt!r}")
print(f"the model got:    {tokenizer.decode(silent_ids)!r}")

# %% [markdown]
# ### 4.5 Normalisation, the step real tokenizers have
#
# A keyboard types `'`, `"` and `--`; this edition writes `’`, `“ ”` and `—`. Refusing a question
# for *how* it was typed would be unfriendly, so before encoding the tokenizer **normalises**: it
# maps keyboard characters to the book's.

# %% [markdown]
# Hugging Face's `tokenizers` calls this step the *normalizer*. Ours, `CharTokenizer.normalize`,
# does:
#
# - `'` → `’` (apostrophe or closing quote), or `‘` where a quote opens (after a space, a
#   bracket, a dash or another opening quote, and before a non-space);
# - `"` → `“` where a quote opens and `”` where it closes;
# - `--` and other dashes (`–`) → the book's `—`, without the spaces around them;
# - `…` → `...`; tabs, non-breaking spaces and Windows line ends → a space and `\n`;
# - then lower-casing.

# %% [markdown]
# Runs of spaces stay: the book has them (indented poems). Only the Q&A prompt (lesson 5) folds
# them: `utils.qa_prompt` writes a question, and a passage, with single spaces.

# %%
typed = 'Alice said "I\'m late -- very late…"'
normalised = tokenizer.normalize(typed)
print(f"typed:      {typed!r}")
print(f"normalised: {normalised!r}")
assert normalised == "alice said “i’m late—very late...”"
assert tokenizer.encode(typed) == tokenizer.encode("Alice said “I’m late—very late...”")

# %% [markdown]
# Two promises keep this safe:
#
# - the book passes through unchanged apart from lower-casing, so the model trains on the book
#   itself, lower-cased;
# - a character outside the vocabulary still raises §4.4's `ValueError`: here `&` and
#   `7`, while the apostrophe is normalised.

# %%
assert tokenizer.normalize(book) == book.lower()
try:
    tokenizer.encode("Alice's cat & 7 dwarves")
except ValueError as error:
    assert "'&'" in str(error) and "\"'\"" not in str(error)
    print("still refused:", str(error).split(". ")[0])
else:
    raise AssertionError("'&' and '7' have no counterpart in the book: encode must refuse them")

# %% [markdown]
# ## 5. Train and validation split
#
# We hold back part of the book to measure how the model does on text it never trained on.
# `utils.split_text` cuts **by position**: the start is the training text, the last `val_fraction`
# the validation text.

# %%
# NBVAL_CHECK_OUTPUT
train_text, val_text = utils.split_text(book, val_fraction=0.1)
print(f"train: {len(train_text):,} characters")
print(f"val:   {len(val_text):,} characters")

# %% [markdown]
# As shares of the book:

# %%
print(f"train {len(train_text) / len(book):.0%}, validation {len(val_text) / len(book):.0%}")

# %% [markdown]
# Why not validate on random windows of text (runs of consecutive characters)? **Neighbouring
# windows overlap.** Two windows of the model's context length (`block_size`: the most characters
# it reads at once), one starting a character after the other, share all but one character:

# %%
window = utils.GPTConfig().block_size  # the model's context length, in characters
first, second = book[1000 : 1000 + window], book[1001 : 1001 + window]
shared = sum(1 for i in range(window - 1) if first[i + 1] == second[i])
print(f"windows at 1000 and 1001 share {shared} of {window} characters")
assert shared == window - 1

# %% [markdown]
# - With one window in training and the other in validation, the model would have seen the
#   validation text already, and would score better there than on truly new text (a *leak*).
# - A cut by position has one seam; everything after it is unseen.
#
# The seam: the end of the training text and the start of the validation text.

# %%
print("...", train_text[-120:], "⟂", val_text[:120], "...", sep="")

# %% [markdown]
# ## 6. `load_corpus`: all of the above in one line
#
# Every later lesson starts with `corpus = utils.load_corpus()`: load the book and the Q&A file,
# build the one tokenizer, split the book, encode both parts.

# %%
corpus = utils.load_corpus()
assert corpus.book == book and corpus.qa == qa and corpus.tokenizer == tokenizer
assert (corpus.train_text, corpus.val_text) == (train_text, val_text)
for split, ids in corpus.splits.items():
    print(f"{split:5}: {tuple(ids.shape)} {ids.dtype}")

# %% [markdown]
# ## 7. What is a batch?
#
# A **GPT** (generative pre-trained transformer, the model family of ChatGPT; lesson 2 builds one)
# learns one thing: **predict the next character**. It reads a window `x` of `T` characters; its
# target `y` is the window **one character further on**: `y[t]` follows `x[t]`. `B` random
# windows make two `(B, T)` **tensors** (PyTorch's arrays of numbers).

# %% [markdown]
# `utils.random_windows` cuts them. A tiny batch of `B = 4` windows of `T = 24` characters, with
# a seeded generator, so you get the same windows every time:

# %%
generator = torch.Generator().manual_seed(0)
train_ids = corpus.splits["train"]
x, y = utils.random_windows(train_ids, block_size=24, batch_size=4, generator=generator)
print(f"x: {tuple(x.shape)}  y: {tuple(y.shape)}")  # (B, T) each
print(x[0])
print(y[0])

# %% [markdown]
# The same batch decoded as text, inputs on the left and targets on the right:

# %%
print(f"{'x (input)':28} {'y (target)'}")
for row in range(len(x)):
    print(f"{tokenizer.decode(x[row])!r:28} {tokenizer.decode(y[row])!r}")
assert torch.equal(x[:, 1:], y[:, :-1])  # y is x shifted left by one

# %% [markdown]
# One window holds `T` examples at once. At position `t` the model sees `x[0..t]` and must
# predict `y[t]`. (In lesson 2 the *causal mask* makes sure position `t` cannot peek at later
# characters.)

# %%
for t in range(8):
    context = tokenizer.decode(x[0, : t + 1])
    print(f"{context!r:>12} -> {tokenizer.decode(y[0, t : t + 1])!r}")

# %% [markdown]
# The same as a grid: `x` on top, `y` below. Each arrow shows that the target at position `t`
# is the input at position `t + 1`.

# %%
row_x = [utils.visible_char(ch) for ch in tokenizer.decode(x[0])]
row_y = [utils.visible_char(ch) for ch in tokenizer.decode(y[0])]
T = len(row_x)
fig, ax = plt.subplots(figsize=(7, 1.8))
for t in range(T):
    for level, (ch, colour) in enumerate([(row_y[t], "#fde0c5"), (row_x[t], "#c6dbef")]):
        ax.add_patch(plt.Rectangle((t, level * 1.6), 0.9, 0.9, color=colour))
        ax.text(t + 0.45, level * 1.6 + 0.45, ch, ha="center", va="center", fontsize=9)
    if t > 0:
        arrow = {"arrowstyle": "->", "color": "gray", "lw": 0.7}
        ax.annotate("", xy=(t - 0.55, 0.95), xytext=(t + 0.45, 1.55), arrowprops=arrow)
ax.text(-0.3, 2.05, "x", ha="right", va="center", fontsize=11, weight="bold")
ax.text(-0.3, 0.45, "y", ha="right", va="center", fontsize=11, weight="bold")
ax.set(xlim=(-1, T), ylim=(-0.2, 2.7), title="y is x shifted by one character")
ax.axis("off")
plt.tight_layout()
plt.show()

# %% [markdown]
# ### 7.1 The batches of lesson 3
#
# Training uses `utils.book_batches`. It wraps `random_windows` into `get_batch(split,
# generator)`, with the model's context length (`block_size`) and the batch size lesson 3 trains
# with.

# %%
block_size = utils.GPTConfig().block_size  # the longest context the model sees
batch_size = utils.TrainConfig().batch_size  # windows per training step
get_batch = utils.book_batches(corpus.splits, block_size, batch_size)
x, y = get_batch("train", torch.Generator().manual_seed(0))
print(f"x: {tuple(x.shape)}  y: {tuple(y.shape)}  dtype: {x.dtype}")  # (B, T)
print(f"characters per batch: {x.numel():,}")
assert x.shape == (batch_size, block_size) and torch.equal(x[:, 1:], y[:, :-1])

# %% [markdown]
# ## Summary
#
# - `utils.load_alice()`: `$GPT05M_BOOK`, else the cache, else a download, else a clear error.
# - **One** vocabulary (book, Q&A, tags), one id per lower-cased character.
# - Keyboard characters are normalised; anything still unknown raises a `ValueError`.
# - The split is by position, so overlapping windows cannot leak validation text.
# - A batch: `B` windows `x` and the windows one character further on, `y`.

# %% [markdown]
# ## Exercises
#
# 1. **Keep the capitals.** Build a case-sensitive tokenizer from the same texts with
#    `utils.CharTokenizer.from_texts([...], lowercase=False)`. How big is its vocabulary? What
#    would the model gain and lose?
# 2. **Where does validation begin?** Find the last chapter heading (`CHAPTER ...`) before the
#    split point. Which chapters does training never see? And with `val_fraction=0.2`?
# 3. **Count the training examples.** How many different windows of `block_size` characters can
#    `random_windows` cut from the training split, and how many predictions does each hold?

# %% [markdown]
# ## Solutions
#
# Each solution is a code cell that runs with the lesson; in Jupyter its code starts collapsed
# (click to open it).
#
# **Solution 1.** The case-sensitive vocabulary from the same texts, and what it adds:

# %% jupyter={"source_hidden": true}
import statistics

texts = [book, tags + "\n"] + [r["question"] + r["answer"] for r in qa]
cased = utils.CharTokenizer.from_texts(texts, lowercase=False)
added = sorted(set(cased.chars) - set(tokenizer.chars))
print(f"case-sensitive: {cased.vocab_size} characters vs {tokenizer.vocab_size} lower-cased")
print(f"added ({len(added)}): {''.join(added)}")
assert cased.vocab_size == tokenizer.vocab_size + len(added)
assert all(ch.isupper() for ch in added)  # only capitals are new
rarest_capital = min(added, key=book.count)
n_rarest = book.count(rarest_capital)
print(f"rarest capital: {rarest_capital!r}, {n_rarest} time{'s' * (n_rarest != 1)} in the book")
letters = [ch for ch in added if ch.lower() in tokenizer.chars]
share = statistics.median(book.count(ch) / book.count(ch.lower()) for ch in letters)
print(f"median over {len(letters)} capitals: a capital occurs {share:.1%} as often as its "
      "lower-case letter")
assert share < 0.5

# %% [markdown]
# Only capital letters are added. The model could write "Alice" and "CHAPTER", but would learn
# each capital from far fewer examples (the median share above), and `A`/`a` would start
# unrelated.
# Lower-casing gives each letter all its examples.
#
# **Solution 2.** The last chapter heading before the split point, for two fractions:

# %% jupyter={"source_hidden": true}
import re

headings = list(re.finditer(r"\nCHAPTER ([IVXL]+)\.", book))  # the 12 chapter starts
seam_chapter = {}  # val_fraction -> index of the chapter the seam falls in
for fraction in (0.1, 0.2):
    cut = len(utils.split_text(book, fraction)[0])
    seam_chapter[fraction] = sum(m.start() < cut for m in headings) - 1
    unseen = [m.group(1) for m in headings if m.start() >= cut]
    seam = headings[seam_chapter[fraction]].group(1)
    print(f"val_fraction={fraction}: validation starts inside chapter {seam}; ", end="")
    print(f"whole chapters never trained on: {', '.join(unseen) or 'none'}")
assert len(headings) == 12 and seam_chapter[0.2] <= seam_chapter[0.1]

# %% [markdown]
# The validation text is the end of the book: the last part of one chapter and everything after
# it. A larger fraction moves the seam earlier and leaves less text to train on.
#
# **Solution 3.** Count the windows of the training split:

# %% jupyter={"source_hidden": true}
n_train = len(corpus.splits["train"])
n_windows = n_train - block_size  # start positions: the target needs one character more
n_predictions = n_windows * block_size
print(f"{n_windows:,} windows x {block_size} predictions each = {n_predictions:,} predictions")
print(f"from only {n_train:,} characters")

# %% [markdown]
# Windows that start one character apart overlap in all but one character: random windows
# read the same stretches of text many times over.
