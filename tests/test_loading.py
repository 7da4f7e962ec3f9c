"""Which model a lesson loads: this machine's checkpoint, else the released weights, else a short
stand-in under a banner; and the release script that writes data/released_weights/."""

import json

import pytest
import release_weights
import torch
import utils
from helpers import TEXT, TOKENIZER, tiny_model

CORPUS = utils.Corpus(
    TEXT, TEXT[:1200], TEXT[1200:],
    [{"question": "Who was tired?", "answer": "alice", "split": "train", "fact": "tired"}],
    TOKENIZER, {"train": torch.tensor(TOKENIZER.encode(TEXT[:1200])),
                "val": torch.tensor(TOKENIZER.encode(TEXT[1200:]))},
)
TINY_PLAN = utils.TrainConfig(max_steps=2, batch_size=2, warmup_steps=1, eval_interval=2,
                              eval_iters=1)


@pytest.fixture
def places(tmp_path, monkeypatch):
    """Checkpoints and released weights in ``tmp_path``; stand-ins train two tiny steps."""
    monkeypatch.setattr(utils, "BASE_CHECKPOINT", tmp_path / "ckpt" / "base.pt")
    monkeypatch.setattr(utils, "FINETUNED_CHECKPOINT", tmp_path / "ckpt" / "finetuned.pt")
    monkeypatch.setattr(utils, "RELEASED_DIR", tmp_path / "released")
    monkeypatch.setattr(utils, "PRETRAIN_SHORT", TINY_PLAN)
    monkeypatch.setattr(utils, "FINETUNE", TINY_PLAN)
    return tmp_path


def save(path, tokenizer=TOKENIZER, seed=0):
    model = tiny_model(seed=seed)
    if tokenizer is not TOKENIZER:
        model = utils.GPT(utils.GPTConfig(**{**model.config.__dict__, "vocab_size": 3}))
    utils.save_checkpoint(path, model, tokenizer, step=7)


def test_the_checkpoint_comes_first_then_the_released_weights(places, capsys):
    save(places / "released" / "base.pt", seed=1)
    _, _, state = utils.load_or_pretrain(CORPUS, torch.device("cpu"), progress=False)
    assert state["source"] == "released"
    assert capsys.readouterr().out == (
        "model: released weights "
        f"{utils.display_path(places / 'released' / 'base.pt')} "
        "(the series run's model, released with the lessons)\n"
    )
    save(places / "ckpt" / "base.pt")
    _, _, state = utils.load_or_pretrain(CORPUS, torch.device("cpu"), progress=False)
    assert state["source"] == "checkpoint"
    assert capsys.readouterr().out.startswith("model: this machine's checkpoint ")


def test_no_model_anywhere_trains_a_stand_in_under_a_banner(places, capsys):
    _, _, state = utils.load_or_finetune(CORPUS, torch.device("cpu"), progress=False)
    out = capsys.readouterr().out
    assert state["source"] == "stand-in" and state["step"] == 10  # by_mode(full=300, quick=10)
    assert out.count("STAND-IN MODEL") == 2  # the base model, then the fine-tuned one
    assert "will NOT match the text" in out and out.count("+---") == 4
    assert out.splitlines()[-1].startswith("model: stand-in ")
    assert not (places / "released").exists()  # a stand-in is never released


def test_released_weights_of_another_vocabulary_are_refused_with_a_message(places, capsys):
    save(places / "released" / "base.pt", tokenizer=utils.CharTokenizer.from_texts(["abc"]))
    before = (places / "released" / "base.pt").read_bytes()
    _, _, state = utils.load_or_pretrain(CORPUS, torch.device("cpu"), progress=False)
    out = capsys.readouterr().out
    assert out.startswith("Not using the released weights: ") and "another vocabulary" in out
    assert state["source"] == "stand-in"
    assert (places / "released" / "base.pt").read_bytes() == before  # never overwritten


def test_a_checkpoint_of_another_vocabulary_is_an_error(places):
    save(places / "ckpt" / "base.pt", tokenizer=utils.CharTokenizer.from_texts(["abc"]))
    with pytest.raises(ValueError, match=r"another vocabulary.*Delete it"):
        utils.load_or_pretrain(CORPUS, torch.device("cpu"), progress=False)


def finished_run(path, plan, origin=""):
    model = tiny_model()
    optimizers = utils.make_optimizer(model, plan, torch.device("cpu"))
    utils.save_checkpoint(path, model, TOKENIZER, optimizers=optimizers, train_config=plan,
                          step=plan.max_steps, extra={"origin": origin})
    return model


def test_release_refuses_quick_mode_and_unfinished_runs(tmp_path, monkeypatch):
    with pytest.raises(SystemExit, match="Quick mode"):
        release_weights.release(tmp_path, tmp_path / "out")
    monkeypatch.setattr(utils, "QUICK", False)
    monkeypatch.setattr(utils, "PRETRAIN", utils.TrainConfig(max_steps=3000))
    finished_run(tmp_path / "base.pt", TINY_PLAN)  # a quick-mode-sized run
    with pytest.raises(SystemExit, match="not a finished run of the full plan"):
        release_weights.release(tmp_path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def lesson_6_file(path, loss, mode="full"):
    """A lesson-6-shaped evaluation.json whose two book losses are ``loss``, with a row."""
    scores = {"n": 1, "exact_match": 1.0, "f1": 1.0, "rows": [{"question": "Who was tired?"}]}
    path.write_text(json.dumps({
        "mode": mode, "book": {key: {"loss": loss} for key in ("base", "fine-tuned")},
        "qa": {key: {"closed": {"train": scores}} for key in ("base", "fine-tuned")},
    }))


def test_release_writes_model_only_weights_and_lesson_6s_scores(tmp_path, monkeypatch):
    monkeypatch.setattr(utils, "QUICK", False)
    monkeypatch.setattr(utils, "PRETRAIN", TINY_PLAN)
    monkeypatch.setattr(utils, "FINETUNE", TINY_PLAN)
    monkeypatch.setattr(utils, "load_corpus", lambda: CORPUS)
    base = finished_run(tmp_path / "base.pt", TINY_PLAN)
    origin = json.dumps({"base": utils.weights_fingerprint(base)})
    finished_run(tmp_path / "finetuned.pt", TINY_PLAN, origin)  # the same weights as base
    loss = utils.evaluate_text(base, CORPUS.splits["val"])
    for wrong, message in (({"loss": loss + 0.01}, "scored another base model"),
                           ({"loss": loss, "mode": "quick"}, "from a quick run")):
        lesson_6_file(tmp_path / "evaluation.json", **wrong)
        with pytest.raises(SystemExit, match=message):
            release_weights.release(tmp_path, tmp_path / "out")
        assert not (tmp_path / "out").exists()  # refused before writing anything
    lesson_6_file(tmp_path / "evaluation.json", loss)
    written = release_weights.release(tmp_path, tmp_path / "out")
    assert [p.name for p in written] == ["base.pt", "finetuned.pt", "evaluation.json"]
    scores = json.loads(written[2].read_text())
    assert scores["qa"]["fine-tuned"]["closed"]["train"] == {"n": 1, "exact_match": 1.0, "f1": 1.0}
    for path in written[:2]:
        state = utils.load_checkpoint(path)
        assert (state["optimizer"], state["rng"], state["scaler"]) == (None, None, None)
        assert state["step"] == 2 and state["history"] and state["extra"]["origin"] is not None
        assert path.stat().st_size < (tmp_path / path.name).stat().st_size
    model, _, _ = utils.load_model(written[0])
    assert utils.weights_fingerprint(model) == utils.weights_fingerprint(base)
    assert not list((tmp_path / "out").glob("*.tmp"))
