"""Pretrain with utils.train on one process or several (DistributedDataParallel under torchrun).

    python tests/ddp_pretrain.py --steps 30                              # one process
    torchrun --standalone --nproc_per_node=2 tests/ddp_pretrain.py --steps 30   # two processes
    python tests/ddp_pretrain.py --compare ddp.json --steps 30 --dropout 0  # both, CPU

``--compare`` runs the two commands above on the CPU and records both summaries, with the
commands, in one JSON file (lesson 07 §7.3 gives the command).

Every rank draws the same batch of ``--batch-size`` sequences from the shared seed and trains on
its own share, so N processes see exactly the batches of one. Rank 0 alone writes the checkpoint
(``--checkpoint``; a matching one is resumed) and the summary (``--out``, JSON). Used by lesson 07
and tests/test_distributed.py.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn as nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "notebooks"))
import utils


def init_distributed() -> torch.device:
    """Join the process group that ``torchrun`` describes in the environment (NCCL on GPUs,
    gloo on CPUs) and return this rank's device."""
    if torch.cuda.is_available():
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
        dist.init_process_group("nccl")
        return device
    dist.init_process_group("gloo")
    return torch.device("cpu")


class Ranks(utils.OneProcess):
    """``utils.train`` on every process of the group: each rank draws the same batch and trains
    on its share (DistributedDataParallel); rank 0 writes the checkpoint."""

    def __init__(self, device: torch.device, rank: int | None = None, world: int | None = None):
        self.device = device  # where collective operations run (NCCL: the GPU)
        self.rank = dist.get_rank() if rank is None else rank
        self.world = dist.get_world_size() if world is None else world

    def wrap(self, model: nn.Module) -> nn.Module:
        return nn.parallel.DistributedDataParallel(model)

    def share(self, x: torch.Tensor, y: torch.Tensor) -> utils.Batch:
        if len(x) % self.world:
            raise ValueError(
                f"batch_size={len(x)} cannot be shared by {self.world} processes; "
                f"use a multiple of {self.world}."
            )
        return x.chunk(self.world)[self.rank], y.chunk(self.world)[self.rank]

    def mean(self, loss: torch.Tensor) -> torch.Tensor:  # as one process would see it
        dist.all_reduce(loss)
        return loss / self.world

    def all(self, go: bool) -> bool:  # the ranks' clocks differ: stop together
        flag = torch.tensor(float(go), device=self.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
        return bool(flag)

    def save(self, write, interrupted: bool = False) -> None:
        if interrupted:  # several ranks cannot be trusted to meet here: they keep the last save
            return
        states = [None] * self.world  # every rank's dropout stream, so that each resumes exactly
        dist.all_gather_object(states, torch.get_rng_state())
        if self.rank == 0:
            write({"rank_rng": states})
        dist.barrier()  # no rank goes on (and perhaps reads the file) before it is written

    def rng_state(self, state: dict) -> torch.Tensor:
        saved = state["extra"].get("rank_rng", [])
        return saved[self.rank] if len(saved) == self.world else state["rng"]["torch"]


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
    parser.add_argument("--compare", type=Path, default=None, help="run 1 and 2 processes here")
    args = parser.parse_args()
    if args.compare is not None:
        return compare(args.compare, sys.argv[1 : sys.argv.index("--compare")]
                       + sys.argv[sys.argv.index("--compare") + 2 :])

    distributed = "LOCAL_RANK" in os.environ  # set by torchrun
    device = init_distributed() if distributed else utils.pick_device()
    ranks = Ranks(device) if distributed else utils.OneProcess()
    rank, world = ranks.rank, ranks.world
    corpus = utils.load_corpus()
    torch.manual_seed(0)  # the same initial weights on every rank (DDP also broadcasts rank 0's)
    model = utils.build_model(
        corpus.tokenizer, block_size=args.block_size, n_embd=args.n_embd, n_layer=args.n_layer,
        n_head=4, mlp_hidden=2 * args.n_embd, dropout=args.dropout,
    ).to(device)
    cfg = utils.TrainConfig(
        max_steps=args.steps, batch_size=args.batch_size, warmup_steps=max(1, args.steps // 15),
        eval_interval=max(1, args.steps // 2), eval_iters=2,
    )
    get_batch = utils.book_batches(corpus.splits, args.block_size, args.batch_size)
    history = utils.train(
        model, get_batch, cfg, tokenizer=corpus.tokenizer, checkpoint_path=args.checkpoint,
        stop_at=args.stop_at, ranks=ranks, progress=False,
    )
    if rank == 0 and args.out is not None:
        # speed between the first and the last loss estimate: the first steps pay start-up costs
        timed_steps = history["step"][-1] - history["step"][0]
        timed_seconds = history["seconds"][-1] - history["seconds"][0]
        launcher = f"torchrun --standalone --nproc_per_node={world}" if distributed else "python"
        summary = {
            "command": " ".join([launcher, "tests/ddp_pretrain.py", *sys.argv[1:]]),
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


def compare(out: Path, args: list[str]) -> None:
    """Run this script on one process and under torchrun on two (CPU only); record both."""
    script, env = str(Path(__file__).resolve()), {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    runs = []
    with tempfile.TemporaryDirectory() as folder:
        for i, launcher in enumerate(([sys.executable], torchrun)):
            path = Path(folder) / f"{i}.json"
            subprocess.run([*launcher, script, *args, "--out", str(path)], check=True, env=env)
            runs.append(json.loads(path.read_text()))
    for run in runs:  # the temporary --out is not part of the command to re-run
        run["command"] = run["command"].split(" --out ")[0]
    utils.write_text_atomic(out, json.dumps({"runs": runs}, indent=1) + "\n")


if __name__ == "__main__":
    main()
