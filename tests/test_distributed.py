"""utils.train on two CPU processes (DistributedDataParallel, gloo on 127.0.0.1).

One launch of two processes runs three trainings of a tiny model:

1. without dropout, 8 steps with a shared batch of 8 sequences: each rank trains on 4 of them.
   One process with the whole batch of 8 must see the same losses. Not bit for bit: DDP sums the
   two ranks' gradients in another order than one process's backward pass does, and float32
   sums depend on their order (differences near 1e-7 relative, which Adam then carries along).
   TOLERANCE below allows 100 times the differences measured (4.8e-7 at most over 8 steps).
2. with dropout, 8 steps uninterrupted;
3. the same, stopped at step 4 into a checkpoint, then resumed by a model with other weights.
   Runs 2 and 3 must agree exactly: weights, batches and every rank's dropout stream resume.
"""

import json
import os
import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import utils
from ddp_pretrain import Ranks
from helpers import TOKENIZER, tiny_batches, tiny_model

TOLERANCE = 5e-5  # absolute, on losses near 3 nats; see the module docstring
CFG = utils.TrainConfig(
    max_steps=8, batch_size=8, lr=3e-3, min_lr=3e-4, warmup_steps=2, eval_interval=4, eval_iters=2
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def worker(rank: int, port: int, folder: str) -> None:
    """One of two ranks: the three trainings of the module docstring; rank 0 writes results."""
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2
    )
    torch.set_num_threads(1)
    get_batch = tiny_batches(batch_size=CFG.batch_size)
    run = dict(tokenizer=TOKENIZER, ranks=Ranks(torch.device("cpu")), progress=False)
    plain = utils.train(tiny_model(), get_batch, CFG, **run)
    straight_model = tiny_model(dropout=0.1)
    straight = utils.train(straight_model, get_batch, CFG, **run)
    path = Path(folder) / "run.pt"
    utils.train(tiny_model(dropout=0.1), get_batch, CFG, checkpoint_path=path, stop_at=4, **run)
    resumed_model = tiny_model(dropout=0.1, seed=123)  # other weights: all must come from the file
    resumed = utils.train(resumed_model, get_batch, CFG, checkpoint_path=path, **run)
    same_weights = all(
        torch.equal(a, b)
        for a, b in zip(
            straight_model.state_dict().values(), resumed_model.state_dict().values(), strict=True
        )
    )
    if rank == 0:
        result = {
            "plain": plain["train_step_loss"],
            "plain_val": plain["losses"]["val"],
            "straight": straight["train_step_loss"],
            "resumed": resumed["train_step_loss"],
            "resumed_steps": resumed["step"],
            "same_weights": same_weights,
            "checkpoint_step": utils.load_checkpoint(path)["step"],
            "rank_rng": len(utils.load_checkpoint(path)["extra"]["rank_rng"]),
        }
        (Path(folder) / "result.json").write_text(json.dumps(result))
    dist.destroy_process_group()


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("ddp")
    if Path("/sys/class/net/lo").exists():  # keep gloo on the loopback interface
        os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    mp.spawn(worker, args=(free_port(), str(folder)), nprocs=2, join=True)
    return json.loads((folder / "result.json").read_text())


def test_two_processes_match_one_with_the_doubled_batch(two_processes):
    one = utils.train(tiny_model(), tiny_batches(batch_size=CFG.batch_size), CFG,
                      tokenizer=TOKENIZER, progress=False)
    assert len(two_processes["plain"]) == len(one["train_step_loss"]) == CFG.max_steps
    differences = [abs(a - b) for a, b in zip(two_processes["plain"], one["train_step_loss"],
                                               strict=True)]
    assert max(differences) < TOLERANCE, differences
    assert two_processes["plain_val"] == pytest.approx(one["losses"]["val"], abs=TOLERANCE)
    assert two_processes["plain"][-1] < two_processes["plain"][0]  # it did learn


def test_two_processes_resume_exactly(two_processes):
    assert two_processes["resumed"] == two_processes["straight"]
    assert two_processes["resumed_steps"] == [4, 8]
    assert two_processes["same_weights"]
    assert two_processes["checkpoint_step"] == CFG.max_steps
    assert two_processes["rank_rng"] == 2  # both ranks' dropout streams are in the checkpoint


def test_batch_must_split_evenly_between_processes():
    ranks = Ranks(torch.device("cpu"), rank=0, world=3)  # the share train() asks of every batch
    x, y = tiny_batches(batch_size=8)("train", torch.Generator())
    with pytest.raises(ValueError, match="batch_size=8 cannot be shared by 3 processes"):
        ranks.share(x, y)
    assert [len(t) for t in Ranks(torch.device("cpu"), rank=1, world=2).share(x, y)] == [4, 4]
