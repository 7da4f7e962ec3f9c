"""The speed-up ladder of lesson 7: each training trick measured on a dev slice, kept if it pays.

Every run trains a fresh GPT-0.5M on the first 90% of the *training* text for the same number of
steps, and is graded on the last 10% of it (the dev slice): the validation text is never read.
Quality is counted in steps, which a busy machine cannot change; time per step is measured
separately, at the end, for every recipe in interleaved rounds on one thread
(``time.thread_time``), so that a time is steps x seconds per step.

Rungs, in order; each starts from the winner of the one before:

0. today's recipe: AdamW, warm-up + cosine, lr 2e-3, dropout 0.15, weight decay 0.1;
1. a warm-up/stable/decay schedule, with AdamW's learning rate chosen from a grid;
2. Muon on the blocks' matrices (AdamW on embeddings, norms, biases), its lr from a grid;
3. regularisation retuned for a small book read many times (dropout, weight decay);
4. an architecture bundle: rotary positions, QK-norm, ReLU², zero-initialised projections;
5. ``torch.compile`` of the winner (speed only: the same maths, timed per step).

Each candidate is run with seed 0; the winner (lowest dev loss) is re-run with seed 1, and a
rung is kept only if its gain over the rung before is larger than the seed spread of either.
Two worker processes share the queue. Not collected by pytest (no test_ prefix).

    python tests/ladder.py                  # the ladder (about 40 min on 2 cores)
    python tests/ladder.py --original       # + the original notebook's recipe and the ceiling
    python tests/ladder.py --confirm 1300   # + the winner's regularisation at the full length
    python tests/ladder.py --tune 1300      # + the schedule's decay and dropout at that length
    python tests/ladder.py --rescore        # recompute targets and times from the records
    GPT05M_QUICK=1 python tests/ladder.py --steps 4 --out runs/ladder.json   # check it runs
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import math
import multiprocessing as mp
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "notebooks"))
import utils
from benchmark import ORIGINAL_BLOCK, ORIGINAL_RECIPE, OriginalGPT, cpu_name

OUT = Path(__file__).with_name("ladder_cpu.json")
#: Today's recipe (lesson 3 before the ladder): AdamW, cosine, dropout 0.15.
BASELINE = {
    "optimizer": "adamw",
    "schedule": "cosine",
    "lr": 2e-3,
    "dropout": 0.15,
    "weight_decay": 0.1,
    "arch": "gpt",
    "compile": False,
}
#: (rung name, what it changes, candidate settings tried on top of the previous winner).
RUNGS = [
    ("today's recipe", "AdamW, warm-up + cosine", [{}]),
    (
        "warm-up/stable/decay",
        "schedule, AdamW lr",
        [{"schedule": "wsd", "lr": lr} for lr in (2e-3, 4e-3, 8e-3)],
    ),
    (
        "Muon",
        "Muon on the blocks' matrices, its lr",
        [{"optimizer": "muon", "muon_lr": lr} for lr in (0.01, 0.02, 0.04)],
    ),
    (
        "regularisation",
        "dropout, weight decay",
        [{"dropout": 0.05}, {"dropout": 0.1}, {"dropout": 0.1, "weight_decay": 0.3}],
    ),
    ("architecture", "RoPE, QK-norm, ReLU², zero-init projections", [{"arch": "modern"}]),
]
#: The full-length rung (``--tune``): settings tried on top of the recipe at its own length,
#: where the book is read about 40 times (the 500-step rungs read it about 15 times).
FULL_LENGTH = [
    {"decay_fraction": 0.5},
    {"decay_fraction": 1.0},
    {"dropout": 0.25},
    {"dropout": 0.25, "decay_fraction": 0.5},
]
EVAL_EVERY = 50  # steps between dev-loss estimates
EVAL_BATCHES = 8  # fixed-seed batches per estimate


# ---------------------------------------------------------------------------------------------
# The architecture rung: what modded-nanogpt uses, on top of utils.GPT
# ---------------------------------------------------------------------------------------------


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotary position embedding: rotate each pair of channels by a position-dependent angle."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


class ModernAttention(utils.CausalSelfAttention):
    """Causal attention with RMS-normalised queries and keys (QK-norm) and rotary positions."""

    def __init__(self, config: utils.GPTConfig) -> None:
        super().__init__(config)
        head = config.n_embd // config.n_head
        freq = 1.0 / 10000 ** (torch.arange(0, head, 2) / head)
        angle = torch.arange(config.block_size)[:, None] * freq  # (T, head / 2)
        self.register_buffer("cos", angle.cos(), persistent=False)
        self.register_buffer("sin", angle.sin(), persistent=False)

    def forward(self, x: torch.Tensor, cache=None):
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        q, k = (F.rms_norm(t, (t.size(-1),)) for t in (q, k))
        q, k = (rotate(t, self.cos[:T], self.sin[:T]) for t in (q, k))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.dropout(self.proj(y.transpose(1, 2).reshape(B, T, C))), (k, v)


class ReluSquaredMLP(utils.MLP):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.proj(F.relu(self.fc(x)).square()))


class ModernGPT(utils.GPT):
    """utils.GPT with the modern attention and MLP, no position embedding, zero projections."""

    def __init__(self, config: utils.GPTConfig) -> None:
        super().__init__(config)
        for block in self.blocks:
            block.attn, block.mlp = ModernAttention(config), ReluSquaredMLP(config)
        self.apply(self._init_weights)
        for name, param in self.named_parameters():
            if name.endswith("proj.weight"):
                nn.init.zeros_(param)
        del self.pos_emb

    def forward(self, idx, targets=None, cache=None):
        x = self.drop(self.tok_emb(idx))
        for block in self.blocks:
            x, _ = block(x)
        logits = self.head(self.ln_f(x))
        if targets is None:
            return logits, None
        return logits, F.cross_entropy(logits.float().flatten(0, 1), targets.flatten())


# ---------------------------------------------------------------------------------------------
# One run
# ---------------------------------------------------------------------------------------------


def dev_data() -> tuple[utils.Corpus, dict[str, torch.Tensor]]:
    """The corpus, and its training text cut into a fit part (90%) and a dev slice (10%)."""
    corpus = utils.load_corpus()
    fit_text, dev_text = utils.split_text(corpus.train_text)
    encode = corpus.tokenizer.encode
    return corpus, {"train": torch.tensor(encode(fit_text)), "val": torch.tensor(encode(dev_text))}


def build(settings: dict, vocab_size: int) -> nn.Module:
    config = utils.GPTConfig(vocab_size=vocab_size, dropout=settings["dropout"])
    return (ModernGPT if settings["arch"] == "modern" else utils.GPT)(config)


def plan(settings: dict, steps: int) -> utils.TrainConfig:
    """Lesson 3's recipe with ``settings``, fitted to ``steps`` (warm-up: 200 of 3,000)."""
    fields = {f.name for f in dataclasses.fields(utils.TrainConfig)}
    chosen = {k: v for k, v in settings.items() if k in fields}
    return utils.TrainConfig(
        **{
            **chosen,
            "max_steps": steps,
            "warmup_steps": max(1, round(steps / 15)),
            "eval_interval": EVAL_EVERY,
            "eval_iters": EVAL_BATCHES,
        }
    )


def run(job: tuple[dict, int, int]) -> dict:
    """Train one candidate with one seed for ``steps`` steps; return its dev curve and loss."""
    settings, seed, steps = job
    torch.set_num_threads(1)
    corpus, splits = dev_data()
    cfg = dataclasses.replace(plan(settings, steps), seed=seed)
    torch.manual_seed(seed)
    model = build(settings, corpus.tokenizer.vocab_size)
    get_batch = utils.book_batches(splits, 256, cfg.batch_size)
    history = utils.train(
        model, get_batch, cfg, tokenizer=corpus.tokenizer, eval_splits=("val",), progress=False
    )
    return {
        "settings": settings,
        "seed": seed,
        "steps": steps,
        "curve": {"step": history["step"], "dev": history["losses"]["val"]},
        "dev_loss": utils.evaluate_text(model, splits["val"]),
    }


def steps_to(curve: dict, target: float) -> float | None:
    """Steps until the dev estimate first reaches ``target`` (linear between estimates)."""
    points = list(zip(curve["step"], curve["dev"], strict=True))
    for (s0, l0), (s1, l1) in itertools.pairwise([(0, math.inf), *points]):
        if l1 <= target:
            return s1 if not math.isfinite(l0) else s0 + (s1 - s0) * (l0 - target) / (l0 - l1)
    return None


def step_timings(
    recipes: dict[str, dict], rounds: int, steps: int, original: bool = False
) -> dict[str, dict]:
    """CPU seconds of this thread per training step of each recipe (and, with ``original``, of
    the original notebook's): ``rounds`` interleaved rounds (A, B, C, A, B, C, ...) of ``steps``
    steps after three untimed ones; the median and the rounds' spread (a share of the median)."""
    torch.set_num_threads(1)
    corpus, splits = dev_data()
    ours = utils.book_batches(splits, 256, 16)
    state = {}
    for name, settings in recipes.items():
        torch.manual_seed(0)
        model = build(settings, corpus.tokenizer.vocab_size)
        model = torch.compile(model) if settings["compile"] else model
        cfg = plan(settings, 10_000)
        state[name] = (model, cfg, utils.make_optimizer(model, cfg, torch.device("cpu")), ours)
    if original:
        model = OriginalGPT(original_config(corpus))
        cfg = dataclasses.replace(ORIGINAL_RECIPE, max_steps=10_000)
        theirs = utils.book_batches(splits, ORIGINAL_BLOCK, cfg.batch_size)
        state["original"] = (
            model,
            cfg,
            utils.make_optimizer(model, cfg, torch.device("cpu")),
            theirs,
        )
    rng, scaler = torch.Generator().manual_seed(0), torch.amp.GradScaler("cpu", enabled=False)
    times: dict[str, list[float]] = {name: [] for name in state}
    for round_ in range(rounds + 1):
        for name, (model, cfg, optimizers, get_batch) in state.items():
            start = time.thread_time()
            for _ in range(steps if round_ else 3):  # round 0: untimed warm-up (and compile)
                x, y = get_batch("train", rng)
                _, loss = model(x, y)
                utils.optimizer_step(model, optimizers, scaler, loss, cfg.grad_clip)
            if round_:
                times[name].append((time.thread_time() - start) / steps)
    return {
        name: {"median": statistics.median(t), "spread": (max(t) - min(t)) / statistics.median(t)}
        for name, t in times.items()
    }


def original_config(corpus: utils.Corpus) -> utils.GPTConfig:
    """The original notebook's model shape: ours without dropout, at its 128-character context."""
    return utils.GPTConfig(
        vocab_size=corpus.tokenizer.vocab_size, dropout=0.0, block_size=ORIGINAL_BLOCK
    )


# ---------------------------------------------------------------------------------------------
# The ladder
# ---------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=500, help="training steps per run")
    parser.add_argument("--workers", type=int, default=2, help="processes of one thread each")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument(
        "--original",
        action="store_true",
        help="add the original notebook's recipe and the FLOP ceiling to --out",
    )
    parser.add_argument(
        "--rescore",
        action="store_true",
        help="recompute --out's targets and times from its recorded curves and timings (no runs)",
    )
    parser.add_argument(
        "--confirm",
        type=int,
        default=None,
        metavar="STEPS",
        help="add to --out: the winner at STEPS steps, with today's dropout too",
    )
    parser.add_argument(
        "--tune",
        type=int,
        default=None,
        metavar="STEPS",
        help="add to --out: the full-length rung, FULL_LENGTH's settings on the recipe at STEPS",
    )
    args = parser.parse_args()
    if args.tune:
        tune(args)
        return
    if args.rescore:
        record = json.loads(args.out.read_text())
        add_times(record, record["timings"])
        record["rescored_by"] = "python tests/ladder.py --rescore"
        utils.write_text_atomic(args.out, json.dumps(record, indent=1))
        return
    if args.confirm:
        confirm(args)
        return
    if args.original:
        add_original(args)
        return
    pool = mp.get_context("spawn").Pool(args.workers)
    first = pool.map(run, [(BASELINE, seed, args.steps) for seed in (0, 1)])
    rungs = [
        {
            "name": RUNGS[0][0],
            "changes": RUNGS[0][1],
            "candidates": first[:1],
            "seed0": first[0],
            "seed1": first[1],
        }
    ]
    best, pending = first[0], None
    for name, changes, candidates in RUNGS[1:]:
        jobs = [({**best["settings"], **c}, 0, args.steps) for c in candidates]
        results = pool.map(run, jobs)
        if pending is not None:  # the previous winner's second seed ran alongside
            rungs[-1]["seed1"] = pending.get()
        winner = min(results, key=lambda r: r["dev_loss"])
        print(
            f"{name}: "
            + ", ".join(f"{r['dev_loss']:.4f}" for r in results)
            + f" (before: {best['dev_loss']:.4f})",
            flush=True,
        )
        rungs.append({"name": name, "changes": changes, "candidates": results, "seed0": winner})
        if winner["dev_loss"] < best["dev_loss"]:
            best, pending = winner, pool.apply_async(run, ((winner["settings"], 1, args.steps),))
        else:  # no candidate beat the rung before on seed 0: nothing to confirm
            rungs[-1]["seed1"], pending = None, None
    if pending is not None:
        rungs[-1]["seed1"] = pending.get()
    pool.close()
    recipes = {r["name"]: r["seed0"]["settings"] for r in rungs if r["seed1"] is not None}
    recipes["torch.compile"] = {**best["settings"], "compile": True}
    timings = step_timings(recipes, args.rounds, steps=utils.by_mode(full=10, quick=1))
    record = summarise(rungs, args, timings)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1))
    print(json.dumps({k: v for k, v in record.items() if k != "rungs"}, indent=1))


def two_seeds(seed0: dict, seed1: dict) -> dict:
    """The mean dev loss of two runs of one setting and their spread (the noise of a rung)."""
    return {"dev_loss_mean": (seed0["dev_loss"] + seed1["dev_loss"]) / 2,
            "seed_spread": abs(seed0["dev_loss"] - seed1["dev_loss"])}


def summarise(rungs: list[dict], args: argparse.Namespace, timings: dict) -> dict:
    """Each rung's mean dev loss over two seeds and its spread; kept if its gain over the last
    kept rung beats the larger of their seed spreads; then the times (``add_times``)."""
    kept, previous = [], None
    for rung in rungs:
        if rung["seed1"] is None:  # lost to the rung before on seed 0
            rung["kept"] = False
            continue
        rung.update(two_seeds(rung["seed0"], rung["seed1"]))
        if previous is None:
            rung["kept"] = True
        else:
            gain = previous["dev_loss_mean"] - rung["dev_loss_mean"]
            noise = max(previous["seed_spread"], rung["seed_spread"])
            rung["gain"], rung["noise"], rung["kept"] = gain, noise, gain > noise
            rung["loss_ratio"] = rung["dev_loss_mean"] / previous["dev_loss_mean"]
        if rung["kept"]:
            previous = rung
            kept.append(rung["name"])
    record = {
        "command": "python tests/ladder.py" + "".join(f" {a}" for a in sys.argv[1:]),
        "hardware": {"cpu": cpu_name(), "threads_per_run": 1, "torch": torch.__version__},
        "steps_per_run": args.steps,
        "dev": "last 10% of the training text; the validation text is never read",
        "rungs": rungs,
        "kept": kept,
        "winner": previous["seed0"]["settings"],
    }
    add_times(record, timings)
    return record


def add_times(record: dict, timings: dict) -> None:
    """The target (today's best dev estimate, the worse of its two seeds, so both reach it);
    each rung's steps and CPU seconds to reach it, and ratios from one kept rung to the next."""
    today = record["rungs"][0]
    target = max(min(today[k]["curve"]["dev"]) for k in ("seed0", "seed1"))
    record["target_dev_loss"] = target
    record["target"] = "today's best dev estimate, the worse of two seeds (both reach it)"
    for rung in record["rungs"]:
        if rung["seed1"] is None:
            continue
        steps = [steps_to(rung[k]["curve"], target) for k in ("seed0", "seed1")]
        rung["seed_steps_to_target"] = steps  # seed 0, seed 1: how much the seeds disagree
        rung["seconds_per_step"] = timings[rung["name"]]["median"]
        rung["steps_to_target"] = None if None in steps else sum(steps) / 2
        reach = rung["steps_to_target"]
        rung["seconds_to_target"] = reach * rung["seconds_per_step"] if reach else None
    kept = [rung for rung in record["rungs"] if rung["kept"]]
    for rung in record["rungs"]:
        rung.pop("time_ratio", None)
    for before, rung in itertools.pairwise(kept):
        if rung["seconds_to_target"] and before["seconds_to_target"]:
            rung["time_ratio"] = rung["seconds_to_target"] / before["seconds_to_target"]
    eager, compiled = timings[kept[-1]["name"]], timings["torch.compile"]
    record["timings"] = timings
    record["compile"] = {
        "speedup": eager["median"] / compiled["median"],
        "noise": max(eager["spread"], compiled["spread"]),
    }


def confirm(args: argparse.Namespace) -> None:
    """The winner trained at the full recipe's length, beside the same with today's dropout and
    weight decay: a regularisation chosen on short runs must still win when the book is read
    many more times."""
    record = json.loads(args.out.read_text())
    winner = record["winner"]
    variants = [
        winner,
        {**winner, "dropout": BASELINE["dropout"], "weight_decay": BASELINE["weight_decay"]},
    ]
    with mp.get_context("spawn").Pool(args.workers) as pool:
        runs = pool.map(run, [(v, 0, args.confirm) for v in variants])
    noise = max(r["seed_spread"] for r in record["rungs"] if r.get("seed_spread") is not None)
    gain = runs[1]["dev_loss"] - runs[0]["dev_loss"]
    record["confirmation"] = {
        "steps": args.confirm,
        "runs": runs,
        "gain": gain,
        "noise": noise,
        "holds": gain > -noise,
    }
    # the recipe the lessons use: the winner, unless its regularisation lost at full length
    record["recipe"] = runs[0]["settings"] if gain > -noise else runs[1]["settings"]
    record["command"] += f" && python tests/ladder.py --confirm {args.confirm}"
    args.out.write_text(json.dumps(record, indent=1))
    print(json.dumps({k: v for k, v in record["confirmation"].items() if k != "runs"}))
    print([r["dev_loss"] for r in runs])


def tune(args: argparse.Namespace) -> None:
    """The full-length rung: each of ``FULL_LENGTH``'s settings on top of the recipe, trained for
    the recipe's own length with seed 0; the best and the recipe again with seed 1."""
    record = json.loads(args.out.read_text())
    recipe = record["recipe"]
    jobs = [({**recipe, **change}, 0, args.tune) for change in FULL_LENGTH]
    with mp.get_context("spawn").Pool(args.workers) as pool:
        results = pool.map(run, [(recipe, 0, args.tune), *jobs, (recipe, 1, args.tune)])
        tried = results[1:-1]
        best = min(tried, key=lambda r: r["dev_loss"])
        best_seed1 = pool.apply(run, ((best["settings"], 1, args.tune),))
    record["full_length"] = full_length_rung(
        args.tune, (results[0], results[-1]), tried, (best, best_seed1)
    )
    if record["full_length"]["kept"]:
        record["recipe"] = best["settings"]
    record["command"] += f" && python tests/ladder.py --tune {args.tune}"
    args.out.write_text(json.dumps(record, indent=1))
    print(json.dumps({k: v for k, v in record["full_length"].items() if k != "candidates"})[:600])


def full_length_rung(steps: int, recipe: tuple[dict, dict], tried: list[dict],
                     best: tuple[dict, dict]) -> dict:
    """The rung's record: the recipe's and the best candidate's runs (seed 0, seed 1), their
    means and spreads; kept only if the best's gain beats the larger seed spread."""
    pair = {name: {"seed0": seed0, "seed1": seed1, **two_seeds(seed0, seed1)}
            for name, (seed0, seed1) in (("recipe", recipe), ("winner", best))}
    gain = pair["recipe"]["dev_loss_mean"] - pair["winner"]["dev_loss_mean"]
    noise = max(pair["recipe"]["seed_spread"], pair["winner"]["seed_spread"])
    return {"steps": steps, **pair, "candidates": tried, "gain": gain, "noise": noise,
            "kept": gain > noise}


def matmul_peak_cpu_seconds(n: int = 2048, repeats: int = 10) -> float:
    """GFLOP/s of a large fp32 matmul on this thread's CPU time: the practical one-thread peak."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    start = time.thread_time()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.thread_time() - start) / 1e9


def add_original(args: argparse.Namespace) -> None:
    """The original notebook's recipe on the same dev slice, for twice the steps (its own 32 x
    128 shape, graded on windows of its own context); every recipe timed again beside it, in
    the same interleaved rounds; and the one-thread matmul peak for the ceiling."""
    torch.set_num_threads(1)
    record = json.loads(args.out.read_text())
    corpus, splits = dev_data()
    steps = 2 * record["steps_per_run"]
    cfg = dataclasses.replace(
        ORIGINAL_RECIPE, max_steps=steps, eval_interval=EVAL_EVERY, eval_iters=EVAL_BATCHES
    )
    torch.manual_seed(cfg.seed)
    get_batch = utils.book_batches(splits, ORIGINAL_BLOCK, cfg.batch_size)
    model = OriginalGPT(original_config(corpus))
    history = utils.train(
        model, get_batch, cfg, tokenizer=corpus.tokenizer, eval_splits=("val",), progress=False
    )
    curve = {"step": history["step"], "dev": history["losses"]["val"]}
    recipes = {r["name"]: r["seed0"]["settings"] for r in record["rungs"] if r["seed1"]}
    recipes["torch.compile"] = {**record["winner"], "compile": True}
    timings = step_timings(recipes, args.rounds, utils.by_mode(full=10, quick=1), original=True)
    add_times(record, timings)
    reach = steps_to(curve, record["target_dev_loss"])
    per_step = timings["original"]["median"]
    record["original"] = {
        "steps": steps,
        "curve": curve,
        "seconds_per_step": per_step,
        "seconds_to_target": reach * per_step if reach else None,
        "best_dev_estimate": min(curve["dev"]),
    }
    winner = utils.GPTConfig(vocab_size=corpus.tokenizer.vocab_size)
    record["ceiling"] = {
        "matmul_peak_gflops_1_thread": matmul_peak_cpu_seconds(),
        "training_flops_per_step": utils.flops_per_token(winner) * 16 * winner.block_size,
    }
    record["command"] += " && python tests/ladder.py --original"
    args.out.write_text(json.dumps(record, indent=1))
    print(json.dumps({k: record[k] for k in ("original", "ceiling", "compile")})[:600])


if __name__ == "__main__":
    main()
