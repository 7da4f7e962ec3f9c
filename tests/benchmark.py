"""Benchmark: GPT-0.5M against the original notebook's recipe, in one process, on one device.

    python tests/benchmark.py             # speed: training steps, KV cache, FLOPs (< 3 min on CPU)
    python tests/benchmark.py --quality   # + both recipes trained for the same time budget
                                          #   (on a CPU: one thread's CPU time)
    python tests/benchmark.py --quality --out runs/benchmark.json

Prints a table and, last, one JSON line with every figure. Not collected by pytest (no test_
prefix): timings are measurements, never assertions.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import platform
import resource
import statistics
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "notebooks"))
import utils

# ---------------------------------------------------------------------------------------------
# The original notebook's recipe, rewritten faithfully
# ---------------------------------------------------------------------------------------------


class OriginalBlock(nn.Module):
    """Post-norm block: x = LN(x + MHA(x)); x = LN(x + MLP(x)), ReLU MLP, no dropout."""

    def __init__(self, n_embd: int, n_head: int, hidden: int) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(n_embd, n_head, batch_first=True)
        self.ln1 = nn.LayerNorm(n_embd)
        self.ff = nn.Sequential(nn.Linear(n_embd, hidden), nn.ReLU(), nn.Linear(hidden, n_embd))
        self.ln2 = nn.LayerNorm(n_embd)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        attended, _ = self.attn(x, x, x, attn_mask=mask)  # need_weights defaults to True
        x = self.ln1(x + attended)
        return self.ln2(x + self.ff(x))


class OriginalGPT(nn.Module):
    """Token embedding + fixed sinusoidal positions, 4 post-norm blocks, untied output layer."""

    def __init__(self, config: utils.GPTConfig) -> None:
        super().__init__()
        self.config = config
        c, t = config.n_embd, config.block_size
        self.emb = nn.Embedding(config.vocab_size, c)
        pos = torch.arange(t)[:, None]
        freq = torch.exp(torch.arange(0, c, 2) * (-math.log(10000.0) / c))
        pe = torch.zeros(t, c)
        pe[:, 0::2], pe[:, 1::2] = torch.sin(pos * freq), torch.cos(pos * freq)
        self.register_buffer("pe", pe)
        self.blocks = nn.ModuleList(
            OriginalBlock(c, config.n_head, config.mlp_hidden) for _ in range(config.n_layer)
        )
        self.out = nn.Linear(c, config.vocab_size)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        t = idx.size(1)
        mask = torch.triu(torch.ones(t, t, dtype=torch.bool, device=idx.device), diagonal=1)
        x = self.emb(idx) + self.pe[:t]
        for block in self.blocks:
            x = block(x, mask)
        logits = self.out(x)
        if targets is None:
            return logits, None
        return logits, F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten())


#: AdamW at a constant 3e-4 (PyTorch defaults otherwise), no clipping, batch 32 x 128.
ORIGINAL_RECIPE = utils.TrainConfig(
    max_steps=50_000, batch_size=32, lr=3e-4, min_lr=3e-4, warmup_steps=0, weight_decay=0.01,
    beta2=0.999, grad_clip=math.inf, eval_interval=100, eval_iters=20,
)
#: The original notebook's context; ours is 256 (see GPTConfig), with half the batch.
ORIGINAL_BLOCK = 128
#: Our recipe as lesson 03 runs it, with loss estimates every 100 steps for a finer curve.
OURS_RECIPE = dataclasses.replace(utils.PRETRAIN, eval_interval=100)


# ---------------------------------------------------------------------------------------------
# Measurements
# ---------------------------------------------------------------------------------------------


def cpu_name() -> str:
    """The processor's model name (Linux), else what the platform module knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_training_steps(
    models: dict[str, tuple[nn.Module, utils.TrainConfig]],
    corpus: utils.Corpus,
    device: torch.device,
    steps: int,
    warmup: int,
    rounds: int = 4,
) -> dict[str, float]:
    """Median milliseconds per optimizer step for each model, measured in interleaved rounds
    (A, B, A, B, ...) so drifts of a noisy machine hit both alike. Warm-up steps are excluded.
    Each model reads batches of its own shape (block x batch)."""
    dtype = utils.autocast_dtype(device)
    times: dict[str, list[float]] = {name: [] for name in models}
    state = {}
    for name, (model, cfg) in models.items():
        model.to(device).train()
        optimizers = utils.make_optimizer(model, cfg, device)
        scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
        get_batch = utils.book_batches(corpus.splits, model.config.block_size, cfg.batch_size)
        state[name] = (model, cfg, optimizers, scaler, get_batch)
    generator = torch.Generator().manual_seed(0)
    for round_ in range(rounds):
        for name, (model, cfg, optimizers, scaler, get_batch) in state.items():
            n = steps // rounds + (warmup if round_ == 0 else 0)
            for i in range(n):
                x, y = get_batch("train", generator)
                x, y = x.to(device), y.to(device)
                sync(device)
                start = time.perf_counter()
                with torch.autocast(device.type, dtype, enabled=dtype is not None):
                    _, loss = model(x, y)
                utils.optimizer_step(model, optimizers, scaler, loss, cfg.grad_clip)
                sync(device)
                if round_ > 0 or i >= warmup:
                    times[name].append(time.perf_counter() - start)
    return {name: 1000 * statistics.median(values) for name, values in times.items()}


def time_generation(model: utils.GPT, tokenizer: utils.CharTokenizer, new: int, repeats: int):
    """Tokens per second generating ``new`` characters greedily, with and without the KV cache."""
    prompt = "alice was beginning to get very tired of sitting by her sister"
    result = {}
    for use_cache in (True, False):
        runs = []
        for _ in range(repeats):
            start = time.perf_counter()
            utils.generate(model, tokenizer, prompt, new, temperature=0.0, use_cache=use_cache)
            runs.append(time.perf_counter() - start)
        result[use_cache] = new / statistics.median(runs)
    return result[True], result[False]


def matmul_peak_gflops(device: torch.device, n: int = 2048, repeats: int = 10) -> float:
    """Achieved GFLOP/s of a large fp32 matmul: the practical peak that MFU is measured against."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    for _ in range(2):
        a @ b
    sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    sync(device)
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory: CUDA allocator peak on a GPU, the process's peak resident set on a CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def budget_clock(device: torch.device):
    """The clock a training budget is counted on: on the CPU, this thread's CPU seconds (with
    one thread), which other processes on a shared machine cannot eat into; wall time on a GPU."""
    return time.thread_time if device.type == "cpu" else time.perf_counter


def train_for_budget(
    name: str,
    model: nn.Module,
    cfg: utils.TrainConfig,
    corpus: utils.Corpus,
    budget: float,
    device: torch.device,
) -> dict:
    """Train one recipe for at most ``budget`` training seconds; return its validation curve."""
    torch.manual_seed(cfg.seed)
    get_batch = utils.book_batches(corpus.splits, model.config.block_size, cfg.batch_size)
    print(f"\n[{name}] training for up to {budget:.0f} s ...", flush=True)
    history = utils.train(
        model.to(device), get_batch, cfg, tokenizer=corpus.tokenizer, eval_splits=("val",),
        time_budget=budget, clock=budget_clock(device), progress=False,
    )
    val = history["losses"]["val"]
    best = min(range(len(val)), key=val.__getitem__)
    for step, seconds, loss in zip(history["step"], history["seconds"], val, strict=True):
        print(f"  step {step:>6}  {seconds:7.1f} s  val {loss:.4f}")
    return {
        "steps": history["step"], "seconds": history["seconds"], "val": val,
        "best_val": val[best], "best_step": history["step"][best],
        "best_seconds": history["seconds"][best],
    }


def first_time_below(curve: dict, threshold: float) -> float | None:
    """Training seconds at which a curve first reaches ``threshold`` (None if it never does)."""
    for seconds, loss in zip(curve["seconds"], curve["val"], strict=True):
        if loss <= threshold:
            return seconds
    return None


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quality", action="store_true", help="also train both recipes")
    parser.add_argument(
        "--minutes", type=float, default=None,
        help="training budget per recipe: one thread's CPU minutes on a CPU, wall minutes on a GPU",
    )
    parser.add_argument("--steps", type=int, default=40, help="timed training steps per model")
    parser.add_argument("--new-tokens", type=int, default=500, help="characters to generate")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: best available)")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args()

    device = torch.device(args.device) if args.device else utils.pick_device()
    minutes = args.minutes if args.minutes is not None else (10.0 if device.type == "cpu" else 3.0)
    corpus = utils.load_corpus()
    ours_config = utils.GPTConfig(vocab_size=corpus.tokenizer.vocab_size)
    original_config = utils.GPTConfig(
        **{**asdict(ours_config), "dropout": 0.0, "mlp_hidden": 256, "block_size": ORIGINAL_BLOCK}
    )
    batch = utils.PRETRAIN.batch_size
    tokens_per_step = batch * ours_config.block_size
    assert tokens_per_step == ORIGINAL_RECIPE.batch_size * ORIGINAL_BLOCK  # same text per step
    hardware = {
        "device": str(device),
        "device_name": torch.cuda.get_device_name() if device.type == "cuda" else cpu_name(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "mixed_precision": str(utils.autocast_dtype(device)).replace("torch.", ""),
    }
    print("hardware:", hardware)

    torch.manual_seed(0)
    ours, original = utils.GPT(ours_config), OriginalGPT(original_config)
    ms = time_training_steps(
        {"original": (original, ORIGINAL_RECIPE), "ours": (ours, utils.PRETRAIN)},
        corpus, device, steps=args.steps, warmup=5,
    )
    peak = matmul_peak_gflops(device)
    flops = {
        "ours": utils.flops_per_token(ours_config),
        "original": utils.flops_per_token(original_config),
    }
    ours.eval()
    cached, uncached = time_generation(ours, corpus.tokenizer, new=args.new_tokens, repeats=3)
    results = {
        "command": " ".join(["python", *sys.argv]),
        "hardware": hardware,
        "params_ours": ours.num_parameters(),
        "params_original": sum(p.numel() for p in original.parameters()),
        "batch": batch,
        "block_size": ours_config.block_size,
        "original_batch": ORIGINAL_RECIPE.batch_size,
        "original_block_size": ORIGINAL_BLOCK,
        "original_ms_per_step": ms["original"],
        "ours_ms_per_step": ms["ours"],
        "original_tokens_per_s": tokens_per_step / ms["original"] * 1000,
        "ours_tokens_per_s": tokens_per_step / ms["ours"] * 1000,
        "speedup": ms["original"] / ms["ours"],
        "flops_per_token_ours": flops["ours"],
        "flops_per_token_original": flops["original"],
        "ours_gflops": flops["ours"] * tokens_per_step / ms["ours"] / 1e6,
        "matmul_peak_gflops": peak,
        "kv_cached_tokens_per_s": cached,
        "kv_uncached_tokens_per_s": uncached,
        "kv_speedup": cached / uncached,
        "kv_new_tokens": args.new_tokens,
    }
    results["ours_mfu"] = results["ours_gflops"] / peak
    results["original_gflops"] = flops["original"] * tokens_per_step / ms["original"] / 1e6
    results["original_mfu"] = results["original_gflops"] / peak

    if args.quality:
        budget = 60 * minutes
        if device.type == "cpu":  # one thread, so this thread's CPU time is all the work done
            torch.set_num_threads(1)
        results["quality_threads"] = torch.get_num_threads()
        results["quality_clock"] = budget_clock(device).__name__
        torch.manual_seed(utils.PRETRAIN.seed)
        curves = {
            "original": train_for_budget(
                "original", OriginalGPT(original_config), ORIGINAL_RECIPE, corpus, budget, device
            ),
            "ours": train_for_budget(
                "ours", utils.GPT(ours_config), OURS_RECIPE, corpus, budget, device
            ),
        }
        target = curves["original"]["best_val"]
        ours_reach = first_time_below(curves["ours"], target)
        results |= {
            "budget_minutes": minutes,
            "curves": curves,
            "best_val_original": target,
            "best_val_ours": curves["ours"]["best_val"],
            "original_seconds_to_best": curves["original"]["best_seconds"],
            "ours_seconds_to_original_best": ours_reach,
            "time_to_original_best_ratio": (
                ours_reach / curves["original"]["best_seconds"] if ours_reach is not None else None
            ),
        }
    results["peak_memory_mb"] = peak_memory_mb(device)

    print_table(results)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1))
    print(json.dumps(results))


def print_table(r: dict) -> None:
    rows = [
        ("parameters", f"{r['params_original']:,}", f"{r['params_ours']:,}", ""),
        (
            "ms / training step",
            f"{r['original_ms_per_step']:.1f}",
            f"{r['ours_ms_per_step']:.1f}",
            "",
        ),
        (
            "tokens / s (training)",
            f"{r['original_tokens_per_s']:,.0f}",
            f"{r['ours_tokens_per_s']:,.0f}",
            f"{r['speedup']:.2f}x",
        ),
        (
            "GFLOP/s (MFU)",
            f"{r['original_gflops']:.1f} ({r['original_mfu']:.0%})",
            f"{r['ours_gflops']:.1f} ({r['ours_mfu']:.0%})",
            "",
        ),
    ]
    if "best_val_ours" in r:
        rows.append(
            ("best val loss", f"{r['best_val_original']:.4f}", f"{r['best_val_ours']:.4f}", "")
        )
        reach = r["ours_seconds_to_original_best"]
        rows.append((
            "s to original's best", f"{r['original_seconds_to_best']:.0f}",
            f"{reach:.0f}" if reach is not None else "never",
            f"{r['time_to_original_best_ratio']:.2f}x" if reach is not None else "",
        ))
    print(f"\n{'':26}{'original':>18}{'ours':>18}{'ratio':>10}")
    for name, a, b, ratio in rows:
        print(f"{name:26}{a:>18}{b:>18}{ratio:>10}")
    print(
        f"generation, {r['kv_new_tokens']} chars: "
        f"{r['kv_cached_tokens_per_s']:.0f} tok/s with KV cache, "
        f"{r['kv_uncached_tokens_per_s']:.0f} without ({r['kv_speedup']:.2f}x); "
        f"matmul peak {r['matmul_peak_gflops']:.0f} GFLOP/s; "
        f"peak memory {r['peak_memory_mb']:.0f} MB"
    )


if __name__ == "__main__":
    main()
