"""Scaling study for lesson 07: model sizes x two budgets, and characters against BPE tokens.

Every run uses lesson 03's recipe (utils.scaled_plan: batch 16 x 256, AdamW, warm-up + cosine,
dropout 0.15) fitted to its number of steps, and is graded in bits per character over the whole
validation text. Two budgets per model size:

- the same compute time: each size gets as many steps as fit in ``--seconds`` CPU seconds of one
  thread (timed on four steps first, so the cosine schedule ends at the budget);
- the same data: every size trains ``--steps`` steps, i.e. the same number of tokens.

Time is the CPU time of the training thread with ``torch.set_num_threads(1)``: other processes on
a shared machine slow the wall clock, not this count. Not collected by pytest (no test_ prefix).

    python tests/scaling.py                       # the full study (tens of minutes)
    python tests/scaling.py --sizes 0.05M,0.12M --seconds 2 --steps 5 --merges 32 --out x.json
"""

import argparse
import json
import platform
import sys
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
    "0.57M": (128, 4, 4),  # lesson 03's model
    "1.2M": (192, 4, 6),
    "2.2M": (256, 4, 8),
}
PROMPT = "alice was beginning to"


def model_config(size: str, vocab_size: int) -> utils.GPTConfig:
    n_embd, n_layer, n_head = SIZES[size]
    return utils.GPTConfig(
        vocab_size=vocab_size, n_embd=n_embd, n_layer=n_layer, n_head=n_head, mlp_hidden=2 * n_embd
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "scaling_cpu.json")
    parser.add_argument("--sizes", default=",".join(SIZES), help="comma-separated names")
    parser.add_argument("--seconds", type=float, default=60.0, help="CPU seconds per run")
    parser.add_argument("--steps", type=int, default=150, help="steps per run, same-data budget")
    parser.add_argument("--merges", type=int, default=256, help="BPE merges (fixed in advance)")
    parser.add_argument("--bpe-size", default="0.57M", help="model size of the BPE comparison")
    args = parser.parse_args()
    torch.set_num_threads(1)
    corpus = utils.load_corpus()
    chars = corpus.tokenizer
    bpe = utils.BPETokenizer.train(corpus.train_text, chars, args.merges)  # training split only
    bpe_train = torch.tensor(bpe.encode(corpus.train_text), dtype=torch.long)
    sizes = args.sizes.split(",")
    result = {
        "command": " ".join(["python", "tests/scaling.py", *sys.argv[1:]]),
        "hardware": {
            "cpu": cpu_name(),
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
        "clock": "time.thread_time(): CPU seconds of the one training thread",
        "budgets": {"cpu_seconds": args.seconds, "steps": args.steps},
        "prompt": PROMPT,
        "val_characters": len(corpus.val_text),
        "bpe": {"merges": len(bpe.merges), "vocab_size": bpe.vocab_size, "size": args.bpe_size},
        "runs": [],
    }

    def run(size: str, budget: str, tokenizer, train_ids: torch.Tensor) -> None:
        config = model_config(size, tokenizer.vocab_size)
        steps = args.steps
        if budget == "time":
            per_step = utils.cpu_seconds_per_step(config, tokenizer, train_ids)
            steps = max(1, int(args.seconds / per_step))
        started = time.perf_counter()
        record = utils.scaling_run(config, tokenizer, train_ids, corpus.val_text, steps, PROMPT)
        tokens = "bpe" if tokenizer is bpe else "chars"
        result["runs"].append({"size": size, "budget": budget, "tokenizer": tokens, **record})
        args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
        print(
            f"{size:>6} {tokens:5} {budget:5} {record['parameters']:>9,} params {steps:>5} steps "
            f"{record['cpu_seconds']:6.1f} CPU s ({time.perf_counter() - started:6.1f} wall) "
            f"val {record['val_bpc']:.3f} bpc",
            flush=True,
        )

    for size in sizes:
        run(size, "time", chars, corpus.splits["train"])
    if args.bpe_size in sizes:
        run(args.bpe_size, "time", bpe, bpe_train)
    for size in sizes:
        run(size, "steps", chars, corpus.splits["train"])


if __name__ == "__main__":
    main()
