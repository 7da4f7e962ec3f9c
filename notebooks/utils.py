"""GPT-0.5M's shared helpers, in lesson order (one banner per lesson, naming its sections);
plumbing (settings and files; checkpoints and load-or-train) at the top and the end."""

from __future__ import annotations

import bz2
import hashlib
import itertools
import json
import lzma
import math
import numbers
import os
import re
import string
import sys
import tempfile
import time
import urllib.request
import warnings
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import torch
import torch.nn as nn
import torch.nn.functional as F

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from tqdm import tqdm

# ---------------------------------------------------------------------------------------------
# Plumbing, part 1: settings, paths, device; the book and the Q&A file on disk
# (lesson 1 §0–2 and §4.2)
# ---------------------------------------------------------------------------------------------

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT / "data"
BOOK_ENV = "GPT05M_BOOK"
#: Quick mode (``GPT05M_QUICK=1``) is read here and nowhere else: tests set it to run every
#: lesson in seconds, with checkpoints in their own folder so a full run is never overwritten.
QUICK = os.environ.get("GPT05M_QUICK", "0").strip().lower() not in ("", "0", "false", "no")
CHECKPOINT_DIR = REPO_ROOT / "checkpoints" / ("quick" if QUICK else "full")
BASE_CHECKPOINT = CHECKPOINT_DIR / "base.pt"
FINETUNED_CHECKPOINT = CHECKPOINT_DIR / "finetuned.pt"
#: The final full run's models, committed model-only (``tests/release_weights.py`` writes them):
#: what a lesson loads when this machine has no checkpoint of its own. Nothing else writes here.
RELEASED_DIR = DATA_DIR / "released_weights"
#: ``GPT05M_PROGRESS=text`` turns the live progress bar off and keeps the printed step lines: for
#: runs whose outputs are saved (a widget bar shows on GitHub as a frozen "0%" line).
TEXT_PROGRESS = os.environ.get("GPT05M_PROGRESS", "").strip().lower() == "text"
#: The oldest PyTorch the code runs on (``torch.amp.GradScaler(device)`` arrived in 2.3).
MIN_TORCH = (2, 3)


def by_mode(full: int, quick: int) -> int:
    """Return ``quick`` in quick mode and ``full`` otherwise (step counts, sample sizes)."""
    return quick if QUICK else full


def display_path(path: str | Path) -> str:
    """``path`` relative to the repository root, so outputs hold no machine paths (else in full)."""
    path = Path(path).resolve()
    return path.relative_to(REPO_ROOT).as_posix() if path.is_relative_to(REPO_ROOT) else str(path)


def torch_version() -> tuple[int, int]:
    """The installed PyTorch as (major, minor), e.g. (2, 13) for 2.13.0+cpu."""
    major, minor = re.match(r"(\d+)\.(\d+)", torch.__version__).groups()
    return int(major), int(minor)


def setup_lesson(repository: str = "", branch: str = "") -> torch.device:
    """The end of every lesson's first cell: in Colab, move into the clone's notebooks folder;
    print the one line (clone, device, quick mode) and return the device to run on."""
    device, clone = pick_device(), ""
    if "google.colab" in sys.modules:
        os.chdir(REPO_ROOT / "notebooks")
        clone = f"Colab: {repository} ({branch}) cloned into {REPO_ROOT.name}/ | "
    print(f"{clone}device: {device} | quick mode: {QUICK}")
    return device


def pick_device() -> torch.device:
    """The fastest device available: a CUDA GPU, else Apple's MPS, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def write_atomic(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it to ``path``: a
    failure (even Ctrl-C) leaves ``path`` as it was and no temporary file behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False)  # noqa: SIM115
    try:
        with tmp:
            write(tmp)
        os.chmod(tmp.name, 0o644)  # temporary files are private; the result should not be
        os.replace(tmp.name, path)
    except BaseException:
        Path(tmp.name).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` as UTF-8 with ``write_atomic``."""
    write_atomic(path, lambda file: file.write(text.encode("utf-8")))


GUTENBERG_URLS = (
    "https://www.gutenberg.org/ebooks/11.txt.utf-8",
    "https://www.gutenberg.org/cache/epub/11/pg11.txt",
)
BOOK_CACHE = DATA_DIR / "alice.txt"
QA_PATH = DATA_DIR / "alice_qa.jsonl"
_START = re.compile(r"^\*\*\*\s*START OF (THE|THIS) PROJECT GUTENBERG EBOOK.*$", re.I | re.M)
_END = re.compile(r"^\*\*\*\s*END OF (THE|THIS) PROJECT GUTENBERG EBOOK.*$", re.I | re.M)


def strip_gutenberg(text: str) -> str:
    """Cut a Project Gutenberg download down to the book: drop the licence header and footer."""
    text = text.lstrip("\ufeff").replace("\r\n", "\n")
    start, end = _START.search(text), _END.search(text)
    if start is None or end is None or end.start() < start.end():
        raise ValueError(
            "This does not look like a Project Gutenberg text: the '*** START OF ... ***' / "
            "'*** END OF ... ***' lines are missing. Delete the file and download it again."
        )
    return text[start.end() : end.start()].strip()


def download_text(url: str, timeout: float = 30.0) -> str:
    """Fetch ``url`` and decode it as UTF-8."""
    request = urllib.request.Request(url, headers={"User-Agent": "GPT-0.5M lesson series"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.read().decode("utf-8")


#: What the book must look like: its title near the start, and about 144,000 characters.
BOOK_TITLE = "alice’s adventures in wonderland"
BOOK_MIN_CHARS = 100_000


def read_book_file(path: Path, fix: str) -> str:
    """Read a local copy of the book; refuse a file that is empty, not UTF-8 or clearly not the
    book (a saved web page, a cut download), with ``fix`` saying what to do instead."""
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(
            f"{display_path(path)} is not UTF-8 text ({error.reason} at byte {error.start}). {fix}"
        ) from error
    text = strip_gutenberg(text) if _START.search(text) else text.lstrip("\ufeff")
    head = text[:3000].lower()
    if not text.strip():
        problem = "is empty"
    elif re.search(r"<(!doctype|html|head|body)\b", head):
        problem = "is a web page (HTML), not the book"
    elif BOOK_TITLE not in head.replace("'", "’"):
        problem = f"does not start with the title {BOOK_TITLE!r}"
    elif len(text) < BOOK_MIN_CHARS:
        problem = f"has {len(text):,} characters; the book has at least {BOOK_MIN_CHARS:,}"
    else:
        return text
    raise ValueError(f"{display_path(path)} {problem}, so it is not used as the book. {fix}")


def load_alice(cache: Path = BOOK_CACHE, urls: Sequence[str] = GUTENBERG_URLS,
               fetch: Callable[[str], str] = download_text) -> str:
    """The text of *Alice's Adventures in Wonderland*: the file named by ``$GPT05M_BOOK``, else
    the cache in ``data/``, else a download from Gutenberg (wrapper stripped, cached atomically)."""
    local = os.environ.get(BOOK_ENV)
    if local:
        path = Path(local).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"${BOOK_ENV} points at {path}, which is not a file.")
        fix = f"Point ${BOOK_ENV} at the plain-text book from {urls[0]}, or unset it."
        return read_book_file(path, fix)
    if cache.is_file():
        fix = f"Delete it to download the book again, or save the plain text of {urls[0]} there."
        return read_book_file(cache, fix)
    errors = []
    for url in urls:
        try:
            book = strip_gutenberg(fetch(url))
        except (OSError, ValueError, UnicodeDecodeError) as error:
            errors.append(f"  {url}: {error}")
            continue
        write_text_atomic(cache, book)
        return book
    raise FileNotFoundError(
        "Could not download Alice's Adventures in Wonderland:\n"
        + "\n".join(errors)
        + f"\nDownload it yourself from {urls[0]} and save it as {display_path(cache)}"
        + f" (or point ${BOOK_ENV} at a local copy)."
    )


QA_FIELDS = ("question", "answer", "chapter", "evidence", "split", "fact")
QA_SPLITS = ("train", "paraphrase", "unseen", "never_read", "reversal")


def check_arg(name: str, value: Any, ok: bool, allowed: str,
              error: type[Exception] = ValueError) -> None:
    """Unless ``ok``, raise ``error`` naming the argument ``name``, its ``value`` and what is
    ``allowed``: the one checker of the public helpers' arguments."""
    if not ok:
        raise error(f"{name} must be {allowed}, got {value!r:.80} ({type(value).__name__}).")


def check_text(name: str, value: Any, empty: bool = True) -> None:
    """``TypeError`` unless ``value`` is a string; ``ValueError`` if blank and not ``empty``."""
    check_arg(name, value, isinstance(value, str), "a string", TypeError)
    check_arg(name, value, empty or bool(value.strip()), "a non-empty string")


def token_ids(name: str, ids: Any) -> list[int]:
    """``ids`` (a sequence or 1-D tensor of integers) as a list of ints, else a ``TypeError``."""
    if isinstance(ids, torch.Tensor) and ids.dim() == 1:
        ids = ids.tolist()
    ok = isinstance(ids, Iterable) and not isinstance(ids, (str, bytes, dict, torch.Tensor))
    ids = list(ids) if ok else ids
    ok = ok and all(isinstance(i, numbers.Integral) and not isinstance(i, bool) for i in ids)
    check_arg(name, ids, ok, "a sequence of integer token ids", TypeError)
    return [int(i) for i in ids]


def require_keys(mapping: dict[str, Any], keys: Sequence[str], where: str,
                 advice: str = "") -> None:
    """Raise ``ValueError`` naming the ``keys`` that ``mapping`` (described by ``where``) lacks."""
    missing = [key for key in keys if key not in mapping]
    if missing:
        raise ValueError(
            f"{where}: missing {', '.join(map(repr, missing))} (required: {', '.join(keys)}). "
            + advice
        )


def load_qa(path: Path = QA_PATH) -> list[dict[str, Any]]:
    """The handcrafted Q&A records, one JSON object per line; errors name the line and fault."""
    records = []
    with open(path, encoding="utf-8") as file:
        for number, line in enumerate(file, start=1):
            if not line.strip():
                continue
            where = f"{display_path(path)}, line {number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                message = f"{where}: not valid JSON ({error.msg}, column {error.colno})."
                raise ValueError(message) from error
            if not isinstance(record, dict):
                raise ValueError(f"{where}: expected a JSON object, got {type(record).__name__}.")
            require_keys(record, QA_FIELDS, where)
            check_arg(f"{where}: 'split'", record["split"], record["split"] in QA_SPLITS,
                      f"one of {', '.join(QA_SPLITS)}")
            records.append(record)
    return records


# ---------------------------------------------------------------------------------------------
# Lesson 1 — the data: §3 visible characters, §4 the character tokenizer (§4.2 one
# vocabulary with the Q&A tags, §4.5 normalisation), §5 the split, §6 load_corpus, §7 batches
# ---------------------------------------------------------------------------------------------


def visible_char(ch: str) -> str:
    """A printable label for one character: space, newline and tab are otherwise invisible."""
    return {" ": "␣", "\n": "↵", "\t": "⇥"}.get(ch, ch)


#: Keyboard characters with a counterpart in the book: other dashes are read as a typed "--" (the
#: book's em dash), the one-character ellipsis as three full stops, odd spaces as a plain space.
_KEYBOARD = str.maketrans({
    "–": "--", "‒": "--", "―": "--", "…": "...", "\t": " ", "\u00a0": " ", "\u2009": " ",
    "\u202f": " ", "\u200b": "", "\ufeff": "",
})
_DASH = re.compile(r" *-{2,} *")  # a typed "--" (spaces and all): the book writes "word—word"
_STRAIGHT_QUOTE = re.compile(r"[\"']")


def _curl_quote(match: re.Match[str]) -> str:
    """A straight quote becomes the book's curly one: opening after a space, a bracket, a dash
    or another opening quote (and before a non-space); closing, or an apostrophe, otherwise."""
    text, i = match.string, match.start()
    before = text[i - 1] if i else " "
    after = text[i + 1] if i + 1 < len(text) else " "
    opening = (before.isspace() or before in "([{—“‘") and not after.isspace()
    if match.group() == '"':
        return "“" if opening else "”"
    return "‘" if opening else "’"


class CharTokenizer:
    """One id per character; lower-cases its input by default, as the original notebook did."""

    def __init__(self, chars: Iterable[str], lowercase: bool = True) -> None:
        self.lowercase = lowercase
        self.chars = sorted(set(chars))
        self.stoi = {ch: i for i, ch in enumerate(self.chars)}

    @classmethod
    def from_texts(cls, texts: Iterable[str], lowercase: bool = True) -> CharTokenizer:
        """Build the vocabulary from every character that occurs in ``texts``."""
        normalize = cls((), lowercase).normalize
        return cls(set().union(*map(normalize, texts)), lowercase)

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def normalize(self, text: str) -> str:
        """Typed text mapped to the book's characters (straight quotes to curly, ``--`` to —, …
        to ..., CR LF to LF, tabs and odd spaces to a space), lower-cased if the tokenizer is."""
        check_text("text", text)
        text = text.replace("\r\n", "\n").replace("\r", "\n").translate(_KEYBOARD)
        text = _STRAIGHT_QUOTE.sub(_curl_quote, _DASH.sub("—", text))
        return text.lower() if self.lowercase else text

    def encode(self, text: str) -> list[int]:
        """Normalised text to ids; a character outside the vocabulary is a ``ValueError``."""
        text = self.normalize(text)
        unknown = sorted(set(text) - self.stoi.keys())
        if unknown:
            raise ValueError(
                f"Characters not in the vocabulary: {', '.join(map(repr, unknown))}. "
                f"Remove or replace them; the model knows only these {self.vocab_size}: "
                f"{''.join(self.chars)!r}."
            )
        return [self.stoi[ch] for ch in text]

    def decode(self, ids: Iterable[int]) -> str:
        """Ids back to text; raise ``ValueError`` for an id outside the vocabulary."""
        ids = token_ids("ids", ids)
        bad = [i for i in ids if not 0 <= i < self.vocab_size]
        if bad:
            raise ValueError(
                f"decode got id {bad[0]}, outside the vocabulary: ids run from 0 to "
                f"{self.vocab_size - 1} ({len(bad)} such id(s) in all)."
            )
        return "".join(self.chars[i] for i in ids)

    def to_dict(self) -> dict[str, Any]:
        """Plain types, for checkpoints."""
        return {"chars": "".join(self.chars), "lowercase": self.lowercase}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CharTokenizer:
        """Rebuild a tokenizer saved by ``to_dict``; a damaged dict is a clear error."""
        ok = isinstance(data, dict) and set(data) == {"chars", "lowercase"}
        check_arg("tokenizer", data, ok, "a dict with the keys 'chars' and 'lowercase'")
        chars, lowercase = data["chars"], data["lowercase"]
        ok = isinstance(chars, str) and chars != "" and len(set(chars)) == len(chars)
        check_arg("tokenizer['chars']", chars, ok, "a non-empty string of distinct characters")
        check_arg("tokenizer['lowercase']", lowercase, isinstance(lowercase, bool), "True or False")
        return cls(chars, lowercase)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CharTokenizer) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size}, lowercase={self.lowercase})"


#: The Q&A format's tags (lesson 5 §2), in the vocabulary from the start.
PASSAGE_TAG, QUESTION_TAG, ANSWER_TAG, END_TAG = "<p>", "<q>", "<a>", "<end>"


def build_tokenizer(book: str, qa_records: Sequence[dict[str, Any]]) -> CharTokenizer:
    """The single vocabulary: every character of the book, the Q&A file and the Q&A tags."""
    texts = [book, PASSAGE_TAG + QUESTION_TAG + ANSWER_TAG + END_TAG + "\n"]
    texts += [r["question"] + r["answer"] for r in qa_records]
    return CharTokenizer.from_texts(texts)


def split_text(text: str, val_fraction: float = 0.1) -> tuple[str, str]:
    """Split by position: the first 90% trains, the last 10% (by default) is held out."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be between 0 and 1, got {val_fraction}.")
    cut = int(len(text) * (1.0 - val_fraction))
    return text[:cut], text[cut:]


@dataclass
class Corpus:
    """The book, its split, the Q&A records and the one tokenizer built from both."""

    book: str = field(repr=False)
    train_text: str = field(repr=False)
    val_text: str = field(repr=False)
    qa: list[dict[str, Any]] = field(repr=False)
    tokenizer: CharTokenizer
    splits: dict[str, torch.Tensor] = field(repr=False)


def load_corpus(val_fraction: float = 0.1) -> Corpus:
    """Load the book and the Q&A file, build the tokenizer, encode the train/val split."""
    book, qa = load_alice(), load_qa()
    tokenizer = build_tokenizer(book, qa)
    train_text, val_text = split_text(book, val_fraction)
    splits = {
        "train": torch.tensor(tokenizer.encode(train_text), dtype=torch.long),
        "val": torch.tensor(tokenizer.encode(val_text), dtype=torch.long),
    }
    return Corpus(book, train_text, val_text, qa, tokenizer, splits)


Batch = tuple[torch.Tensor, torch.Tensor]
BatchFn = Callable[[str, torch.Generator], Batch]


def random_windows(data: torch.Tensor, block_size: int, batch_size: int,
                   generator: torch.Generator) -> Batch:
    """``batch_size`` random windows of ``data``: inputs x and the same text shifted by one, y."""
    if len(data) <= block_size:
        raise ValueError(f"Need more than {block_size} tokens to cut a window, got {len(data)}.")
    starts = torch.randint(len(data) - block_size, (batch_size,), generator=generator)
    index = starts[:, None] + torch.arange(block_size)  # (B, T)
    return data[index], data[index + 1]


def book_batches(splits: dict[str, torch.Tensor], block_size: int = 256,
                 batch_size: int = 16) -> BatchFn:
    """A ``get_batch(split, generator)`` function over encoded text splits such as train/val."""

    def get_batch(split: str, generator: torch.Generator) -> Batch:
        return random_windows(splits[split], block_size, batch_size, generator)

    return get_batch


# ---------------------------------------------------------------------------------------------
# Lesson 2 — the architecture: §1 the config, §4 attention, §5 the MLP and dropout, §6 the
# block, §7 the GPT, §8 parameters by module
# ---------------------------------------------------------------------------------------------


@dataclass
class GPTConfig:
    vocab_size: int = 51  # distinct characters of the book and the Q&A file (from the tokenizer)
    block_size: int = 256  # longest context the model can see, in characters (room for a passage)
    n_embd: int = 128  # width of every token vector
    n_layer: int = 4  # transformer blocks
    n_head: int = 4  # attention heads per block (head size = n_embd / n_head)
    mlp_hidden: int = 256  # width of the MLP inside each block
    dropout: float = 0.15  # on embeddings and residual branches (not on attention weights)
    bias: bool = True  # biases in Linear layers and LayerNorms

    def __post_init__(self) -> None:
        for name in ("vocab_size", "block_size", "n_embd", "n_layer", "n_head", "mlp_hidden"):
            check_number(self, name, integer=True, ge=1)
        check_number(self, "dropout", ge=0, lt=1)
        check_arg("GPTConfig.n_embd", self.n_embd, self.n_embd % self.n_head == 0,
                  f"divisible by n_head={self.n_head} (each head gets n_embd / n_head dimensions)")
        check_arg("GPTConfig.bias", self.bias, isinstance(self.bias, bool), "True or False")


def is_number(value: Any, integer: bool = False) -> bool:
    """True for an int (or, unless ``integer``, a float); False for bools and anything else."""
    kinds = (int,) if integer else (int, float)
    return isinstance(value, kinds) and not isinstance(value, bool)


def check_number(config: Any, name: str, integer: bool = False, finite: bool = True,
                 **bounds: float) -> None:
    """Raise ``ValueError``, saying what is allowed, unless ``config.name`` is a number (an int
    if ``integer``, finite if ``finite``) within ``bounds`` (keywords ge, gt, lt, le)."""
    value = getattr(config, name)
    tests = {"ge": (">=", float.__ge__), "gt": (">", float.__gt__),
             "lt": ("<", float.__lt__), "le": ("<=", float.__le__)}
    ok = is_number(value, integer) and (math.isfinite(value) or not (finite or math.isnan(value)))
    ok = ok and all(tests[key][1](float(value), float(bound)) for key, bound in bounds.items())
    if not ok:
        limits = [f"{tests[key][0]} {bound}" for key, bound in bounds.items()]
        kind = "an integer" if integer else "a finite number" if finite else "a number"
        allowed = " and ".join([kind, *limits])
        raise ValueError(f"{type(config).__name__}.{name} must be {allowed}, got {value!r}.")


KVPair = tuple[torch.Tensor, torch.Tensor]  # one layer's cached keys and values
KVCache = list[KVPair]


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention where each position sees only itself and earlier positions."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.n_head = config.n_head
        self.qkv = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, cache: KVPair | None = None) -> tuple[torch.Tensor, KVPair]:
        """Attend over ``x`` (B, T, C), after the keys and values in ``cache`` if given."""
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)  # 3 x (B, T, C)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        if cache is not None:  # prepend what earlier calls already computed
            k = torch.cat([cache[0], k], dim=2)  # (B, nh, P+T, hs)
            v = torch.cat([cache[1], v], dim=2)
        past = k.size(2) - T
        if past == 0:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        elif T == 1:  # one new token may look at everything before it
            y = F.scaled_dot_product_attention(q, k, v)
        else:  # new token i may look at all past tokens and new tokens 0..i
            mask = torch.ones(T, past + T, dtype=torch.bool, device=x.device).tril(diagonal=past)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, T, C)
        return self.dropout(self.proj(y)), (k, v)

    def attention_weights(self, x: torch.Tensor) -> torch.Tensor:
        """Softmax weights (B, n_head, T, T) that ``forward`` gives ``x`` (B, T, C), no cache."""
        B, T, C = x.shape
        q, k, _ = self.qkv(x).split(C, dim=2)  # the same q and k as forward
        q, k = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k))
        scores = q @ k.transpose(-2, -1) / math.sqrt(C // self.n_head)  # (B, nh, T, T)
        mask = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
        return scores.masked_fill(~mask, float("-inf")).softmax(dim=-1)


class MLP(nn.Module):
    """Position-wise feed-forward network: widen, GELU, project back."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.fc = nn.Linear(config.n_embd, config.mlp_hidden, bias=config.bias)
        self.proj = nn.Linear(config.mlp_hidden, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.proj(F.gelu(self.fc(x))))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor, cache: KVPair | None = None) -> tuple[torch.Tensor, KVPair]:
        attended, new_cache = self.attn(self.ln1(x), cache)
        x = x + attended
        return x + self.mlp(self.ln2(x)), new_cache


class GPT(nn.Module):
    """A character-level GPT: embeddings, pre-norm blocks, final LayerNorm, tied output head."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        self.tok_emb = nn.Embedding(config.vocab_size, config.n_embd)
        self.pos_emb = nn.Embedding(config.block_size, config.n_embd)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.head.weight = self.tok_emb.weight  # weight tying: one matrix reads and writes tokens
        self.apply(self._init_weights)
        for name, param in self.named_parameters():  # GPT-2: scale the residual projections
            if name.endswith("proj.weight"):
                nn.init.normal_(param, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def num_parameters(self) -> int:
        """Trainable parameters, counting the tied embedding/head matrix once."""
        return sum(p.numel() for p in self.parameters())

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None,
                cache: KVCache | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits (B, T, vocab) for ids ``idx`` (B, T), and the mean cross-entropy over targets
        other than -100 (masked prompts) if ``targets``. A ``cache`` list is read and updated."""
        T = idx.size(1)
        past = cache[0][0].size(2) if cache else 0
        if past + T > self.config.block_size:
            raise ValueError(
                f"Input of {past + T} tokens is longer than the block size "
                f"{self.config.block_size}; crop it to the last {self.config.block_size} tokens."
            )
        # Checked on the CPU only: reading the ids would make a GPU wait on every call. On a GPU,
        # text encoded by the tokenizer (which refuses unknown characters) is in range anyway.
        low, high = (int(idx.min()), int(idx.max())) if idx.is_cpu and idx.numel() else (0, 0)
        if low < 0 or high >= self.config.vocab_size:
            raise ValueError(
                f"Token ids must lie in 0..{self.config.vocab_size - 1} (the vocabulary), got "
                f"ids from {low} to {high}. Encode text with the model's own tokenizer."
            )
        pos = torch.arange(past, past + T, device=idx.device)
        x = self.drop(self.tok_emb(idx) + self.pos_emb(pos))  # (B, T, C)
        past_kv = list(cache) if cache else [None] * len(self.blocks)
        new_kv = []
        for block, layer_kv in zip(self.blocks, past_kv, strict=True):
            x, layer_kv = block(x, layer_kv)
            new_kv.append(layer_kv)
        if cache is not None:
            cache[:] = new_kv
        logits = self.head(self.ln_f(x))  # (B, T, vocab)
        if targets is None:
            return logits, None
        loss = F.cross_entropy(
            logits.float().view(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-100
        )
        return logits, loss


@torch.no_grad()
def attention_maps(model: GPT, idx: torch.Tensor) -> list[torch.Tensor]:
    """Attention weights (B, n_head, T, T) of every layer, first to last, for ids ``idx`` (B, T)."""
    inputs: list[torch.Tensor] = []  # what each block's attention receives in forward
    capture = lambda module, args: inputs.append(args[0])  # args[0]: x (B, T, C)
    hooks = [block.attn.register_forward_pre_hook(capture) for block in model.blocks]
    try:
        model(idx)
    finally:
        for hook in hooks:
            hook.remove()
    return [block.attn.attention_weights(x) for block, x in zip(model.blocks, inputs, strict=True)]


def build_model(tokenizer: CharTokenizer, **overrides: Any) -> GPT:
    """The default GPT-0.5M for ``tokenizer``'s vocabulary; keyword arguments override GPTConfig."""
    return GPT(GPTConfig(vocab_size=tokenizer.vocab_size, **overrides))


def parameters_by_module(model: GPT) -> dict[str, int]:
    """Parameter count per part of the model (the tied head shares the token embedding)."""
    counts: dict[str, int] = {}
    for name, param in model.named_parameters():  # lists the tied head/embedding matrix once
        parts = name.split(".")
        group = ".".join(parts[:3]) if parts[0] == "blocks" else parts[0]
        counts[group] = counts.get(group, 0) + param.numel()
    return counts


# ---------------------------------------------------------------------------------------------
# Lesson 3 — pretraining: §1 and §8.1 the recipe, §3 AdamW and Muon, §4 the schedule, §6 loss
# estimates, §7 the loop, §8.2 the run, §9 yardsticks, §10 loss curves, §11 the number to report
# ---------------------------------------------------------------------------------------------


@dataclass
class TrainConfig:
    max_steps: int = 3000  # optimizer steps
    batch_size: int = 16  # sequences per step: 16 x 256 = 4,096 characters, as in the original
    optimizer: str = "adamw"  # "adamw", or "muon": Muon on the blocks' matrices, AdamW elsewhere
    lr: float = 2e-3  # AdamW's peak learning rate, reached after warm-up
    muon_lr: float = 0.02  # Muon's peak learning rate (used only with optimizer="muon")
    min_lr: float = 1e-4  # AdamW's learning rate at the end (Muon's falls in proportion)
    schedule: str = "cosine"  # after warm-up: "cosine" decay, or "wsd" (stable, then linear decay)
    decay_fraction: float = 0.3  # "wsd": share of the steps, at the end, spent decaying
    warmup_steps: int = 200  # linear warm-up, from lr / warmup_steps to lr
    weight_decay: float = 0.1  # decay of weight matrices (not biases, norms)
    beta2: float = 0.99  # AdamW second-moment decay; small data, small batches
    grad_clip: float = 1.0  # clip the global gradient norm to this
    eval_interval: int = 250  # estimate train/val loss every this many steps
    eval_iters: int = 20  # batches per loss estimate
    seed: int = 1337  # seeds initialisation order, batches and dropout

    def __post_init__(self) -> None:
        for name in ("max_steps", "batch_size", "eval_interval", "eval_iters"):
            check_number(self, name, integer=True, ge=1)
        check_number(self, "warmup_steps", integer=True, ge=0, le=self.max_steps)
        check_number(self, "seed", integer=True)
        check_number(self, "lr", gt=0, lt=1)
        check_number(self, "muon_lr", gt=0, lt=1)
        check_number(self, "min_lr", ge=0, le=self.lr)
        check_number(self, "decay_fraction", ge=0, le=1)
        check_number(self, "weight_decay", ge=0)
        check_number(self, "beta2", ge=0, lt=1)
        check_number(self, "grad_clip", finite=False, gt=0)  # math.inf: no clipping
        for name, allowed in (("optimizer", ("adamw", "muon")), ("schedule", ("cosine", "wsd"))):
            value = getattr(self, name)
            check_arg(f"TrainConfig.{name}", value, value in allowed, f"one of {allowed}")


#: Pretraining plan of lesson 3, chosen by the speed-up ladder of lesson 7 (tests/ladder.py)
#: on a dev slice of the training text (quick mode: two dozen steps that only prove it runs).
PRETRAIN = TrainConfig(
    max_steps=by_mode(full=1300, quick=24),
    optimizer="muon",
    lr=8e-3,
    muon_lr=0.04,
    schedule="wsd",
    warmup_steps=by_mode(full=87, quick=4),
    eval_interval=by_mode(full=100, quick=12),
    eval_iters=by_mode(full=20, quick=2),
)
#: A short pretraining for lessons run before lesson 3 has written the base checkpoint.
PRETRAIN_SHORT = replace(
    PRETRAIN,
    max_steps=by_mode(full=400, quick=20),
    warmup_steps=by_mode(full=30, quick=5),
    eval_interval=by_mode(full=100, quick=10),
    eval_iters=by_mode(full=10, quick=2),
)


def newton_schulz(update: torch.Tensor, steps: int = 5) -> torch.Tensor:
    """``update`` with its singular values pushed towards 1 (its "orthogonalisation"), by the
    quintic Newton–Schulz iteration of Muon; bf16 where autocast uses it (fast bf16), else fp32."""
    a, b, c = 3.4445, -4.7750, 2.0315
    fast_bf16 = autocast_dtype(update.device) == torch.bfloat16  # GPUs of compute capability 8.0+
    x = update.to(torch.bfloat16 if fast_bf16 else torch.float32)
    tall = x.size(0) > x.size(1)
    x = x.T if tall else x
    x = x / x.norm().clamp(min=1e-7)  # all singular values now <= 1
    for _ in range(steps):
        gram = x @ x.T
        x = torch.addmm(x, torch.addmm(gram, gram, gram, beta=b, alpha=c), x, beta=a)
    return x.T if tall else x


class Muon(torch.optim.Optimizer):
    """Momentum, then each matrix's step orthogonalised (Jordan et al., 2024): the maths of
    ``torch.optim.Muon`` (PyTorch 2.9+), runnable on older PyTorch; 2-D parameters only."""

    def __init__(self, params: Iterable, lr: float, momentum: float = 0.95, weight_decay=0.0):
        super().__init__(params, {"lr": lr, "momentum": momentum, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure: None = None) -> None:
        for group in self.param_groups:
            for p in (p for p in group["params"] if p.grad is not None):
                buf = self.state[p].setdefault("momentum_buffer", torch.zeros_like(p))
                buf.lerp_(p.grad, 1 - group["momentum"])  # running mean of the gradients
                update = newton_schulz(p.grad.lerp(buf, group["momentum"]))  # Nesterov
                p.mul_(1 - group["lr"] * group["weight_decay"])
                p.add_(update, alpha=-group["lr"] * max(1, p.size(0) / p.size(1)) ** 0.5)


def make_optimizer(model: nn.Module, cfg: TrainConfig,
                   device: torch.device) -> list[torch.optim.Optimizer]:
    """AdamW (decaying only matrices), plus Muon on the blocks' matrices if ``cfg`` says so;
    every group keeps its peak learning rate as ``"peak_lr"``, for the schedule."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    in_blocks = [p for n, p in named if p.dim() == 2 and ".blocks." in f".{n}"]  # DDP: "module."
    to_muon = in_blocks if cfg.optimizer == "muon" else []
    rest = [p for _, p in named if all(p is not q for q in to_muon)]
    groups = [
        {"params": [p for p in rest if p.dim() >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in rest if p.dim() < 2], "weight_decay": 0.0},
    ]
    fused = device.type == "cuda" or (device.type == "cpu" and torch_version() >= (2, 4))
    kernel = {"fused": True} if fused else {"foreach": True}
    optimizers: list[torch.optim.Optimizer] = [
        torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, cfg.beta2), **kernel)
    ]
    if to_muon:
        optimizers.append(Muon(to_muon, lr=cfg.muon_lr, weight_decay=cfg.weight_decay))
    for optimizer in optimizers:
        for group in optimizer.param_groups:
            group["peak_lr"] = group["lr"]
    return optimizers


def lr_at(step: int, cfg: TrainConfig) -> float:
    """AdamW's learning rate at ``step``: linear warm-up to ``cfg.lr``, then a cosine or a
    warm-up/stable/decay (linear, over the last ``cfg.decay_fraction``) fall to ``cfg.min_lr``."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.schedule == "wsd":
        decay_start = cfg.max_steps - round(cfg.decay_fraction * cfg.max_steps)
        decay_start = max(decay_start, cfg.warmup_steps)
        progress = max(0.0, min(1.0, (step - decay_start) / max(1, cfg.max_steps - decay_start)))
        return cfg.lr - progress * (cfg.lr - cfg.min_lr)
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps))
    return cfg.min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (cfg.lr - cfg.min_lr)


def optimizer_step(model: nn.Module, optimizers: Sequence[torch.optim.Optimizer],
                   scaler: torch.amp.GradScaler, loss: torch.Tensor, grad_clip: float) -> None:
    """Backward and update: clear the gradients, backpropagate ``loss`` (scaled for fp16), clip
    the global gradient norm to ``grad_clip`` (``math.inf``: no clipping), step every optimizer."""
    for optimizer in optimizers:
        optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    for optimizer in optimizers:
        scaler.unscale_(optimizer)
    if math.isfinite(grad_clip):
        nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    for optimizer in optimizers:
        scaler.step(optimizer)
    scaler.update()


def set_lr(optimizers: Sequence[torch.optim.Optimizer], step: int, cfg: TrainConfig) -> None:
    """Every group's learning rate at ``step``: its peak times the schedule's share of the peak."""
    share = lr_at(step, cfg) / cfg.lr
    for optimizer in optimizers:
        for group in optimizer.param_groups:
            group["lr"] = group["peak_lr"] * share


@torch.no_grad()
def estimate_loss(model: nn.Module, get_batch: BatchFn, splits: Sequence[str], iters: int,
                  device: torch.device, seed: int = 0) -> dict[str, float]:
    """Mean loss over ``iters`` batches per split, drawn with a fixed seed so every estimate
    sees the same text and is comparable across steps and runs."""
    was_training, dtype = model.training, autocast_dtype(device)
    model.eval()
    out = {}
    for split in splits:
        generator, losses = torch.Generator().manual_seed(seed), []
        for _ in range(iters):
            x, y = get_batch(split, generator)
            with torch.autocast(device.type, dtype, enabled=dtype is not None):
                losses.append(model(x.to(device), y.to(device))[1].item())
        out[split] = sum(losses) / len(losses)
    model.train(was_training)
    return out


def new_history() -> dict[str, list]:
    """Empty record of a run: eval steps, losses per split, learning rates and elapsed seconds."""
    return {"step": [], "lr": [], "seconds": [], "losses": {}, "train_step_loss": []}


def check_finite(loss: torch.Tensor, step: int, cfg: TrainConfig) -> float:
    """``loss`` as a float; a ``FloatingPointError`` with advice if it is inf or NaN."""
    if not torch.isfinite(loss):
        raise FloatingPointError(
            f"The loss became {loss.item()} at step {step}. Lower the learning rate "
            f"(now {lr_at(step, cfg):.2e}) or the gradient clip, and train again."
        )
    return loss.item()


def record(history: dict[str, list], bar: tqdm, show: bool, losses: dict, **at: float) -> None:
    """Append one loss estimate (``at``: its step, lr and seconds) to ``history``; show it."""
    for key, value in at.items():
        history[key].append(value)
    for split, value in losses.items():
        history["losses"].setdefault(split, []).append(value)
    summary = " ".join(f"{split} {value:.4f}" for split, value in losses.items())
    bar.set_postfix_str(summary)
    if show:
        bar.write(f"step {at['step']:>6}: {summary}  ({at['seconds']:.0f} s)")


class OneProcess:
    """The processes ``train`` runs on: this one alone. ``tests/ddp_pretrain.py``'s ``Ranks`` is
    the several-process version (DistributedDataParallel under ``torchrun``)."""

    rank, world = 0, 1

    def wrap(self, model: nn.Module) -> nn.Module:  # the module that runs forward and backward
        return model

    def share(self, x: torch.Tensor, y: torch.Tensor) -> Batch:  # this process's rows
        return x, y

    def mean(self, loss: torch.Tensor) -> torch.Tensor:  # the loss of the whole batch
        return loss

    def all(self, go: bool) -> bool:  # go on only if every process does
        return go

    def save(self, write: Callable[[dict[str, Any]], None], interrupted: bool = False) -> None:
        write({})  # several processes add every rank's random state, and skip Ctrl-C saves

    def rng_state(self, state: dict[str, Any]) -> torch.Tensor:  # this process's dropout stream
        return state["rng"]["torch"]


ONE_PROCESS = OneProcess()


def train(model: GPT, get_batch: BatchFn, cfg: TrainConfig, *, tokenizer: CharTokenizer,
          eval_splits: Sequence[str] = ("train", "val"), checkpoint_path: Path | None = None,
          resume: bool = True, origin: str = "", stop_at: int | None = None,
          time_budget: float = math.inf, clock: Callable[[], float] = time.perf_counter,
          ranks: OneProcess = ONE_PROCESS, progress: bool = True) -> dict[str, list]:
    """Lesson 3 §7's loop, with loss estimates and an atomic checkpoint every ``cfg.eval_interval``
    steps (also on Ctrl-C); a matching checkpoint (same ``origin``) is resumed exactly."""
    device = next(model.parameters()).device
    model.train()
    optimizers = make_optimizer(model, cfg, device)
    dtype = autocast_dtype(device)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    batch_rng = torch.Generator().manual_seed(cfg.seed)  # batches
    torch.manual_seed(cfg.seed + ranks.rank)  # dropout: each process its own masks
    step, history = 0, new_history()
    if checkpoint_path is not None and resume and Path(checkpoint_path).exists():
        step, history = restore(checkpoint_path, model, optimizers, scaler, batch_rng,
                                ranks, tokenizer=tokenizer, cfg=cfg, origin=origin)
    net, last = ranks.wrap(model), min(cfg.max_steps, cfg.max_steps if stop_at is None else stop_at)
    trained = history["seconds"][-1] if history["seconds"] else 0.0  # seconds before this call
    bar = make_progress_bar(cfg.max_steps, step, disable=not progress or ranks.rank > 0)

    def save(interrupted: bool = False) -> None:
        if checkpoint_path is not None:
            ranks.save(lambda extra: save_checkpoint(
                checkpoint_path, model, tokenizer, optimizers=optimizers, train_config=cfg,
                step=step, history=history, batch_rng=batch_rng, scaler=scaler,
                extra={"origin": origin, **extra}), interrupted)

    def evaluate_and_save() -> None:
        losses = estimate_loss(model, get_batch, eval_splits, cfg.eval_iters, device)
        show = progress and ranks.rank == 0
        record(history, bar, show, losses, step=step, lr=lr_at(step - 1, cfg), seconds=trained)
        save()

    tick = clock()
    try:
        while ranks.all(step < last and trained < time_budget):
            set_lr(optimizers, step, cfg)  # 1. this step's learning rate
            x, y = ranks.share(*get_batch("train", batch_rng))  # 2. a batch
            with torch.autocast(device.type, dtype, enabled=dtype is not None):
                _, loss = net(x.to(device), y.to(device))  # 3. forward
            mean_loss = check_finite(ranks.mean(loss.detach().clone()), step, cfg)
            optimizer_step(model, optimizers, scaler, loss, cfg.grad_clip)  # 4-6
            step += 1
            history["train_step_loss"].append(mean_loss)
            bar.update(1)
            trained += clock() - tick  # estimates and saves do not count
            if step % cfg.eval_interval == 0 or step == cfg.max_steps:
                evaluate_and_save()
            tick = clock()
        if step != (history["step"][-1] if history["step"] else 0):
            evaluate_and_save()  # stopped early between two estimates
    except KeyboardInterrupt:
        save(interrupted=True)
        raise
    finally:
        bar.close()
    return history


def pretrain(corpus: Corpus, cfg: TrainConfig = PRETRAIN, checkpoint_path: Path = BASE_CHECKPOINT,
             device: torch.device | None = None, progress: bool = True,
             origin: str = "") -> tuple[GPT, dict[str, list]]:
    """Train a fresh default GPT on ``corpus.splits`` (resuming a checkpoint of the same
    ``origin``) and save it."""
    device = device or pick_device()
    torch.manual_seed(cfg.seed)
    model = build_model(corpus.tokenizer).to(device)
    get_batch = book_batches(corpus.splits, model.config.block_size, cfg.batch_size)
    history = train(model, get_batch, cfg, tokenizer=corpus.tokenizer,
                    checkpoint_path=checkpoint_path, origin=origin, progress=progress)
    return model, history


def plot_losses(history: dict[str, list], ax: Axes | None = None, title: str = "Loss",
                best: str | None = "val") -> Axes:
    """Loss estimates per split against steps, with the best ``best``-split step marked."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(7, 4))[1]
    for split, values in history["losses"].items():
        ax.plot(history["step"], values, label=split, marker=".")
    if best and best in history["losses"]:
        values = history["losses"][best]
        i = min(range(len(values)), key=values.__getitem__)
        ax.axvline(history["step"][i], color="gray", linestyle=":", linewidth=1)
        ax.annotate(
            f"best {best} {values[i]:.3f}\nat step {history['step'][i]}",
            (history["step"][i], values[i]), textcoords="offset points", xytext=(6, 12),
        )
    ax.set(xlabel="step", ylabel="cross-entropy (nats/char)", title=title)
    ax.grid(alpha=0.3)
    ax.legend()
    return ax


@torch.no_grad()
def evaluate_text(model: GPT, data: torch.Tensor, batch_size: int = 64) -> float:
    """Mean next-character loss (nats) over all of ``data`` in consecutive windows: unlike
    ``estimate_loss`` it grades every character exactly once, so it is the number to report."""
    if len(data) < 2:
        raise ValueError(
            f"evaluate_text needs data of at least 2 tokens (one to read, one to predict), "
            f"got {len(data)}."
        )
    block, device = model.config.block_size, next(model.parameters()).device
    starts = list(range(0, len(data) - 1, block))
    full = [s for s in starts if s + block < len(data)]
    windows = [torch.tensor(full[i : i + batch_size]) for i in range(0, len(full), batch_size)]
    index = [w[:, None] + torch.arange(block) for w in windows]  # (B, T) each
    batches = [(data[i], data[i + 1]) for i in index]
    if starts and starts[-1] not in full:  # a shorter last window
        batches.append((data[starts[-1] : -1][None], data[starts[-1] + 1 :][None]))
    was_training, total = model.training, 0.0
    model.eval()
    for x, y in batches:
        logits, _ = model(x.to(device))
        total += F.cross_entropy(
            logits.float().flatten(0, 1), y.to(device).flatten(), reduction="sum"
        ).item()
    model.train(was_training)
    return total / (len(data) - 1)


def baseline_bits_per_char(corpus: Corpus) -> dict[str, float]:
    """Bits per validation character of a bigram count table (add-one smoothing) and of zlib,
    bz2 and lzma compressing it after the training text (size of both minus size of train)."""
    train, val, vocab = corpus.splits["train"], corpus.splits["val"], corpus.tokenizer.vocab_size
    counts = torch.ones(vocab, vocab).index_put_(
        (train[:-1], train[1:]), torch.ones(len(train) - 1), accumulate=True
    )
    probs = counts / counts.sum(dim=1, keepdim=True)  # row: previous character, column: next
    out = {"bigram": -probs[val[:-1], val[1:]].log2().mean().item()}
    seen, new = (corpus.tokenizer.decode(ids.tolist()).encode() for ids in (train, val))
    for name, compress in (("zlib", zlib.compress), ("bz2", bz2.compress), ("lzma", lzma.compress)):
        out[name] = 8 * (len(compress(seen + new)) - len(compress(seen))) / len(val)
    return out


# ---------------------------------------------------------------------------------------------
# Lesson 4 — generation: §2–6 from logits to a distribution (temperature, top-k, top-p),
# §3 and §10 generate (stop strings), §8–9 the KV cache and the context window
# ---------------------------------------------------------------------------------------------


def next_token_probs(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                     top_p: float | None = None) -> torch.Tensor:
    """The distribution to sample from, given last-position logits (vocab,): divided by the
    temperature (0: greedy), cut to the top-k tokens and to the smallest set of mass >= top-p."""
    check_sampling(temperature, top_k, top_p)
    logits = logits.float()
    if temperature == 0:
        return F.one_hot(logits.argmax(), logits.numel()).float()
    logits = logits / temperature
    if top_k is not None:
        kth = torch.topk(logits, min(top_k, logits.numel())).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None:
        sorted_logits, order = torch.sort(logits, descending=True)
        probs = sorted_logits.softmax(-1)
        drop = probs.cumsum(-1) - probs >= top_p  # the mass before this token is already >= p
        logits = logits.masked_fill(drop.scatter(0, order, drop), float("-inf"))
    return logits.softmax(-1)


def check_sampling(temperature: float, top_k: int | None, top_p: float | None) -> None:
    """Raise ``ValueError`` for a sampling setting outside its range, naming what is allowed."""
    if not (is_number(temperature) and math.isfinite(temperature) and temperature >= 0):
        raise ValueError(f"temperature must be a finite number >= 0 (0: greedy), got {temperature}")
    if top_k is not None and not (is_number(top_k, integer=True) and top_k >= 1):
        raise ValueError(f"top_k must be an integer >= 1 or None, got {top_k!r}.")
    if top_p is not None and not (is_number(top_p) and 0 < top_p <= 1):
        raise ValueError(f"top_p must be a number with 0 < top_p <= 1, or None, got {top_p!r}.")


def generate(model: GPT, tokenizer: CharTokenizer, prompt: str = "", max_new_tokens: int = 200, *,
             temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
             seed: int | None = None, use_cache: bool = True, stop: str | None = None) -> str:
    """The text that continues ``prompt``, cut before ``stop`` if it appears; an empty prompt
    starts from a newline, as a paragraph does."""
    check_text("prompt", prompt)
    check_arg("stop", stop, stop is None or (isinstance(stop, str) and stop != ""),
              "None or a non-empty string", TypeError)
    ids = tokenizer.encode(prompt) or tokenizer.encode("\n")
    new = generate_ids(
        model, ids, max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p,
        seed=seed, use_cache=use_cache, stop_ids=tokenizer.encode(stop) if stop else None,
    )
    text = tokenizer.decode(new)
    return text[: text.index(stop)] if stop and stop in text else text


def generate_ids(model: GPT, ids: Sequence[int], max_new_tokens: int, *, temperature: float = 1.0,
                 top_k: int | None = None, top_p: float | None = None, seed: int | None = None,
                 use_cache: bool = True, stop_ids: Sequence[int] | None = None) -> list[int]:
    """Up to ``max_new_tokens`` tokens after ``ids``, sampled by ``next_token_probs``, ending
    after ``stop_ids``: ``decode_rows`` with one row."""
    ids, stop = token_ids("ids", ids), token_ids("stop_ids", stop_ids or [])
    if not ids:
        raise ValueError("generate_ids needs at least one token to start from (ids is empty).")
    count = is_number(max_new_tokens, integer=True) and max_new_tokens >= 0
    check_arg("max_new_tokens", max_new_tokens, count, "an integer >= 0")
    check_arg("seed", seed, seed is None or is_number(seed, integer=True), "None or an integer")
    check_sampling(temperature, top_k, top_p)
    device = next(model.parameters()).device
    generator = torch.Generator(device=device)  # sampling where the logits are: no copy per token
    generator.manual_seed(seed) if seed is not None else generator.seed()

    def pick(logits: torch.Tensor) -> torch.Tensor:  # (1, vocab) -> (1, 1)
        probs = next_token_probs(logits[0], temperature, top_k, top_p)
        return torch.multinomial(probs, 1, generator=generator)[None]

    [(new, _)] = decode_rows(model, torch.tensor([ids]), max_new_tokens, pick, stop, use_cache)
    return new


@torch.no_grad()
def decode_rows(model: GPT, rows: torch.Tensor, max_new_tokens: int,
                pick: Callable[[torch.Tensor], torch.Tensor], stop: Sequence[int] = (),
                use_cache: bool = True) -> list[tuple[list[int], bool]]:
    """Continue equal-length rows (B, T) side by side, each next token ``pick``ed from the last
    logits (B, vocab); a full context drops its oldest half, with and without the cache alike, so
    both give the same tokens. Each row is cut after ``stop``, with whether it stopped."""
    block, device = model.config.block_size, next(model.parameters()).device
    was_training = model.training
    model.eval()
    tokens, length = rows.to(device), rows.size(1)
    start = fed = max(0, length - block)  # tokens[start:fed] are already in the cache
    cache: KVCache = []
    stop_row = torch.tensor(list(stop), dtype=torch.long, device=device)
    done = torch.zeros(len(tokens), dtype=torch.bool, device=device)
    look_every = 1 if device.type == "cpu" else 16  # how often the host looks for the stops
    for step in range(max_new_tokens):
        n = length + step  # tokens so far
        if n - start > block:  # the window is full: keep its newer half
            start, cache, fed = n - block // 2, [], n - block // 2
        if use_cache:
            logits, _ = model(tokens[:, fed:], cache=cache)
            fed = n
        else:
            logits, _ = model(tokens[:, start:])
        tokens = torch.cat([tokens, pick(logits[:, -1])], dim=1)
        if stop and step + 1 >= len(stop):  # a stop among the new tokens ends its row
            done |= (tokens[:, -len(stop) :] == stop_row).all(dim=1)
            if step % look_every == look_every - 1 and bool(done.all()):
                break
    model.train(was_training)
    return [cut_at(row, stop) for row in tokens[:, length:].tolist()]


def cut_at(ids: list[int], stop: Sequence[int]) -> tuple[list[int], bool]:
    """``ids`` up to the end of the first occurrence of ``stop``, and whether it occurred."""
    ends = [i for i in range(len(stop), len(ids) + 1) if ids[i - len(stop) : i] == list(stop)]
    return (ids[: ends[0]], True) if stop and ends else (ids, False)


# ---------------------------------------------------------------------------------------------
# Lesson 5 — fine-tuning: §1 splits, §2 the prompt format, §3 the answer-only mask,
# §4 book replay and buckets, §6 the run, §8 the dev split, the plan and the noise of a score
# (the retriever and open-book passages: lesson 6 §4)
# ---------------------------------------------------------------------------------------------


def qa_split(records: Sequence[dict[str, Any]], split: str) -> list[dict[str, Any]]:
    """The Q&A records of one split (``train``, ``paraphrase``, ``unseen``, ``never_read``,
    ``reversal``)."""
    check_arg("split", split, split in QA_SPLITS, f"one of {', '.join(QA_SPLITS)}")
    return [r for r in records if r["split"] == split]


def squash(text: str) -> str:
    """Lower case with whitespace folded: how evidence is looked up in a passage or the book."""
    return " ".join(text.lower().split())


#: Longest passage put before a question: 120 + the longest question and answer + the tags fit
#: the block's 256 inputs and one shifted target (lesson 5 checks it).
PASSAGE_CHARS = 120


def qa_prompt(question: str, passage: str | None = None) -> str:
    """The one prompt format, in fine-tuning, generation and evaluation alike: closed-book
    ``<q>question⏎<a>``, or open-book with ``<p>passage⏎`` before it."""
    check_text("question", question)
    check_arg("passage", passage, passage is None or isinstance(passage, str),
              "None or a string", TypeError)
    closed = f"{QUESTION_TAG}{' '.join(question.split())}\n{ANSWER_TAG}"
    return closed if passage is None else f"{PASSAGE_TAG}{' '.join(passage.split())}\n{closed}"


def qa_completion(answer_text: str) -> str:
    """What the model learns to write after the prompt: the answer and the end marker."""
    return f"{answer_text.strip()}{END_TAG}"


def answer(model: GPT, tokenizer: CharTokenizer, question: str, passage: str | None = None,
           max_new_tokens: int = 80) -> str:
    """Greedy answer to ``question``, after ``passage`` if one is given: the text the model
    writes before the end marker (``answers`` with one question)."""
    return answers(model, tokenizer, [question], [passage], max_new_tokens)[0][0]


def answers(model: GPT, tokenizer: CharTokenizer, questions: Sequence[str],
            passages: Sequence[str | None] | None = None, max_new_tokens: int = 80,
            batch_size: int = 64) -> list[tuple[str, bool]]:
    """``answer`` to every question, with whether it ended with the end marker; prompts of equal
    length are decoded together, up to ``batch_size`` at a time (fewer model calls)."""
    passages = [None] * len(questions) if passages is None else passages
    check_arg("passages", passages, len(passages) == len(questions), "one per question (or None)")
    for name, value, low in (("max_new_tokens", max_new_tokens, 0), ("batch_size", batch_size, 1)):
        ok = is_number(value, integer=True) and value >= low
        check_arg(name, value, ok, f"an integer >= {low}")
    prompts = [tokenizer.encode(qa_prompt(q, p)) for q, p in zip(questions, passages, strict=True)]
    by_length: dict[int, list[int]] = {}
    for i, ids in enumerate(prompts):
        by_length.setdefault(len(ids), []).append(i)
    out: list[tuple[str, bool]] = [("", False)] * len(prompts)
    stop = tokenizer.encode(END_TAG)
    greedy = lambda logits: logits.float().argmax(-1, keepdim=True)  # as temperature 0
    for group in by_length.values():
        for chunk in (group[i : i + batch_size] for i in range(0, len(group), batch_size)):
            rows = torch.tensor([prompts[i] for i in chunk])
            decoded = decode_rows(model, rows, max_new_tokens, greedy, stop)
            for i, (ids, stopped) in zip(chunk, decoded, strict=True):
                text = tokenizer.decode(ids[: len(ids) - len(stop) if stopped else None])
                out[i] = (text.strip(), stopped)
    return out


def encode_qa(records: Sequence[dict[str, Any]], tokenizer: CharTokenizer, block_size: int,
              mask_question: bool = True) -> Batch:
    """One row per record (with its ``passage`` if any), right-padded to ``block_size``; targets
    are -100 (ignored by the loss) on padding and, with ``mask_question``, on the prompt."""
    pad = tokenizer.encode("\n")[0]
    xs = torch.full((len(records), block_size), pad, dtype=torch.long)
    ys = torch.full((len(records), block_size), -100, dtype=torch.long)
    for row, record in enumerate(records):
        check_arg(f"records[{row}]", record, isinstance(record, dict), "a dict", TypeError)
        require_keys(record, ("question", "answer"), f"encode_qa: records[{row}]")
        prompt = tokenizer.encode(qa_prompt(record["question"], record.get("passage")))
        ids = prompt + tokenizer.encode(qa_completion(record["answer"]))
        if len(ids) > block_size + 1:
            raise ValueError(f"Q&A example longer than the block ({len(ids)} > {block_size + 1}).")
        xs[row, : len(ids) - 1] = torch.tensor(ids[:-1])
        ys[row, : len(ids) - 1] = torch.tensor(ids[1:])
        if mask_question:
            ys[row, : len(prompt) - 1] = -100  # the answer-only mask: never grade the prompt
    return xs, ys


_WORD = re.compile(r"[a-z0-9]+")
#: Words too common to tell passages apart: skipped by the retriever (and 20 times faster).
STOP_WORDS = frozenset(
    "a about after alice an and are as at be been before but by d did do does down for from had "  # noqa: SIM905
    "has have he her him his how i if in into is it its ll me my no not of on or our out over s "
    "said she so t than that the their them then there these they this those to up ve was we "
    "were what when where which who whom whose why with you your".split()
)


def words(text: str) -> list[str]:
    """The searchable words of ``text``: lower case, split at punctuation, no stop words."""
    return [w for w in _WORD.findall(text.lower()) if w not in STOP_WORDS]


def book_windows(text: str, width: int = PASSAGE_CHARS,
                 stride: int = PASSAGE_CHARS // 4) -> list[str]:
    """Overlapping passages of at most ``width`` characters every ``stride`` characters, with
    whitespace folded and both ends cut at word boundaries."""
    check_text("text", text)
    check_arg("width", width, is_number(width, integer=True) and width >= 1, "an integer >= 1")
    check_arg("stride", stride, is_number(stride, integer=True) and 1 <= stride <= width,
              f"an integer from 1 to width ({width})")
    flat = " ".join(text.split())
    passages = []
    for start in range(0, max(1, len(flat) - width + stride), stride):
        if start and flat[start - 1] != " ":  # begin at the next whole word
            start = flat.find(" ", start) + 1 or len(flat)
        piece = flat[start : start + width]
        if start + width < len(flat) and flat[start + width] != " " and " " in piece:
            piece = piece[: piece.rindex(" ")]  # end at the last whole word
        passages.append(piece.strip())
    return passages


class Retriever:
    """BM25 search over ``book_windows(text)``: a passage scores, per question word w that it
    holds c times, idf(w) · c (k1 + 1) / (c + k1 (1 - b + b · length / mean length))."""

    def __init__(self, text: str, k1: float = 1.2, b: float = 0.75) -> None:
        check_text("text", text, empty=False)
        check_arg("k1", k1, is_number(k1) and 0 <= k1 < math.inf, "a finite number >= 0")
        check_arg("b", b, is_number(b) and 0 <= b <= 1, "a number from 0 to 1")
        self.passages = book_windows(text)
        self.counts = [Counter(words(p)) for p in self.passages]
        self.lengths = [sum(c.values()) for c in self.counts]
        self.mean_length = sum(self.lengths) / len(self.lengths)
        self.k1, self.b = k1, b
        n, df = len(self.passages), Counter(w for c in self.counts for w in c)
        self.idf = {w: math.log(1 + (n - m + 0.5) / (m + 0.5)) for w, m in df.items()}
        self.postings: dict[str, list[int]] = {}
        for i, c in enumerate(self.counts):
            for w in c:
                self.postings.setdefault(w, []).append(i)

    def scores(self, question: str) -> dict[int, float]:
        """BM25 score of every passage that shares a word with ``question`` (by index)."""
        check_text("question", question)
        scores: dict[int, float] = {}
        for w in set(words(question)):
            for i in self.postings.get(w, []):
                c, norm = self.counts[i][w], self.lengths[i] / self.mean_length
                tf = c * (self.k1 + 1) / (c + self.k1 * (1 - self.b + self.b * norm))
                scores[i] = scores.get(i, 0.0) + self.idf[w] * tf
        return scores

    def search(self, question: str) -> str:
        """The best-scoring passage; among equal ones (overlapping windows around the same
        words) the middle one, which centres the matched words. The first if nothing matches."""
        scores = self.scores(question)
        if not scores:
            return self.passages[0]
        top = max(scores.values())
        tied = sorted(i for i, score in scores.items() if score >= top - 1e-9)
        return self.passages[tied[len(tied) // 2]]


def evidence_found(record: dict[str, Any], passage: str) -> bool:
    """Retrieval recall of one record: is its evidence quote inside the passage?"""
    check_arg("record", record, isinstance(record, dict), "a Q&A record (a dict)", TypeError)
    require_keys(record, ("evidence",), "evidence_found: record")
    check_text("passage", passage)
    return squash(record["evidence"]) in squash(passage)


def _hash_share(key: str) -> float:
    """A stable pseudo-random number in [0, 1) for ``key`` (the same on every machine)."""
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 16**8


def word_overlap(question: str, others: Sequence[str]) -> float:
    """The largest Jaccard overlap between the searchable words of ``question`` and those of
    one of ``others`` (0 if none): how close a phrasing comes to its nearest other phrasing."""
    mine = set(words(question))
    return max((len(mine & set(words(o))) / max(1, len(mine | set(words(o)))) for o in others),
               default=0.0)


def dev_split(records: Sequence[dict[str, Any]], unseen_share: float = 0.12) -> dict[str, list]:
    """Carve a dev set out of the train facts only, by hash: ``fit`` is trained on,
    ``dev_unseen`` holds whole facts out, ``dev_paraphrase`` the phrasing of every other fact
    least like its other phrasings (by ``word_overlap``), as a real held-out paraphrase is."""
    by_fact: dict[str, list[dict[str, Any]]] = {}
    for r in qa_split(records, "train"):
        by_fact.setdefault(r["fact"], []).append(r)
    out: dict[str, list] = {"fit": [], "dev_paraphrase": [], "dev_unseen": []}
    for fact, rows in by_fact.items():
        if _hash_share(fact) < unseen_share:
            out["dev_unseen"] += rows
            continue
        held = min(rows, key=lambda r: (
            word_overlap(r["question"], [o["question"] for o in rows if o is not r]),
            _hash_share(r["question"])))
        out["dev_paraphrase"].append(held)
        out["fit"] += [r for r in rows if r is not held]
    return out


@dataclass
class FinetunePlan:
    """What defines a fine-tuning run besides its schedule; saved in the checkpoint."""

    mode: str = "both"  # "closed": question alone; "open": retrieved passage first; "both": both
    book_fraction: float = 0.5  # share of steps that are book windows, against forgetting
    mask_question: bool = True  # grade only the answer and <end>
    dev: bool = False  # train on the dev split's ``fit`` part only (to choose recipes)

    def __post_init__(self) -> None:
        check_arg("FinetunePlan.mode", self.mode, self.mode in ("closed", "open", "both"),
                  "'closed', 'open' or 'both'")
        check_number(self, "book_fraction", ge=0, lt=1)
        for name in ("mask_question", "dev"):
            check_arg(f"FinetunePlan.{name}", getattr(self, name),
                      isinstance(getattr(self, name), bool), "True or False")


#: The plan lesson 5 trains: the dev-split winner in tests/qa_recipes.json (lesson 5 §8
#: applies the rule and checks it).
FINETUNE_PLAN = FinetunePlan(mode="closed")


def share_stderr(share: float, n: int) -> float:
    """Standard error of a share of ``n`` questions (an exact match), counted with one right and
    one wrong answer added, so that 0 of ``n`` still has a spread."""
    check_arg("n", n, is_number(n, integer=True) and n >= 1, "an integer >= 1")
    smoothed = (share * n + 1) / (n + 2)
    return math.sqrt(smoothed * (1 - smoothed) / n)


def share_gap(share: float, n: int, reference: float, n_reference: int) -> tuple[float, float]:
    """``share - reference`` (each a share of its ``n`` questions) and two standard errors of that
    gap: a difference counts only beyond them."""
    bar = 2 * math.hypot(share_stderr(share, n), share_stderr(reference, n_reference))
    return share - reference, bar


def with_passages(records: Sequence[dict[str, Any]], retriever: Retriever) -> list[dict[str, Any]]:
    """Copies of ``records`` with the retrieved ``passage`` of each question added."""
    return [{**r, "passage": retriever.search(r["question"])} for r in records]


def finetune_examples(corpus: Corpus, plan: FinetunePlan) -> list[dict[str, Any]]:
    """The examples ``plan`` trains on; passages come from the training text only."""
    records = dev_split(corpus.qa)["fit"] if plan.dev else qa_split(corpus.qa, "train")
    retriever = Retriever(corpus.train_text)
    examples = [] if plan.mode == "open" else list(records)
    if plan.mode != "closed":
        examples += with_passages(records, retriever)
    return examples


def full_run_steps(corpus: Corpus, plan: FinetunePlan, dev_steps: int) -> int:
    """Steps for the full run of a length chosen on the dev split: ``dev_steps`` scaled from
    ``fit``'s examples to the train split's (each seen as often), rounded to 100."""
    dev = finetune_examples(corpus, replace(plan, dev=True))
    return int(round(dev_steps * len(finetune_examples(corpus, plan)) / len(dev), -2))


def qa_lengths(qa_rows: Batch) -> torch.Tensor:
    """Characters each encoded Q&A row really uses: up to its last graded target."""
    graded = (qa_rows[1] != -100).int()  # (N, T)
    return graded.shape[1] - graded.flip(1).argmax(1)


def qa_batches(qa_rows: Batch, book_splits: dict[str, torch.Tensor], block_size: int = 256,
               batch_size: int = 16, book_fraction: float = 0.5) -> BatchFn:
    """``train``: book windows on a random share ``book_fraction`` of the steps, else Q&A rows
    (as ``qa``), in length buckets of width ``block_size / 2**k`` and ``2**k`` times the rows."""
    xs, ys = qa_rows
    shrink = (block_size // qa_lengths(qa_rows)).float().log2().floor().long()  # bucket of a row
    buckets = [(k, (shrink == k).nonzero().flatten()) for k in shrink.unique().tolist()]
    # bucket k is drawn in proportion to its rows / its rows per batch: uniform draws per row
    weights = torch.tensor([len(members) / 2**k for k, members in buckets])

    def get_batch(split: str, generator: torch.Generator) -> Batch:
        if split == "val" or (
            split == "train" and torch.rand((), generator=generator) < book_fraction
        ):
            part = "val" if split == "val" else "train"
            return random_windows(book_splits[part], block_size, batch_size, generator)
        k, members = buckets[torch.multinomial(weights, 1, generator=generator).item()]
        picks = members[torch.randint(len(members), (batch_size * 2**k,), generator=generator)]
        width = block_size // 2**k
        return xs[picks, :width], ys[picks, :width]

    return get_batch


#: Fine-tuning schedule of lesson 5: Muon, chosen on dev in lesson 5 §9.2 (tests/qa_muon_*.json)
#: over AdamW alone; its 1,000 dev steps scaled by ``full_run_steps`` (1,809 / 1,400 examples).
FINETUNE = TrainConfig(
    max_steps=by_mode(full=1300, quick=20),
    optimizer="muon",
    muon_lr=0.01,
    lr=2e-3,
    min_lr=5e-5,
    warmup_steps=by_mode(full=50, quick=4),
    eval_interval=by_mode(full=100, quick=10),
    eval_iters=by_mode(full=10, quick=2),
)


def weights_fingerprint(model: nn.Module) -> str:
    """A short hash of a model's weights: tells which base model a fine-tune started from."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def finetune(base: GPT, corpus: Corpus, cfg: TrainConfig = FINETUNE,
             checkpoint_path: Path | None = FINETUNED_CHECKPOINT,
             plan: FinetunePlan = FINETUNE_PLAN, progress: bool = True,
             examples: Sequence[dict[str, Any]] | None = None) -> tuple[GPT, dict[str, list]]:
    """Fine-tune a copy of ``base`` on ``examples`` (default: ``plan``'s); a checkpoint of another
    origin (base weights, plan, examples) is not resumed: a warning names what changed."""
    examples = finetune_examples(corpus, plan) if examples is None else list(examples)
    data_hash = hashlib.sha256(json.dumps(examples, sort_keys=True).encode()).hexdigest()[:16]
    origin = json.dumps({"base": weights_fingerprint(base), **asdict(plan), "data": data_hash})
    resume = checkpoint_path is not None and Path(checkpoint_path).exists()
    if resume:
        old = load_checkpoint(checkpoint_path)["extra"].get("origin", "")
        if old != origin:
            was = json.loads(old) if old.startswith("{") else {"origin": old}
            changed = [f"{k} {was.get(k)!r} -> {v!r}" for k, v in json.loads(origin).items()
                       if was.get(k) != v]
            warnings.warn(
                f"{Path(checkpoint_path).name} belongs to another fine-tuning plan "
                f"({'; '.join(changed)}): "
                "not resuming it, training from the base model again.",
                stacklevel=2,
            )
            resume = False
    model = GPT(base.config).to(next(base.parameters()).device)
    model.load_state_dict(base.state_dict())
    rows = encode_qa(examples, corpus.tokenizer, model.config.block_size, plan.mask_question)
    get_batch = qa_batches(
        rows, corpus.splits, model.config.block_size, cfg.batch_size, plan.book_fraction
    )
    history = train(
        model, get_batch, cfg, tokenizer=corpus.tokenizer, eval_splits=("qa", "val"),
        checkpoint_path=checkpoint_path, resume=resume, origin=origin, progress=progress,
    )
    return model.eval(), history


# ---------------------------------------------------------------------------------------------
# Lesson 6 — evaluation: §3 exact match and F1, §4 every split closed- and open-book
# (lesson 5 §2 and §6.4 already use these)
# ---------------------------------------------------------------------------------------------

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation + "“”‘’—_")


def normalize_answer(text: str) -> str:
    """SQuAD-style normalisation: lower case, no punctuation, no articles, single spaces."""
    text = text.lower().replace("’", "'").translate(_PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, gold: str) -> float:
    """1.0 if the normalised strings are equal, else 0.0."""
    return float(normalize_answer(prediction) == normalize_answer(gold))


def f1_score(prediction: str, gold: str) -> float:
    """Word-overlap F1 between the normalised prediction and gold answer."""
    pred, ref = normalize_answer(prediction).split(), normalize_answer(gold).split()
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def evaluate_qa(model: GPT, tokenizer: CharTokenizer, records: Sequence[dict[str, Any]],
                retriever: Retriever | None = None) -> dict[str, Any]:
    """Greedy answers (``answers``) to ``records``, closed-book or (with ``retriever``) open-book:
    mean exact match and F1, retrieval recall if open-book, and one row per question."""
    if not records:
        raise ValueError("records is empty: evaluate_qa needs at least one Q&A record to score.")
    check_arg("retriever", retriever, retriever is None or isinstance(retriever, Retriever),
              "None or a utils.Retriever", TypeError)
    for i, record in enumerate(records):
        check_arg(f"records[{i}]", record, isinstance(record, dict), "a Q&A record", TypeError)
        require_keys(record, ("question", "answer", *(["evidence"] if retriever else [])),
                     f"evaluate_qa: records[{i}]")
    questions = [record["question"] for record in records]
    passages = [retriever.search(q) if retriever else None for q in questions]
    rows = []
    for record, passage, (predicted, stopped) in zip(
        records, passages, answers(model, tokenizer, questions, passages), strict=True
    ):
        rows.append({
            "question": record["question"], "gold": record["answer"], "predicted": predicted,
            "stopped": stopped, "exact_match": exact_match(predicted, record["answer"]),
            "f1": f1_score(predicted, record["answer"]),
            **({"passage": passage, "found": evidence_found(record, passage)} if retriever else {}),
        })
    n = len(rows)
    scores = {key: sum(r[key] for r in rows) / n for key in ("exact_match", "f1")}
    scores["n"] = len(rows)
    if retriever:
        scores["recall"] = sum(r["found"] for r in rows) / n
    return {**scores, "rows": rows}


# ---------------------------------------------------------------------------------------------
# Lesson 7 — stats and scaling up: §2 FLOPs, §7.1 the model-size study, §7.2 byte-pair encoding
# ---------------------------------------------------------------------------------------------


def flops_per_token(config: GPTConfig, with_backward: bool = True) -> int:
    """Approximate FLOPs to process one token: 2 per multiply-add of every weight matrix plus
    attention scores over a full context; training (forward + backward) is three times that."""
    c, h, t = config.n_embd, config.mlp_hidden, config.block_size
    per_layer = 2 * (3 * c * c + c * c + 2 * c * h) + 2 * 2 * t * c  # matmuls + QK^T and AV
    forward = config.n_layer * per_layer + 2 * c * config.vocab_size  # + output head
    return 3 * forward if with_backward else forward


def bits_per_character(model: GPT, tokenizer: CharTokenizer | BPETokenizer, text: str) -> float:
    """Total validation loss over ``text`` in bits, divided by the characters it predicts: the
    fair yardstick between tokenizers (per-token loss rewards longer tokens)."""
    ids = tokenizer.encode(text)
    nats = evaluate_text(model, torch.tensor(ids, dtype=torch.long)) * (len(ids) - 1)
    predicted_chars = len(tokenizer.normalize(text)) - len(tokenizer.decode(ids[:1]))
    return nats / predicted_chars / math.log(2)


_CHUNK = re.compile(r" ?\w+| ?[^\w\s]+|\s+")


def split_chunks(text: str) -> list[str]:
    """Words with their leading space, runs of punctuation, runs of whitespace: BPE merges
    never cross these borders, so no token spans two words."""
    check_text("text", text)
    return _CHUNK.findall(text)


def merge_pair(ids: Sequence[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """``ids`` with each occurrence of ``pair``, read left to right, replaced by ``new_id``."""
    ids, pair = token_ids("ids", ids), tuple(token_ids("pair", pair))
    check_arg("pair", pair, len(pair) == 2, "two token ids (a, b)")
    check_arg("new_id", new_id, is_number(new_id, integer=True), "an integer token id", TypeError)
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


class BPETokenizer:
    """Byte-pair encoding on top of the character vocabulary: merge ``i`` fuses a pair of
    tokens into the new token ``chars.vocab_size + i``; unknown characters still raise."""

    def __init__(self, chars: CharTokenizer, merges: Sequence[tuple[int, int]]) -> None:
        check_arg("chars", chars, isinstance(chars, CharTokenizer), "a CharTokenizer", TypeError)
        self.chars = chars
        self.merges = [tuple(token_ids(f"merges[{i}]", m)) for i, m in enumerate(merges)]
        for i, merge in enumerate(self.merges):  # a merge fuses tokens that exist before it
            known = len(merge) == 2 and min(merge) >= 0 and max(merge) < chars.vocab_size + i
            check_arg(f"merges[{i}]", merge, known, f"two ids below {chars.vocab_size + i}")
        self.ranks = {pair: rank for rank, pair in enumerate(self.merges)}
        self.pieces = list(chars.chars)  # the text of every token id
        for a, b in self.merges:
            self.pieces.append(self.pieces[a] + self.pieces[b])
        self._chunk_cache: dict[str, list[int]] = {}

    @classmethod
    def train(cls, text: str, chars: CharTokenizer, num_merges: int) -> BPETokenizer:
        """Learn ``num_merges`` merges from ``text``: each time, fuse the most frequent pair."""
        check_arg("chars", chars, isinstance(chars, CharTokenizer), "a CharTokenizer", TypeError)
        check_arg("num_merges", num_merges, is_number(num_merges, integer=True) and num_merges >= 0,
                  "an integer >= 0")
        words = Counter(tuple(chars.encode(chunk)) for chunk in split_chunks(chars.normalize(text)))
        merges: list[tuple[int, int]] = []
        for _ in range(num_merges):
            pairs: Counter[tuple[int, int]] = Counter()
            for word, count in words.items():
                for pair in itertools.pairwise(word):
                    pairs[pair] += count
            if not pairs:
                break
            best = max(pairs, key=pairs.__getitem__)  # ties: the pair seen first
            new_id = chars.vocab_size + len(merges)
            merges.append(best)
            words = Counter({tuple(merge_pair(w, best, new_id)): c for w, c in words.items()})
        return cls(chars, merges)

    @property
    def vocab_size(self) -> int:
        return len(self.pieces)

    def normalize(self, text: str) -> str:
        return self.chars.normalize(text)

    def _encode_chunk(self, chunk: str) -> list[int]:
        if chunk not in self._chunk_cache:
            ids = [self.chars.stoi[ch] for ch in chunk]
            never = len(self.ranks)  # rank of a pair that was never merged
            while len(ids) > 1:  # apply the earliest-learned merge present, as training did
                pair = min(itertools.pairwise(ids), key=lambda p: self.ranks.get(p, never))
                if pair not in self.ranks:
                    break
                ids = merge_pair(ids, pair, len(self.chars.chars) + self.ranks[pair])
            self._chunk_cache[chunk] = ids
        return self._chunk_cache[chunk]

    def encode(self, text: str) -> list[int]:
        """Text to token ids; raise the character tokenizer's ``ValueError`` on unknown ones."""
        self.chars.encode(text)  # the same check, the same message, as the character tokenizer
        chunks = split_chunks(self.normalize(text))
        return [i for chunk in chunks for i in self._encode_chunk(chunk)]

    def decode(self, ids: Iterable[int]) -> str:
        """Token ids back to text; an id outside the vocabulary is a ``ValueError``."""
        ids = token_ids("ids", ids)
        bad = [i for i in ids if not 0 <= i < self.vocab_size]
        check_arg("ids", bad[:3], not bad, f"ids from 0 to {self.vocab_size - 1}; these are not")
        return "".join(self.pieces[i] for i in ids)

    def __repr__(self) -> str:
        return f"BPETokenizer(vocab_size={self.vocab_size}, merges={len(self.merges)})"


# ---------------------------------------------------------------------------------------------
# Plumbing, part 2: mixed precision, the progress bar, checkpoints
# (save, load, resume) and the load-or-train helpers of lessons 4–07
# ---------------------------------------------------------------------------------------------


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """Mixed precision: bf16 on GPUs of compute capability 8.0+, fp16 (with a GradScaler) below,
    such as the T4 (where ``is_bf16_supported`` is True but emulated), none on CPU or MPS."""
    if device.type != "cuda":
        return None
    major, _ = torch.cuda.get_device_capability(device)
    return torch.bfloat16 if major >= 8 else torch.float16


def make_progress_bar(total: int, initial: int = 0, disable: bool = False) -> tqdm:
    """A tqdm bar: a widget in notebooks, text in terminals, none with ``GPT05M_PROGRESS=text``
    (then the step lines a caller writes with ``bar.write`` are the progress)."""
    from tqdm.auto import tqdm as auto_tqdm

    return auto_tqdm(
        total=total, initial=initial, disable=disable or TEXT_PROGRESS, unit="step", smoothing=0.05
    )


CHECKPOINT_FORMAT = "gpt-0.5m/1"
CHECKPOINT_KEYS = (
    "format", "model_config", "tokenizer", "model", "optimizer", "train_config", "step",
    "history", "rng", "scaler", "extra",
)


def save_checkpoint(path: Path, model: GPT, tokenizer: CharTokenizer, *,
                    optimizers: Sequence[torch.optim.Optimizer] = (),
                    train_config: TrainConfig | None = None, step: int = 0,
                    history: dict[str, list] | None = None,
                    batch_rng: torch.Generator | None = None,
                    scaler: torch.amp.GradScaler | None = None,
                    extra: dict[str, Any] | None = None) -> None:
    """Write everything needed to use or resume a run, as plain types, via temp file + rename."""
    state = {
        "format": CHECKPOINT_FORMAT,
        "model_config": asdict(model.config),
        "tokenizer": tokenizer.to_dict(),
        "model": model.state_dict(),
        "optimizer": [optimizer.state_dict() for optimizer in optimizers] or None,
        "train_config": asdict(train_config) if train_config is not None else None,
        "step": step,
        "history": history if history is not None else new_history(),
        "rng": {
            "torch": torch.get_rng_state(),
            "batch": batch_rng.get_state() if batch_rng is not None else None,
        },
        "scaler": scaler.state_dict() if scaler is not None and scaler.is_enabled() else None,
        "extra": extra or {},
    }
    write_atomic(Path(path), lambda file: torch.save(state, file))


def load_checkpoint(path: Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Load and validate a checkpoint; raise a clear error if it is missing, damaged or foreign."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No checkpoint at {path}. Run the lesson that trains it first.")
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as error:  # torch raises several types for a cut or corrupt zip
        raise ValueError(
            f"{path} is not a readable checkpoint ({type(error).__name__}: {error}). "
            "It may be truncated by an interrupted copy; delete it and train again."
        ) from error
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a GPT-0.5M checkpoint (expected {CHECKPOINT_FORMAT!r}).")
    advice = "It is damaged or from another version of the code; delete it and train again."
    require_keys(state, CHECKPOINT_KEYS, str(path), advice)
    return state


def check_resumable(state: dict[str, Any], model: GPT, tokenizer: CharTokenizer, cfg: TrainConfig,
                    origin: str = "") -> None:
    """Refuse to resume from a checkpoint of another model, vocabulary, plan or start."""
    problems = []
    if state["extra"].get("origin", "") != origin:
        problems.append(f"it started from {state['extra'].get('origin')!r}, not {origin!r}")
    if state["model_config"] != asdict(model.config):
        problems.append(f"model config {state['model_config']} != {asdict(model.config)}")
    if CharTokenizer.from_dict(state["tokenizer"]) != tokenizer:
        problems.append("the vocabulary differs")
    if state["train_config"] != asdict(cfg):
        problems.append(f"training config {state['train_config']} != {asdict(cfg)}")
    if state["optimizer"] is None:
        problems.append("it has no optimizer state")
    if problems:
        raise ValueError(
            "Cannot resume from this checkpoint: " + "; ".join(problems) + ". Delete it, pass "
            "resume=False, or choose another checkpoint path."
        )


def restore(path: Path, model: GPT, optimizers: Sequence[torch.optim.Optimizer],
            scaler: torch.amp.GradScaler, batch_rng: torch.Generator, ranks: OneProcess,
            **run: Any) -> tuple[int, dict[str, list]]:
    """Load a checkpoint of this very run (``check_resumable(**run)``) into the model, optimizers,
    scaler and random streams; return its step and history."""
    state = load_checkpoint(path, next(model.parameters()).device)
    check_resumable(state, model, **run)
    model.load_state_dict(state["model"])
    for optimizer, saved in zip(optimizers, state["optimizer"], strict=True):
        optimizer.load_state_dict(saved)
    if state["scaler"]:
        scaler.load_state_dict(state["scaler"])
    batch_rng.set_state(state["rng"]["batch"])
    torch.set_rng_state(ranks.rng_state(state))
    return state["step"], state["history"]


def load_model(path: Path,
               device: torch.device | str = "cpu") -> tuple[GPT, CharTokenizer, dict[str, Any]]:
    """Rebuild the model and tokenizer saved in a checkpoint; also return the raw state."""
    state = load_checkpoint(path, device)
    saved, expected = state["model_config"], [f.name for f in fields(GPTConfig)]
    if not isinstance(saved, dict) or sorted(saved) != sorted(expected):
        keys = sorted(saved) if isinstance(saved, dict) else saved
        raise ValueError(f"{path}: its model_config has keys {keys}, expected {expected}.")
    config = GPTConfig(**saved)
    tokenizer = CharTokenizer.from_dict(state["tokenizer"])
    if config.vocab_size != tokenizer.vocab_size:
        raise ValueError(f"{path}: the model and its vocabulary disagree on the vocabulary size.")
    model = GPT(config)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as error:
        raise ValueError(f"{path}: the weights do not fit the saved config ({error}).") from error
    return model.to(device).eval(), tokenizer, state


def stand_in(real: Path, lesson: int, steps: int) -> Path:
    """Say, in a banner that cannot be missed, that lesson ``lesson``'s model is missing and a
    short stand-in of ``steps`` steps is trained (or resumed) now; return the stand-in's path."""
    path = real.with_name(f"{real.stem}_short.pt")
    lines = [
        f"STAND-IN MODEL: no checkpoint {display_path(real)} (lesson {lesson} writes it)",
        f"and no usable released weights {display_path(RELEASED_DIR / real.name)}.",
        f"Training a short stand-in ({steps} steps) into {display_path(path)} instead:",
        "the numbers and samples below will NOT match the text of this lesson.",
    ]
    width = max(map(len, lines))
    print("\n".join(["+" + "-" * (width + 2) + "+", *(f"| {s:<{width}} |" for s in lines),
                     "+" + "-" * (width + 2) + "+"]))
    return path


def load_checked(path: Path, corpus: Corpus,
                 device: torch.device) -> tuple[GPT, CharTokenizer, dict[str, Any]]:
    """``load_model``, refusing a checkpoint whose vocabulary is not the current data's."""
    model, tokenizer, state = load_model(path, device)
    if tokenizer != corpus.tokenizer:
        raise ValueError(
            f"{display_path(path)} was trained with another vocabulary than the current data "
            "builds (the book or the Q&A file changed)."
        )
    return model, tokenizer, state


def load_existing(real: Path, corpus: Corpus,
                  device: torch.device) -> tuple[GPT, CharTokenizer, dict[str, Any]] | None:
    """This machine's checkpoint ``real``, else the released weights of the same name, printing
    one line that says which; ``None`` if neither is there (or the release does not fit)."""
    released = RELEASED_DIR / real.name
    if real.exists():
        try:
            model, tokenizer, state = load_checked(real, corpus, device)
        except ValueError as error:
            raise ValueError(f"{error} Delete it and run lessons 3 and 5 again.") from error
        print(f"model: this machine's checkpoint {display_path(real)} (step {state['step']})")
        return model, tokenizer, {**state, "source": "checkpoint"}
    if released.exists():
        try:
            model, tokenizer, state = load_checked(released, corpus, device)
        except ValueError as error:
            print(f"Not using the released weights: {error}")
            return None
        print(
            f"model: released weights {display_path(released)} "
            "(the series run's model, released with the lessons)"
        )
        return model, tokenizer, {**state, "source": "released"}
    return None


def load_or_pretrain(corpus: Corpus, device: torch.device | None = None,
                     progress: bool = True) -> tuple[GPT, CharTokenizer, dict[str, Any]]:
    """Lesson 3's model: this machine's checkpoint, else the released weights, else a short
    stand-in trained now; ``state["source"]`` says which."""
    device = device or pick_device()
    found = load_existing(BASE_CHECKPOINT, corpus, device)
    if found:
        return found
    path = stand_in(BASE_CHECKPOINT, 3, PRETRAIN_SHORT.max_steps)
    pretrain(corpus, PRETRAIN_SHORT, path, device, progress)
    model, tokenizer, state = load_checked(path, corpus, device)
    print(f"model: stand-in {display_path(path)} ({state['step']} steps, not the real model)")
    return model, tokenizer, {**state, "source": "stand-in"}


def load_or_finetune(corpus: Corpus, device: torch.device | None = None,
                     progress: bool = True) -> tuple[GPT, CharTokenizer, dict[str, Any]]:
    """The fine-tuned model of lesson 5, found as ``load_or_pretrain`` finds the base model (a
    stand-in is fine-tuned from whichever base model that finds)."""
    device = device or pick_device()
    found = load_existing(FINETUNED_CHECKPOINT, corpus, device)
    if found:
        return found
    short = replace(FINETUNE, max_steps=by_mode(full=300, quick=10))
    path = stand_in(FINETUNED_CHECKPOINT, 5, short.max_steps)
    base, _, _ = load_or_pretrain(corpus, device, progress)
    finetune(base, corpus, short, path, progress=progress)
    model, tokenizer, state = load_checked(path, corpus, device)
    print(f"model: stand-in {display_path(path)} ({state['step']} steps, not the real model)")
    return model, tokenizer, {**state, "source": "stand-in"}
