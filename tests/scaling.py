"""Scaling study for lesson 7: model sizes, and characters against BPE tokens, each trained to
its best dev loss.

Every run uses lesson 3's recipe (``utils.PRETRAIN``: Muon + AdamW, warm-up/stable/decay, batch
16 x 256) for ``--steps`` steps, on the first 90% of the training text. Every ``--eval-every``
steps it estimates the loss on the dev slice (the last 10% of the training text) and keeps the
weights of the best estimate so far (early stopping). Those weights are graded once, in bits per
character over the whole validation text, which never chose anything.

Time is the CPU time of the training thread with ``torch.set_num_threads(1)``: other processes on
a shared machine slow the wall clock, not this count. Runs go to ``--workers`` processes. Not
collected by pytest (no test_ prefix); tests/test_scaling.py runs a miniature.

    python tests/scaling.py                 # the full study (about 15 min on 2 cores)
    python tests/scaling.py --sizes 0.05M,0.12M --steps 4 --eval-every 2 --merges 16 \\
        --bpe-size 0.05M --out runs/mini.json
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import multiprocessing as mp
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "notebooks"))
import utils
from benchmark import cpu_name  # the same hardware label as the benchmark

#: Model sizes: (n_embd, n_layer, n_head); the MLP is twice as wide as the embedding.
SIZES = {
    "0.05M": (48, 2, 2),
    "0.12M": (64, 3, 2),
    "0.57M": (128, 4, 4),  # lesson 3's model
    "1.2M": (192, 4, 6),
}
PROMPT = "alice was beginning to"


def model_config(size: str, vocab_size: int) -> utils.GPTConfig:
    n_embd, n_layer, n_head = SIZES[size]
    return utils.GPTConfig(
        vocab_size=vocab_size, n_embd=n_embd, n_layer=n_layer, n_head=n_head, mlp_hidden=2 * n_embd
    )


def run(job: dict) -> dict:
    """Train one size on one tokenizer, keeping the best-dev weights; grade them on val."""
    torch.set_num_threads(1)
    corpus = utils.load_corpus()
    tokenizer = corpus.tokenizer
    if job["tokenizer"] == "bpe":
        tokenizer = utils.BPETokenizer.train(corpus.train_text, corpus.tokenizer, job["merges"])
    fit_text, dev_text = utils.split_text(corpus.train_text)
    splits = {
        name: torch.tensor(tokenizer.encode(text), dtype=torch.long)
        for name, text in (("train", fit_text), ("val", dev_text))
    }
    config = model_config(job["size"], tokenizer.vocab_size)
    cfg = dataclasses.replace(
        utils.PRETRAIN,
        max_steps=job["steps"],
        warmup_steps=max(1, round(job["steps"] / 15)),
        eval_interval=job["eval_every"],
        eval_iters=10,
    )
    torch.manual_seed(cfg.seed)
    model = utils.GPT(config)
    get_batch = utils.book_batches(splits, config.block_size, cfg.batch_size)
    best = {"dev": float("inf")}
    done = 0
    for stop in range(cfg.eval_interval, cfg.max_steps + 1, cfg.eval_interval):
        # train() resumes its own checkpoint at each stop; the file keeps the character
        # vocabulary (BPE tokenizers are not saved), which is all the resume check compares
        history = utils.train(
            model,
            get_batch,
            cfg,
            tokenizer=corpus.tokenizer,
            eval_splits=("val",),
            stop_at=stop,
            progress=False,
            clock=time.thread_time,
            checkpoint_path=job["scratch"],
        )
        done = stop
        if history["losses"]["val"][-1] < best["dev"]:
            best = {
                "dev": history["losses"]["val"][-1],
                "step": stop,
                "weights": copy.deepcopy(model.state_dict()),
            }
    Path(job["scratch"]).unlink(missing_ok=True)
    seconds = history["seconds"][-1]
    model.load_state_dict(best["weights"])
    model.eval()
    tokens = done * cfg.batch_size * config.block_size
    chars_per_token = len(fit_text) / len(splits["train"])
    return {
        "size": job["size"],
        "tokenizer": job["tokenizer"],
        "config": dataclasses.asdict(config),
        "parameters": model.num_parameters(),
        "steps": done,
        "best_step": best["step"],
        "tokens": tokens,
        "flops": utils.flops_per_token(config) * tokens,
        "cpu_seconds": seconds,
        "characters_per_s": tokens * chars_per_token / seconds,
        "context_characters": config.block_size * chars_per_token,
        "dev_curve": {"step": history["step"], "dev": history["losses"]["val"]},
        "best_dev_loss": best["dev"],
        "val_bpc": utils.bits_per_character(model, tokenizer, corpus.val_text),
        "sample": utils.generate(model, tokenizer, PROMPT, 200, temperature=0.8, seed=cfg.seed),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "scaling_cpu.json")
    parser.add_argument("--sizes", default=",".join(SIZES), help="comma-separated names")
    parser.add_argument("--steps", type=int, default=800, help="most steps per run")
    parser.add_argument("--eval-every", type=int, default=50, help="steps between dev estimates")
    parser.add_argument("--merges", type=int, default=256, help="BPE merges (fixed in advance)")
    parser.add_argument("--bpe-size", default="0.57M", help="model size of the BPE comparison")
    parser.add_argument("--workers", type=int, default=2, help="processes of one thread each")
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp()) / "scaling"  # the runs' resumable checkpoints
    base = {"steps": args.steps, "eval_every": args.eval_every, "merges": args.merges}
    jobs = [{**base, "size": s, "tokenizer": "chars"} for s in args.sizes.split(",")]
    jobs.append({**base, "size": args.bpe_size, "tokenizer": "bpe"})
    jobs.sort(key=lambda j: -(SIZES[j["size"]][0] ** 2) * SIZES[j["size"]][1])  # largest first
    for i, job in enumerate(jobs):
        job["scratch"] = f"{scratch}_run{i}.pt"
    with mp.get_context("spawn").Pool(args.workers) as pool:
        runs = pool.map(run, jobs)
    corpus = utils.load_corpus()
    bpe = utils.BPETokenizer.train(corpus.train_text, corpus.tokenizer, args.merges)
    result = {
        "command": " ".join(["python", "tests/scaling.py", *sys.argv[1:]]),
        "hardware": {
            "cpu": cpu_name(),
            "threads": 1,
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
        "clock": "time.thread_time(): CPU seconds of the one training thread",
        "recipe": dataclasses.asdict(utils.PRETRAIN),
        "budget": {"steps": args.steps, "eval_every": args.eval_every},
        "selection": "best dev estimate (last 10% of the training text); graded on validation",
        "prompt": PROMPT,
        "val_characters": len(corpus.val_text),
        "baselines_bpc": utils.baseline_bits_per_char(corpus),
        "bpe": {"merges": len(bpe.merges), "vocab_size": bpe.vocab_size, "size": args.bpe_size},
        "runs": sorted(runs, key=lambda r: (r["tokenizer"], r["parameters"])),
    }
    args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    for r in result["runs"]:
        print(
            f"{r['size']:>6} {r['tokenizer']:5} {r['parameters']:>9,} params, best dev at "
            f"{r['best_step']:>5} of {r['steps']} steps, {r['cpu_seconds']:7.1f} CPU s, "
            f"val {r['val_bpc']:.3f} bpc"
        )


if __name__ == "__main__":
    main()
