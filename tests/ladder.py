"""The speed-up ladder of lesson 7: each training trick measured on a dev slice, kept if it pays.

Every run trains a fresh GPT-0.5M on the first 90% of the *training* text and is graded on the
last 10% of it (the dev slice): the validation text is never read. A run's budget is a fixed
number of CPU seconds of one thread (``time.thread_time``, which other jobs on a shared machine
cannot eat into); its step count is fitted to that budget from a timed calibration, so its
schedule ends with the budget.

Rungs, in order; each starts from the winner of the one before:

0. today's recipe: AdamW, warm-up + cosine, lr 2e-3, dropout 0.15, weight decay 0.1;
1. a warm-up/stable/decay schedule, with AdamW's learning rate chosen from a grid;
2. Muon on the blocks' matrices (AdamW on embeddings, norms, biases), its lr from a grid;
3. regularisation retuned for a small book read many times (dropout, weight decay);
4. an architecture bundle: rotary positions, QK-norm, ReLU², zero-initialised projections;
5. ``torch.compile`` (speed only: the same maths, timed per step).

Each candidate is run with seed 0; the winner (lowest dev loss) is re-run with seed 1, and a
rung is kept only if its gain over the rung before is larger than the seed spread measured on
both. Two worker processes share the queue. Not collected by pytest (no test_ prefix).

    python tests/ladder.py                               # the ladder (about 40 min, 2 cores)
    GPT05M_QUICK=1 python tests/ladder.py --seconds 3 --out runs/ladder.json   # check it runs
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import multiprocessing as mp
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "notebooks"))
import utils
from benchmark import cpu_name

OUT = Path(__file__).with_name("ladder_cpu.json")
#: Today's recipe (lesson 3 before the ladder): AdamW, cosine, dropout 0.15.
BASELINE = {"optimizer": "adamw", "schedule": "cosine", "lr": 2e-3, "dropout": 0.15,
            "weight_decay": 0.1, "arch": "gpt", "compile": False}  # fmt: skip
#: (rung name, what it changes, candidate settings tried on top of the previous winner).
RUNGS = [
    ("today's recipe", "AdamW, warm-up + cosine", [{}]),
    ("warm-up/stable/decay", "schedule, AdamW lr", [
        {"schedule": "wsd", "lr": lr} for lr in (2e-3, 4e-3, 8e-3)]),
    ("Muon", "Muon on the blocks' matrices, its lr", [
        {"optimizer": "muon", "muon_lr": lr} for lr in (0.01, 0.02, 0.04)]),
    ("regularisation", "dropout, weight decay", [
        {"dropout": 0.05}, {"dropout": 0.1}, {"dropout": 0.1, "weight_decay": 0.3}]),
    ("architecture", "RoPE, QK-norm, ReLU², zero-init projections", [{"arch": "modern"}]),
]  # fmt: skip
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
    return utils.TrainConfig(**{
        **chosen, "max_steps": steps, "warmup_steps": max(1, round(steps / 15)),
        "eval_interval": EVAL_EVERY, "eval_iters": EVAL_BATCHES,
    })  # fmt: skip


def seconds_per_step(settings: dict, corpus: utils.Corpus, splits: dict, steps: int) -> float:
    """CPU seconds of this thread per training step, timed after three untimed steps (which
    pay the one-off costs, compilation included)."""
    torch.manual_seed(0)
    model = build(settings, corpus.tokenizer.vocab_size)
    model = torch.compile(model) if settings["compile"] else model
    cfg = dataclasses.replace(plan(settings, 3 + steps), eval_interval=3)
    get_batch = utils.book_batches(splits, 256, cfg.batch_size)
    seconds = utils.train(model, get_batch, cfg, tokenizer=corpus.tokenizer, eval_splits=(),
                          progress=False, clock=time.thread_time)["seconds"]  # fmt: skip
    return (seconds[-1] - seconds[0]) / steps


def run(job: tuple[dict, int, float]) -> dict:
    """Train one candidate with one seed for a budget of CPU seconds; return its curve."""
    settings, seed, budget = job
    torch.set_num_threads(1)
    corpus, splits = dev_data()
    per_step = seconds_per_step(settings, corpus, splits, steps=utils.by_mode(full=12, quick=2))
    steps = max(10, int(budget / per_step))
    cfg = dataclasses.replace(plan(settings, steps), seed=seed)
    torch.manual_seed(seed)
    model = build(settings, corpus.tokenizer.vocab_size)
    trained = torch.compile(model) if settings["compile"] else model
    get_batch = utils.book_batches(splits, 256, cfg.batch_size)
    history = utils.train(trained, get_batch, cfg, tokenizer=corpus.tokenizer,
                          eval_splits=("val",), progress=False, clock=time.thread_time)  # fmt: skip
    return {
        "settings": settings, "seed": seed, "steps": steps, "seconds_per_step": per_step,
        "curve": {"step": history["step"], "seconds": history["seconds"],
                  "dev": history["losses"]["val"]},
        "dev_loss": utils.evaluate_text(model, splits["val"]),
    }  # fmt: skip


def seconds_to(curve: dict, target: float) -> float | None:
    """CPU seconds until the dev estimate first reaches ``target`` (linear between estimates)."""
    points = list(zip(curve["seconds"], curve["dev"], strict=True))
    for (t0, l0), (t1, l1) in zip([(0.0, math.inf), *points], points, strict=False):
        if l1 <= target:
            return t1 if not math.isfinite(l0) else t0 + (t1 - t0) * (l0 - target) / (l0 - l1)
    return None


# ---------------------------------------------------------------------------------------------
# The ladder
# ---------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=240.0, help="CPU seconds per run")
    parser.add_argument("--workers", type=int, default=2, help="processes of one thread each")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    pool = mp.get_context("spawn").Pool(args.workers)
    first = pool.map(run, [(BASELINE, seed, args.seconds) for seed in (0, 1)])
    rungs = [{"name": RUNGS[0][0], "changes": RUNGS[0][1], "candidates": first[:1],
              "seed0": first[0], "seed1": first[1]}]  # fmt: skip
    best, pending = first[0], None
    for name, changes, candidates in RUNGS[1:]:
        results = pool.map(run, [({**best["settings"], **c}, 0, args.seconds) for c in candidates])
        if pending is not None:  # the previous winner's second seed ran alongside
            rungs[-1]["seed1"] = pending.get()
        winner = min(results, key=lambda r: r["dev_loss"])
        print(f"{name}: " + ", ".join(f"{r['dev_loss']:.4f}" for r in results)
              + f" (before: {best['dev_loss']:.4f})", flush=True)  # fmt: skip
        rungs.append({"name": name, "changes": changes, "candidates": results, "seed0": winner})
        if winner["dev_loss"] < best["dev_loss"]:
            best, pending = winner, pool.apply_async(run, ((winner["settings"], 1, args.seconds),))
        else:  # no candidate beat the rung before on seed 0: nothing to confirm
            rungs[-1]["seed1"], pending = None, None
    if pending is not None:
        rungs[-1]["seed1"] = pending.get()
    best = best["settings"]
    compiled = pool.apply(seconds_per_step_job, ((best, "compile"),))
    eager = pool.apply(seconds_per_step_job, ((best, "eager"),))
    pool.close()
    record = summarise(rungs, args, {"compiled": compiled, "eager": eager})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1))
    print(json.dumps({k: v for k, v in record.items() if k != "rungs"}, indent=1))


def seconds_per_step_job(job: tuple[dict, str]) -> float:
    torch.set_num_threads(1)
    settings, mode = job
    corpus, splits = dev_data()
    steps = utils.by_mode(full=30, quick=2)
    return seconds_per_step({**settings, "compile": mode == "compile"}, corpus, splits, steps)


def summarise(rungs: list[dict], args: argparse.Namespace, compile_timing: dict) -> dict:
    """Each rung's mean dev loss over two seeds, its spread, the time to reach today's loss,
    ratios to the rung before, and whether it was kept (gain larger than the seed spread)."""
    target = sum(min(rungs[0][k]["curve"]["dev"]) for k in ("seed0", "seed1")) / 2
    kept, previous = [], None
    for rung in rungs:
        if rung["seed1"] is None:  # lost to the rung before on seed 0
            rung["kept"] = False
            continue
        losses = [rung[k]["dev_loss"] for k in ("seed0", "seed1")]
        times = [seconds_to(rung[k]["curve"], target) for k in ("seed0", "seed1")]
        rung["dev_loss_mean"] = sum(losses) / 2
        rung["seed_spread"] = abs(losses[0] - losses[1])
        rung["seconds_to_target"] = None if None in times else sum(times) / 2
        if previous is None:
            rung["kept"] = True
        else:
            gain = previous["dev_loss_mean"] - rung["dev_loss_mean"]
            noise = max(previous["seed_spread"], rung["seed_spread"])
            rung["gain"], rung["noise"], rung["kept"] = gain, noise, gain > noise
            rung["loss_ratio"] = rung["dev_loss_mean"] / previous["dev_loss_mean"]
            if rung["seconds_to_target"] and previous["seconds_to_target"]:
                rung["time_ratio"] = rung["seconds_to_target"] / previous["seconds_to_target"]
        if rung["kept"]:
            previous = rung
            kept.append(rung["name"])
    winner = previous["seed0"]["settings"]
    speedup = compile_timing["eager"] / compile_timing["compiled"]
    return {
        "command": "python tests/ladder.py" + "".join(f" {a}" for a in sys.argv[1:]),
        "hardware": {"cpu": cpu_name(), "threads_per_run": 1, "torch": torch.__version__},
        "budget_cpu_seconds": args.seconds,
        "dev": "last 10% of the training text; the validation text is never read",
        "target_dev_loss": target,
        "target": "the best dev estimate of today's recipe, mean of two seeds",
        "rungs": rungs,
        "kept": kept,
        "winner": winner,
        "compile": {**compile_timing, "speedup": speedup},
    }


if __name__ == "__main__":
    main()
