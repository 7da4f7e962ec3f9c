"""Fine-tuning recipes compared on the dev split (carved from the train facts only).

Not collected by pytest (the name does not start with ``test_``). Run from the repository root:

    python tests/qa_recipes.py                       # every recipe, full length
    python tests/qa_recipes.py --only closed open    # some recipes
    python tests/qa_recipes.py --only closed --out tests/qa_dev_check.json  # the plan, re-checked
    python tests/qa_recipes.py --only closed --dev-base --out runs/unread.json  # unread slice
    GPT05M_QUICK=1 python tests/qa_recipes.py --steps 2 --questions 2   # check the code runs

Each recipe fine-tunes the base model of lesson 3 (``checkpoints/full/base.pt``) on the dev
split's ``fit`` records and is scored on ``dev_paraphrase`` (one held-out phrasing of a fitted
fact) and ``dev_unseen`` (facts held out whole), closed-book and open-book (passages retrieved
from the whole book), plus the book loss on a dev slice: the last tenth of the training text.
The recipe ``mixed_pretraining`` instead pretrains from scratch with Q&A steps mixed in (a
quarter of them), for the base model's steps plus the fine-tuning steps (the same total
compute). Results are merged into ``tests/qa_recipes.json`` with the command that produced
them. Never evaluated here: paraphrase, unseen, never_read, the book's validation text.

The book dev slice is read by lesson 3's base model and by replay, so its loss shows forgetting
only in part. ``--dev-base`` makes it unread, as the validation text is in the full run: it
pretrains lesson 3's recipe without the slice (``checkpoints/full/recipes/dev_base.pt``) and
fine-tunes from that base with replay kept off the slice.

The defaults are ``utils.FINETUNE``'s schedule. Runs recorded before it switched to Muon (their
entries have no ``"optimizer"`` key) used AdamW alone, for their ``"steps"``: add ``--optimizer
adamw --steps N`` to repeat one (on today's base model and dropout).
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
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "notebooks"))
import utils

OUT = Path(__file__).with_name("qa_recipes.json")
#: Recipe name -> fine-tuning plan (all on the dev split's ``fit`` records).
RECIPES = {
    "closed": utils.FinetunePlan(mode="closed", dev=True),
    "open": utils.FinetunePlan(mode="open", dev=True),
    "both": utils.FinetunePlan(mode="both", dev=True),
    "both + reading": utils.FinetunePlan(mode="both", dev=True),
    "mixed_pretraining": utils.FinetunePlan(mode="both", dev=True),
}
#: Recipe name -> number of synthetic reading exercises added to its plan's examples.
READING = {"both + reading": 2000}
#: Share of the pretraining steps given to Q&A rows in ``mixed_pretraining``.
MIXED_QA_SHARE = 0.25
#: Where ``--dev-base`` saves its base model, and the origin its checkpoint carries.
DEV_BASE = utils.CHECKPOINT_DIR / "recipes" / "dev_base.pt"
DEV_BASE_ORIGIN = "pretrained without the book's dev slice"
UNREAD = "never read: not in pretraining, not in replay"


def reading_exercises(text: str, n: int, seed: int = 0) -> list[dict]:
    """``n`` synthetic open-book exercises cut from ``text``: a passage, and a cloze question
    quoting it with one word blanked out; the answer is that word."""
    rng, passages, exercises = random.Random(seed), utils.book_windows(text), []
    while len(exercises) < n:
        passage = rng.choice(passages)
        found = re.finditer(r"[A-Za-z]{4,}", passage)
        spots = [m for m in found if 16 <= m.start() < len(passage) - 20]
        if not spots:
            continue
        start, end = (spot := rng.choice(spots)).span()
        clue = " ".join(f"{passage[start - 24 : start]}___{passage[end : end + 24]}".split())
        question = f"Which word is missing in “{clue}”?"
        exercises.append({"question": question, "answer": spot.group().lower(), "passage": passage})
    return exercises


def recipe_examples(corpus: utils.Corpus, name: str) -> list[dict]:
    """The examples recipe ``name`` trains on: its plan's, plus its reading exercises."""
    exercises = reading_exercises(corpus.train_text, READING.get(name, 0))
    return utils.finetune_examples(corpus, RECIPES[name]) + exercises


def with_dev_book(corpus: utils.Corpus, unread: bool = False) -> utils.Corpus:
    """``corpus`` whose ``val`` split is the book's dev slice, the last tenth of the *training*
    text, so that the validation text stays unread. By default replay reads the slice too (and
    lesson 3's base read it); ``unread``: replay reads only the text before it, as the full run's
    replay never reads the validation text."""
    fit_text, dev_text = utils.split_text(corpus.train_text)
    encode = corpus.tokenizer.encode
    splits = {**corpus.splits, "val": torch.tensor(encode(dev_text))}
    if unread:
        splits["train"] = torch.tensor(encode(fit_text))
    return dataclasses.replace(corpus, splits=splits)


def pretrain_dev_base(corpus: utils.Corpus, path: Path) -> utils.GPT:
    """Lesson 3's recipe on the training text before the dev slice only (resumable): a base
    model that, like the full run's for the validation text, never read the slice."""
    unread = with_dev_book(corpus, unread=True)
    model, _ = utils.pretrain(unread, utils.PRETRAIN, path, torch.device("cpu"),
                              progress=not utils.QUICK, origin=DEV_BASE_ORIGIN)
    return model.eval()


def score(model: utils.GPT, corpus: utils.Corpus, n: int) -> dict:
    """Dev scores closed- and open-book (the first ``n`` questions per split), and the book
    dev loss."""
    dev = utils.dev_split(corpus.qa)
    splits = {k: dev[k][:n] for k in ("fit", "dev_paraphrase", "dev_unseen")}
    book_index = utils.Retriever(corpus.book)
    out: dict = {"book_dev_loss": utils.evaluate_text(model, corpus.splits["val"])}
    for mode, retriever in (("closed", None), ("open", book_index)):
        for split, records in splits.items():
            result = utils.evaluate_qa(model, corpus.tokenizer, records, retriever)
            out[f"{mode}/{split}"] = {k: v for k, v in result.items() if k != "rows"}
    return out


def mixed_pretraining(corpus: utils.Corpus, plan: utils.FinetunePlan, steps: int, quick: bool):
    """A fresh model pretrained on book windows, with a share of Q&A steps mixed in."""
    cfg = dataclasses.replace(utils.PRETRAIN, max_steps=utils.PRETRAIN.max_steps + steps)
    torch.manual_seed(cfg.seed)
    model = utils.build_model(corpus.tokenizer)
    examples = utils.finetune_examples(corpus, plan)
    rows = utils.encode_qa(examples, corpus.tokenizer, model.config.block_size)
    get_batch = utils.qa_batches(
        rows, corpus.splits, model.config.block_size, cfg.batch_size, 1 - MIXED_QA_SHARE
    )
    path = utils.CHECKPOINT_DIR / "recipes" / "mixed_pretraining.pt"
    utils.train(
        model, get_batch, cfg, tokenizer=corpus.tokenizer, checkpoint_path=path,
        origin=f"mixed {MIXED_QA_SHARE} {dataclasses.asdict(plan)}", progress=not quick,
    )
    return model.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="*", choices=list(RECIPES), default=list(RECIPES))
    parser.add_argument(
        "--steps", type=int, default=utils.FINETUNE.max_steps, help="fine-tuning steps per recipe"
    )
    parser.add_argument("--optimizer", choices=("adamw", "muon"), default=utils.FINETUNE.optimizer)
    parser.add_argument("--muon-lr", type=float, default=utils.FINETUNE.muon_lr)
    parser.add_argument("--seed", type=int, default=utils.FINETUNE.seed, help="batches, dropout")
    parser.add_argument("--questions", type=int, default=120, help="questions per split")
    parser.add_argument("--base", type=Path, default=utils.BASE_CHECKPOINT, help="base checkpoint")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=OUT, help="JSON file the results merge into")
    parser.add_argument("--label", default=None, help="key of the entry in --out (default: recipe)")
    parser.add_argument(
        "--dev-base", action="store_true",
        help=f"pretrain a base without the book's dev slice to {utils.display_path(DEV_BASE)}, "
        "and fine-tune from it with replay kept off the slice (the slice stays unread)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    corpus = utils.load_corpus()
    if args.dev_base:
        args.base = DEV_BASE
        pretrain_dev_base(corpus, DEV_BASE)
    base, tokenizer, base_state = utils.load_model(args.base)
    assert tokenizer == corpus.tokenizer, "the base checkpoint has another vocabulary"
    origin = base_state["extra"].get("origin", "")
    unread = origin == DEV_BASE_ORIGIN
    cfg = dataclasses.replace(
        utils.FINETUNE,
        max_steps=args.steps,
        optimizer=args.optimizer,
        muon_lr=args.muon_lr,
        seed=args.seed,
        warmup_steps=min(utils.FINETUNE.warmup_steps, args.steps // 10),
        eval_interval=max(1, args.steps // 2),
    )
    corpus = with_dev_book(corpus, unread)  # scores and fine-tuning curves: never the val text
    base_dev_loss = utils.evaluate_text(base, corpus.splits["val"])
    for name in args.only:
        plan, start = RECIPES[name], time.perf_counter()
        if name == "mixed_pretraining":
            model = mixed_pretraining(corpus, plan, args.steps, utils.QUICK)
        else:
            examples = recipe_examples(corpus, name)
            model, _ = utils.finetune(base, corpus, cfg, None, plan, False, examples)
        seconds = round(time.perf_counter() - start)
        entry = {
            "command": shlex.join(["python", "tests/qa_recipes.py", *sys.argv[1:]]),
            "qa_sha256": hashlib.sha256(utils.QA_PATH.read_bytes()).hexdigest()[:16],
            "base": f"{args.base.name} at step {base_state['step']}",
            **({"book_dev_slice": UNREAD} if unread else {}),
            "base_book_dev_loss": base_dev_loss,
            "plan": {**dataclasses.asdict(plan), "reading": READING.get(name, 0)},
            "steps": args.steps,
            "optimizer": {"name": args.optimizer, "lr": cfg.lr, "muon_lr": cfg.muon_lr},
            "seed": args.seed,
            "train_seconds": seconds,
            **score(model, corpus, args.questions),
        }
        print(name, json.dumps({k: v for k, v in entry.items() if k != "plan"}), flush=True)
        if not utils.QUICK:  # re-read: another process may have added recipes meanwhile
            results = json.loads(args.out.read_text()) if args.out.exists() else {}
            key = args.label or name
            utils.write_text_atomic(args.out, json.dumps({**results, key: entry}, indent=1) + "\n")


if __name__ == "__main__":
    main()
