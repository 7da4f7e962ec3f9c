"""Pretrain with utils.train on one process or several (DistributedDataParallel under torchrun).

    python tests/ddp_pretrain.py --steps 30                              # one process
    torchrun --standalone --nproc_per_node=2 tests/ddp_pretrain.py --steps 30   # two processes

Every rank draws the same batch of ``--batch-size`` sequences from the shared seed and trains on
its own share, so N processes see exactly the batches of one. Rank 0 alone writes the checkpoint
(``--checkpoint``; a matching one is resumed) and the summary (``--out``, JSON). Used by lesson 07
and tests/test_distributed.py.
"""

import argparse
import json
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "notebooks"))
import utils


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="optimizer steps of the plan")
    parser.add_argument("--stop-at", type=int, default=None, help="stop early at this step")
    parser.add_argument("--batch-size", type=int, default=16, help="sequences per step, all ranks")
    parser.add_argument("--block-size", type=int, default=256)
    parser.add_argument("--n-embd", type=int, default=128)
    parser.add_argument("--n-layer", type=int, default=4)
    parser.add_argument("--dropout", type=float, default=0.15)
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None, help="summary JSON (rank 0)")
    args = parser.parse_args()

    distributed = "LOCAL_RANK" in os.environ  # set by torchrun
    device = utils.init_distributed() if distributed else utils.pick_device()
    rank, world = utils.distributed_rank()
    corpus = utils.load_corpus()
    torch.manual_seed(0)  # the same initial weights on every rank (DDP also broadcasts rank 0's)
    model = utils.build_model(
        corpus.tokenizer, block_size=args.block_size, n_embd=args.n_embd, n_layer=args.n_layer,
        n_head=4, mlp_hidden=2 * args.n_embd, dropout=args.dropout,
    ).to(device)  # fmt: skip
    cfg = utils.TrainConfig(
        max_steps=args.steps, batch_size=args.batch_size, warmup_steps=max(1, args.steps // 15),
        eval_interval=max(1, args.steps // 2), eval_iters=2,
    )  # fmt: skip
    get_batch = utils.book_batches(corpus.splits, args.block_size, args.batch_size)
    history = utils.train(
        model, get_batch, cfg, tokenizer=corpus.tokenizer, checkpoint_path=args.checkpoint,
        stop_at=args.stop_at, progress=False, device=device,
    )  # fmt: skip
    if rank == 0 and args.out is not None:
        # speed between the first and the last loss estimate: the first steps pay start-up costs
        timed_steps = history["step"][-1] - history["step"][0]
        timed_seconds = history["seconds"][-1] - history["seconds"][0]
        summary = {
            "processes": world,
            "threads_per_process": torch.get_num_threads(),
            "steps": history["step"][-1],
            "timed_from_step": history["step"][0],
            "characters_per_s": timed_steps * args.batch_size * args.block_size / timed_seconds,
            "train_step_loss": history["train_step_loss"],
            "val": history["losses"]["val"],
        }
        args.out.write_text(json.dumps(summary) + "\n")
    if distributed:
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
