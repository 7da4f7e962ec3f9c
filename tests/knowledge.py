"""Knowledge augmentation, tested on the dev split: does pretraining on several rewrites of each
fact (Allen-Zhu & Li, *Physics of Language Models 3.1*) make facts extractable that fine-tuning
never quizzed?

Not collected by pytest (the name does not start with ``test_``). Run from the repository root:

    python tests/knowledge.py                        # every arm, full length (about an hour)
    GPT05M_QUICK=1 python tests/knowledge.py --steps 2 --questions 2   # check the code runs

Three arms, each a base model then fine-tuned with lesson 5's recipe (the dev split's ``fit``
facts only, as ``tests/qa_recipes.py`` does); the two with statements are pretrained from scratch
with lesson 3's recipe:

- ``book``: the book's training text alone: lesson 3's base model, loaded from ``--base``, not
  trained again (pretrained from scratch only with ``--steps``);
- ``book + statements``: the same steps over the training text followed by
  ``data/alice_statements.jsonl`` (six statements of every train and unseen fact, written from
  its evidence; the check asks for at least five), shuffled so that one fact's statements never
  share a window; fine-tuning replays this same text;
- ``book + statements + Q&A``: the same, with a quarter of the pretraining steps spent on the
  ``fit`` Q&A rows (Q&A "mixed into pretraining").

The rule, fixed before the runs: an arm with statements pays if its dev-paraphrase or
dev-unseen exact match beats ``book``'s by more than two standard errors of the difference,
with its book dev loss after fine-tuning at most 0.05 above ``book``'s. Each is scored on dev
only: ``dev_paraphrase``, ``dev_unseen`` (train facts held out whole: their
statements were read, their questions never trained) and the book's dev slice, the last tenth of
the training text. Never evaluated here: paraphrase, unseen, never_read, reversal, the validation
text. Results go to ``tests/knowledge_cpu.json`` with the command that produced them.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import random
import re
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "notebooks"))
import qa_recipes
import utils

STATEMENTS_PATH = utils.DATA_DIR / "alice_statements.jsonl"
OUT = Path(__file__).with_name("knowledge_cpu.json")
#: At least this many statements of every train and unseen fact.
MIN_STATEMENTS = 5
#: No statement shares a run of this many words with a held-out question.
RUN_WORDS = 6
HELD_OUT = ("paraphrase", "unseen", "never_read", "reversal")


def load_statements(path: Path = STATEMENTS_PATH) -> list[dict[str, str]]:
    """The statements file: one ``{"fact": ..., "statement": ...}`` object per line."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    for i, row in enumerate(rows):
        utils.require_keys(row, ("fact", "statement"), f"{path.name} line {i + 1}")
    return rows


def word_runs(text: str, n: int = RUN_WORDS) -> set[tuple[str, ...]]:
    """Every run of ``n`` consecutive words of ``text`` (lower case, letters and digits)."""
    found = re.findall(r"[a-z0-9]+", text.lower())
    return {tuple(found[i : i + n]) for i in range(len(found) - n + 1)}


def statement_problems(
    statements: Sequence[dict[str, str]],
    records: Sequence[dict[str, Any]],
    tokenizer: utils.CharTokenizer,
    facts: set[str] | None = None,
) -> list[str]:
    """What is wrong with ``statements`` (empty if nothing): facts unknown or never read, too
    few statements per fact (of ``facts``, default every train and unseen fact), an answer not
    stated, a character outside the vocabulary, a repeat, a run of words shared with a question
    (a held-out one is never shown)."""
    by_fact = {r["fact"]: r for r in records if r["split"] in ("train", "unseen")}
    allowed = set(by_fact)
    facts = allowed if facts is None else facts
    held_runs = set().union(*(word_runs(r["question"]) for r in records if r["split"] in HELD_OUT))
    train_runs = set().union(*(word_runs(r["question"]) for r in records if r["split"] == "train"))
    problems, seen, count = [], set(), {f: 0 for f in facts}
    for row in statements:
        fact, text = row["fact"], row["statement"]
        if fact not in allowed:
            problems.append(f"{fact!r}: not a train or unseen fact")
            continue
        count[fact] = count.get(fact, 0) + 1
        gold = utils.normalize_answer(by_fact[fact]["answer"])
        if gold not in utils.normalize_answer(text):
            problems.append(
                f"{fact!r}: does not state the answer {by_fact[fact]['answer']!r}: {text!r}"
            )
        try:
            tokenizer.encode(text)
        except ValueError as error:
            problems.append(f"{fact!r}: {str(error).split('.')[0]}: {text!r}")
        if text in seen:
            problems.append(f"{fact!r}: repeated: {text!r}")
        seen.add(text)
        if word_runs(text) & held_runs:
            problems.append(
                f"{fact!r}: shares a run of {RUN_WORDS} words with a held-out question: {text!r}"
            )
        elif word_runs(text) & train_runs - word_runs(by_fact[fact]["answer"]):  # dev questions
            problems.append(
                f"{fact!r}: shares a run of {RUN_WORDS} words with a train question: {text!r}"
            )
    problems += [f"{f!r}: {n} statements, fewer than {MIN_STATEMENTS}"
                 for f, n in count.items() if f in facts and n < MIN_STATEMENTS]
    return problems


def statements_text(statements: Sequence[dict[str, str]], gap: int, seed: int = 0) -> str:
    """The statements shuffled into one text, one per line, so that two statements of a fact are
    always more than ``gap`` characters apart (never in one training window): each line is a
    random statement of the fact, among those not used within ``gap``, with most left."""
    rng, left = random.Random(seed), {}
    for row in statements:
        left.setdefault(row["fact"], []).append(row["statement"])
    for texts in left.values():
        rng.shuffle(texts)
    order = list(left)
    rng.shuffle(order)
    lines: list[tuple[str, str]] = []
    while any(left.values()):
        recent = facts_within(lines, gap)
        ready = [f for f in order if left[f] and f not in recent]
        if not ready:
            raise ValueError(f"cannot keep every fact's statements {gap} characters apart")
        fact = max(ready, key=lambda f: len(left[f]))
        lines.append((fact, left[fact].pop()))
    return "\n".join(text for _, text in lines) + "\n"


def facts_within(lines: Sequence[tuple[str, str]], gap: int) -> set[str]:
    """The facts of the lines that end within ``gap`` characters of the end of ``lines``."""
    facts, length = set(), 0
    for fact, text in reversed(lines):
        if length > gap:
            break
        facts.add(fact)
        length += len(text) + 1
    return facts


#: Arm name -> (statements in pretraining, share of pretraining steps spent on Q&A rows).
ARMS = {
    "book": (False, 0.0),
    "book + statements": (True, 0.0),
    "book + statements + Q&A": (True, 0.25),
}


def with_statements(corpus: utils.Corpus, statements: Sequence[dict[str, str]]) -> utils.Corpus:
    """``corpus`` whose training ids are the training text followed by the shuffled statements
    (the dev and validation slices, and ``train_text`` itself, stay the book's)."""
    text = (
        corpus.train_text + "\n\n" + statements_text(statements, gap=utils.GPTConfig.block_size + 1)
    )
    ids = torch.tensor(corpus.tokenizer.encode(text), dtype=torch.long)
    return dataclasses.replace(corpus, splits={**corpus.splits, "train": ids})


def pretrain_arm(corpus: utils.Corpus, name: str, qa_share: float, plan: utils.FinetunePlan,
                 cfg: utils.TrainConfig, origin: str) -> utils.GPT:
    """A fresh model pretrained with ``cfg`` on ``corpus``'s training ids, with a share
    ``qa_share`` of the steps on ``plan``'s Q&A rows (resumed from its checkpoint if any)."""
    torch.manual_seed(cfg.seed)
    model = utils.build_model(corpus.tokenizer)
    block = model.config.block_size
    if qa_share:
        rows = utils.encode_qa(utils.finetune_examples(corpus, plan), corpus.tokenizer, block)
        get_batch = utils.qa_batches(rows, corpus.splits, block, cfg.batch_size, 1 - qa_share)
    else:
        get_batch = utils.book_batches(corpus.splits, block, cfg.batch_size)
    path = utils.CHECKPOINT_DIR / "knowledge" / f"{re.sub(r'[^a-z]+', '_', name)}.pt"
    utils.train(model, get_batch, cfg, tokenizer=corpus.tokenizer, checkpoint_path=path,
                origin=origin, progress=not utils.QUICK)
    return model.eval()


def score(model: utils.GPT, corpus: utils.Corpus, n: int) -> dict:
    """Closed-book dev scores (the first ``n`` questions per split) and the book dev loss."""
    dev = utils.dev_split(corpus.qa)
    out: dict = {"book_dev_loss": utils.evaluate_text(model, corpus.splits["val"])}
    for split in ("fit", "dev_paraphrase", "dev_unseen"):
        result = utils.evaluate_qa(model, corpus.tokenizer, dev[split][:n])
        out[split] = {k: v for k, v in result.items() if k != "rows"}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="*", choices=list(ARMS), default=list(ARMS))
    parser.add_argument("--steps", type=int, default=None, help="pretraining and fine-tuning "
                        "steps (default: lesson 3's and lesson 5's)")
    parser.add_argument("--questions", type=int, default=120, help="questions per dev split")
    parser.add_argument("--base", type=Path, default=utils.BASE_CHECKPOINT,
                        help="lesson 3's base model, the 'book' arm's pretraining")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=OUT, help="JSON file the results merge into")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    corpus = qa_recipes.with_dev_book(utils.load_corpus())  # never the validation text
    statements = load_statements()
    if any(ARMS[name][0] for name in args.only):
        problems = statement_problems(statements, corpus.qa, corpus.tokenizer)
        assert not problems, "\n".join(problems)
    short = {} if args.steps is None else {"max_steps": args.steps, "warmup_steps": 1,
                                           "eval_interval": max(1, args.steps)}
    pre_cfg = dataclasses.replace(utils.PRETRAIN, **short)
    fine_cfg = dataclasses.replace(utils.FINETUNE, **short)
    plan = dataclasses.replace(utils.FINETUNE_PLAN, dev=True)
    digest = hashlib.sha256(STATEMENTS_PATH.read_bytes()).hexdigest()[:16]
    for name in args.only:
        with_text, qa_share = ARMS[name]
        arm_corpus = with_statements(corpus, statements) if with_text else corpus
        start = time.perf_counter()
        if name == "book" and args.steps is None:
            base, tokenizer, state = utils.load_model(args.base)
            assert tokenizer == corpus.tokenizer, "the base checkpoint has another vocabulary"
            assert state["step"] == pre_cfg.max_steps, "the base model is not lesson 3's full run"
        else:
            origin = f"knowledge {name} {digest} {qa_share} {dataclasses.asdict(plan)}"
            base = pretrain_arm(arm_corpus, name, qa_share, plan, pre_cfg, origin)
        pretrain_seconds = round(time.perf_counter() - start)
        base_scores = {"book_dev_loss": utils.evaluate_text(base, corpus.splits["val"])}
        start = time.perf_counter()
        model, _ = utils.finetune(base, arm_corpus, fine_cfg, None, plan, progress=False)
        entry = {
            "command": shlex.join(["python", "tests/knowledge.py", *sys.argv[1:]]),
            "statements_sha256": digest if with_text else None,
            "qa_sha256": hashlib.sha256(utils.QA_PATH.read_bytes()).hexdigest()[:16],
            "pretraining": {
                "steps": pre_cfg.max_steps,
                "qa_share": qa_share,
                "statements": len(statements) if with_text else 0,
                "train_chars": len(arm_corpus.splits["train"]),
                "seconds": pretrain_seconds,
                **base_scores,
            },
            "finetuning_steps": fine_cfg.max_steps,
            "finetuning_optimizer": fine_cfg.optimizer,
            "finetuning_seconds": round(time.perf_counter() - start),
            **score(model, corpus, args.questions),
        }
        print(name, json.dumps(entry), flush=True)
        if not utils.QUICK:  # re-read: another process may have added arms meanwhile
            results = json.loads(args.out.read_text()) if args.out.exists() else {}
            utils.write_text_atomic(args.out, json.dumps({**results, name: entry}, indent=1) + "\n")


if __name__ == "__main__":
    main()
