"""Is this CUDA GPU ready for the lessons? On any CUDA GPU, a Colab T4 included (never timed here:
the project's machines have no GPU).

    python tests/gpu_check.py   # Colab: %cd /content/GPT-0.5M, then !python tests/gpu_check.py

Reports the precision chosen (utils.autocast_dtype), milliseconds per step of lesson 3's recipe
with and without autocast, the KV cache's speed-up, the peak GPU memory, and a 300-step
pretraining on the GPU against the same on the CPU (final loss estimates within TOLERANCE).
Writes tests/gpu_<name>.json with the command inside. Without a CUDA GPU it says so and exits 0.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "notebooks"))
import utils
from benchmark import sync, time_generation

TOLERANCE = 0.05  # nats: dropout draws differ by device, and the GPU computes in lower precision
STEPS = 300


def ms_per_step(corpus: utils.Corpus, device: torch.device, autocast: bool, steps: int = 30):
    """Median milliseconds of one step of utils.train's recipe (after 5 untimed ones)."""
    cfg = utils.PRETRAIN
    torch.manual_seed(cfg.seed)
    model = utils.build_model(corpus.tokenizer).to(device).train()
    optimizers = utils.make_optimizer(model, cfg, device)
    dtype = utils.autocast_dtype(device) if autocast else None
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    get_batch = utils.book_batches(corpus.splits, model.config.block_size, cfg.batch_size)
    generator, times = torch.Generator().manual_seed(0), []
    for i in range(steps + 5):
        x, y = (t.to(device) for t in get_batch("train", generator))
        sync(device)
        start = time.perf_counter()
        with torch.autocast(device.type, dtype, enabled=dtype is not None):
            _, loss = model(x, y)
        utils.optimizer_step(model, optimizers, scaler, loss, cfg.grad_clip)
        sync(device)
        if i >= 5:
            times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def short_pretraining(corpus: utils.Corpus, device: torch.device) -> float:
    """The final validation estimate of lesson 3's recipe fitted to ``STEPS`` steps."""
    cfg = replace(utils.PRETRAIN, max_steps=STEPS, warmup_steps=STEPS // 15, eval_interval=STEPS)
    torch.manual_seed(cfg.seed)
    model = utils.build_model(corpus.tokenizer).to(device)
    get_batch = utils.book_batches(corpus.splits, model.config.block_size, cfg.batch_size)
    history = utils.train(model, get_batch, cfg, tokenizer=corpus.tokenizer, eval_splits=("val",),
                          progress=False)
    return history["losses"]["val"][-1]


def main() -> int:
    if not torch.cuda.is_available():
        print("No CUDA GPU found: nothing to check here (in Colab: Runtime → Change runtime type).")
        return 0
    device, started = torch.device("cuda"), time.perf_counter()
    name = torch.cuda.get_device_name(device)
    corpus = utils.load_corpus()
    torch.cuda.reset_peak_memory_stats()
    report = {
        "command": "python tests/gpu_check.py",
        "gpu": name,
        "compute_capability": list(torch.cuda.get_device_capability(device)),
        "torch": torch.__version__,
        "precision": str(utils.autocast_dtype(device) or torch.float32),
        "ms_per_step_autocast": ms_per_step(corpus, device, autocast=True),
        "ms_per_step_fp32": ms_per_step(corpus, device, autocast=False),
    }
    model = utils.build_model(corpus.tokenizer).to(device)
    cached, uncached = time_generation(model, corpus.tokenizer, new=500, repeats=3)
    report["kv_cache_speedup"] = cached / uncached
    report["generation_chars_per_s"] = {"cache": cached, "no_cache": uncached}
    report["loss_gpu"] = short_pretraining(corpus, device)
    report["peak_gpu_memory_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    report["loss_cpu"] = short_pretraining(corpus, torch.device("cpu"))
    report["loss_difference"] = abs(report["loss_gpu"] - report["loss_cpu"])
    report["tolerance"] = TOLERANCE
    report["passed"] = report["loss_difference"] <= TOLERANCE
    report["seconds"] = time.perf_counter() - started
    for key, value in report.items():
        print(f"{key:<24} {value:.4g}" if isinstance(value, float) else f"{key:<24} {value}")
    verdict = "PASS" if report["passed"] else "FAIL"
    print(f"{verdict}: {STEPS}-step loss on the GPU {report['loss_gpu']:.4f}, on the CPU "
          f"{report['loss_cpu']:.4f} (tolerance {TOLERANCE})")
    out = Path(__file__).parent / f"gpu_{re.sub(r'[^a-z0-9]+', '_', name.lower()).strip('_')}.json"
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {utils.display_path(out)}")
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
