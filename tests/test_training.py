"""Training loop and checkpoints: schedule, exact resume, interrupts, NaN, validated loading."""

import dataclasses
import itertools
import math

import pytest
import torch
import utils
from helpers import TOKENIZER, tiny_batches, tiny_model

CFG = utils.TrainConfig(
    max_steps=12, batch_size=4, lr=3e-3, min_lr=3e-4, warmup_steps=3, eval_interval=5, eval_iters=2
)


def test_lr_schedule_warms_up_then_decays_to_min():
    lrs = [utils.lr_at(s, CFG) for s in range(CFG.max_steps + 1)]
    assert lrs[0] == pytest.approx(CFG.lr / 3) and lrs[2] == pytest.approx(CFG.lr)
    assert all(a >= b for a, b in itertools.pairwise(lrs[2:]))
    assert lrs[-1] == pytest.approx(CFG.min_lr)


def test_wsd_schedule_is_flat_then_decays_linearly_over_its_last_share():
    cfg = utils.TrainConfig(**{**CFG.__dict__, "max_steps": 20, "schedule": "wsd",
                               "decay_fraction": 0.25})
    lrs = [utils.lr_at(s, cfg) for s in range(cfg.max_steps + 1)]
    assert lrs[0] == pytest.approx(cfg.lr / 3)
    assert lrs[2:16] == [pytest.approx(cfg.lr)] * 14  # stable until the last 5 of 20 steps
    decay = lrs[15:]
    steps = [a - b for a, b in itertools.pairwise(decay)]
    assert steps == [pytest.approx(steps[0])] * len(steps) and steps[0] > 0  # a straight line
    assert lrs[-1] == pytest.approx(cfg.min_lr)


MUON = utils.TrainConfig(**{**CFG.__dict__, "optimizer": "muon", "schedule": "wsd"})


def test_muon_takes_the_blocks_matrices_and_adamw_the_rest():
    model = tiny_model()
    adamw, muon = utils.make_optimizer(model, MUON, torch.device("cpu"))
    names = {id(p): n for n, p in model.named_parameters()}
    to_muon = [names[id(p)] for g in muon.param_groups for p in g["params"]]
    to_adamw = [names[id(p)] for g in adamw.param_groups for p in g["params"]]
    assert sorted(to_muon + to_adamw) == sorted(names.values())  # every tensor, once
    assert all(n.startswith("blocks.") and n.endswith(".weight") for n in to_muon)
    assert "tok_emb.weight" in to_adamw and not any(n.startswith("ln") for n in to_muon)
    assert muon.param_groups[0]["peak_lr"] == MUON.muon_lr


@pytest.mark.skipif(not hasattr(torch.optim, "Muon"), reason="torch.optim.Muon needs PyTorch 2.9")
def test_our_muon_follows_torch_muon():
    torch.manual_seed(0)
    ours = torch.nn.Parameter(torch.randn(48, 16) * 0.1)
    theirs = torch.nn.Parameter(ours.detach().clone())
    opt_ours = utils.Muon([ours], lr=0.02, weight_decay=0.1)
    opt_theirs = torch.optim.Muon([theirs], lr=0.02, weight_decay=0.1)
    for _ in range(5):
        ours.grad, theirs.grad = (g := torch.randn(48, 16)), g.clone()
        opt_ours.step()
        opt_theirs.step()
    # theirs orthogonalises in bf16 on the CPU, ours in fp32: equal to bf16's precision
    assert (ours - theirs).abs().max() < 1e-2 * theirs.abs().max()


def test_newton_schulz_pushes_singular_values_towards_one():
    u, _, v = torch.linalg.svd(torch.randn(64, 16), full_matrices=False)
    g = u @ torch.diag(torch.logspace(-1, 1, 16)) @ v  # singular values 0.1 ... 10
    s = torch.linalg.svdvals(utils.newton_schulz(g))
    assert s.min() > 0.5 and s.max() < 1.5  # from a spread of 100x to within 0.5-1.5


def test_muon_run_resumes_exactly(tmp_path):
    straight = tiny_model(dropout=0.1)
    h1 = utils.train(straight, tiny_batches(), MUON, tokenizer=TOKENIZER, progress=False)
    path = tmp_path / "run.pt"
    utils.train(tiny_model(dropout=0.1), tiny_batches(), MUON, tokenizer=TOKENIZER,
                checkpoint_path=path, stop_at=6, progress=False)
    second = tiny_model(dropout=0.1, seed=123)
    h2 = utils.train(second, tiny_batches(), MUON, tokenizer=TOKENIZER, checkpoint_path=path,
                     progress=False)
    assert h2["train_step_loss"] == h1["train_step_loss"]
    for a, b in zip(straight.state_dict().values(), second.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_training_lowers_the_loss_and_records_history():
    model = tiny_model()
    cfg = utils.TrainConfig(**{**CFG.__dict__, "max_steps": 60, "eval_interval": 20})
    history = utils.train(model, tiny_batches(), cfg, tokenizer=TOKENIZER, progress=False)
    assert history["step"] == [20, 40, 60]
    assert len(history["train_step_loss"]) == 60
    assert (
        history["losses"]["val"][-1] < history["losses"]["val"][0] < math.log(TOKENIZER.vocab_size)
    )


def test_loss_estimates_do_not_change_the_trained_weights():
    # estimates draw their own batches and run without dropout: how often they run is free
    weights = []
    for interval, iters in ((3, 4), (12, 1)):
        model = tiny_model(dropout=0.1)
        cfg = dataclasses.replace(MUON, eval_interval=interval, eval_iters=iters)
        history = utils.train(model, tiny_batches(), cfg, tokenizer=TOKENIZER, progress=False)
        assert len(history["step"]) == 12 // interval
        weights.append(model.state_dict())
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_resume_equals_an_uninterrupted_run(tmp_path):
    straight = tiny_model(dropout=0.1)
    h1 = utils.train(straight, tiny_batches(), CFG, tokenizer=TOKENIZER, progress=False)

    path = tmp_path / "run.pt"
    first = tiny_model(dropout=0.1)
    utils.train(
        first,
        tiny_batches(),
        CFG,
        tokenizer=TOKENIZER,
        checkpoint_path=path,
        stop_at=6,
        progress=False,
    )
    assert utils.load_checkpoint(path)["step"] == 6
    second = tiny_model(dropout=0.1, seed=123)  # different init: everything must come from the file
    h2 = utils.train(
        second, tiny_batches(), CFG, tokenizer=TOKENIZER, checkpoint_path=path, progress=False
    )

    assert h2["train_step_loss"] == h1["train_step_loss"]
    assert h2["step"] == [5, 6, 10, 12]  # the early stop at step 6 adds one estimate
    kept = [h2["step"].index(step) for step in h1["step"]]
    assert [h2["losses"]["val"][i] for i in kept] == h1["losses"]["val"]
    for a, b in zip(straight.state_dict().values(), second.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_ctrl_c_saves_a_checkpoint_that_resumes(tmp_path):
    path = tmp_path / "run.pt"
    batches = tiny_batches()
    calls = 0

    def interrupted(split, generator):
        nonlocal calls
        if split == "train":
            calls += 1
            if calls == 8:
                raise KeyboardInterrupt
        return batches(split, generator)

    with pytest.raises(KeyboardInterrupt):
        utils.train(
            tiny_model(),
            interrupted,
            CFG,
            tokenizer=TOKENIZER,
            eval_splits=("val",),  # so only training steps draw "train" batches
            checkpoint_path=path,
            progress=False,
        )
    assert utils.load_checkpoint(path)["step"] == 7
    history = utils.train(
        tiny_model(), batches, CFG, tokenizer=TOKENIZER, checkpoint_path=path, progress=False
    )
    assert len(history["train_step_loss"]) == CFG.max_steps


def test_nan_loss_stops_with_a_clear_error():
    model = tiny_model()
    with torch.no_grad():
        model.tok_emb.weight.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="step 0"):
        utils.train(model, tiny_batches(), CFG, tokenizer=TOKENIZER, progress=False)


def test_checkpoint_is_plain_and_atomic(tmp_path):
    path = tmp_path / "ckpt.pt"
    model = tiny_model()
    utils.train(
        model, tiny_batches(), CFG, tokenizer=TOKENIZER, checkpoint_path=path, progress=False
    )
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]  # the temporary file was renamed
    state = torch.load(path, weights_only=True)  # plain tensors and Python types only
    assert set(state) >= {
        "model_config",
        "tokenizer",
        "model",
        "optimizer",
        "step",
        "history",
        "rng",
    }
    loaded, tokenizer, _ = utils.load_model(path)
    assert tokenizer == TOKENIZER
    x = torch.randint(TOKENIZER.vocab_size, (1, 8))
    assert torch.equal(loaded(x)[0], model.eval()(x)[0])


def test_missing_truncated_and_foreign_checkpoints_raise_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="No checkpoint at"):
        utils.load_checkpoint(tmp_path / "nope.pt")

    path = tmp_path / "ckpt.pt"
    utils.save_checkpoint(path, tiny_model(), TOKENIZER)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ValueError, match="truncated"):
        utils.load_checkpoint(truncated)

    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(ValueError, match=r"not a GPT-0\.5M checkpoint"):
        utils.load_checkpoint(foreign)


def test_resume_refuses_another_vocabulary_or_plan(tmp_path):
    path = tmp_path / "run.pt"
    utils.train(
        tiny_model(),
        tiny_batches(),
        CFG,
        tokenizer=TOKENIZER,
        checkpoint_path=path,
        stop_at=3,
        progress=False,
    )
    other = utils.CharTokenizer(TOKENIZER.chars[:-1])
    with pytest.raises(ValueError, match="vocabulary differs"):
        utils.train(
            tiny_model(), tiny_batches(), CFG, tokenizer=other, checkpoint_path=path, progress=False
        )
    longer = utils.TrainConfig(**{**CFG.__dict__, "max_steps": 99})
    with pytest.raises(ValueError, match="training config"):
        utils.train(
            tiny_model(),
            tiny_batches(),
            longer,
            tokenizer=TOKENIZER,
            checkpoint_path=path,
            progress=False,
        )


def test_time_budget_stops_early_and_records_a_final_estimate():
    cfg = utils.TrainConfig(**{**CFG.__dict__, "max_steps": 100_000, "eval_interval": 1000})
    history = utils.train(
        tiny_model(), tiny_batches(), cfg, tokenizer=TOKENIZER, time_budget=0.5, progress=False
    )
    assert 0 < len(history["train_step_loss"]) < cfg.max_steps
    assert history["step"] == [len(history["train_step_loss"])]
    assert history["seconds"][-1] >= 0.5


def test_resume_refuses_a_checkpoint_that_started_from_other_weights(tmp_path):
    path = tmp_path / "finetune.pt"
    run = dict(tokenizer=TOKENIZER, checkpoint_path=path, progress=False)
    utils.train(tiny_model(), tiny_batches(), CFG, origin="base aaaa", stop_at=3, **run)
    with pytest.raises(ValueError, match="started from 'base aaaa'"):
        utils.train(tiny_model(), tiny_batches(), CFG, origin="base bbbb", **run)
    assert utils.weights_fingerprint(tiny_model(seed=0)) == utils.weights_fingerprint(
        tiny_model(seed=0)
    )
    assert utils.weights_fingerprint(tiny_model(seed=0)) != utils.weights_fingerprint(
        tiny_model(seed=1)
    )
