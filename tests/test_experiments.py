"""The experiment scripts behind lesson 7's recorded files run, and compute what they claim."""

import json
import math

import ladder
import pytest
import qa_recipes
import scaling
import torch
import utils


@pytest.fixture(autouse=True)
def keep_threads():
    """The scripts' runs set one thread; give the rest of the test session its threads back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_steps_to_interpolates_between_estimates():
    curve = {"step": [50, 100, 150], "dev": [3.0, 2.0, 1.5]}
    assert ladder.steps_to(curve, 2.5) == pytest.approx(75)
    assert ladder.steps_to(curve, 3.5) == 50  # reached at the first estimate
    assert ladder.steps_to(curve, 1.0) is None


def test_a_ladder_run_trains_and_grades_on_the_dev_slice():
    result = ladder.run((ladder.BASELINE, 0, 3))
    assert result["steps"] == 3 and result["curve"]["step"] == [3]
    assert 0 < result["dev_loss"] < math.log(utils.load_corpus().tokenizer.vocab_size) + 0.5


def test_the_architecture_rung_builds_a_model_that_trains():
    result = ladder.run(({**ladder.BASELINE, "arch": "modern"}, 0, 2))
    assert math.isfinite(result["dev_loss"])


def test_a_scaling_run_keeps_its_best_dev_weights(tmp_path):
    job = {"size": "0.05M", "tokenizer": "chars", "steps": 4, "eval_every": 2, "merges": 8}
    job["scratch"] = str(tmp_path / "run.pt")
    record = scaling.run(job)
    assert record["best_dev_loss"] == min(record["dev_curve"]["dev"])
    assert record["dev_curve"]["step"] == [2, 4] and record["best_step"] in (2, 4)
    assert math.isfinite(record["val_bpc"]) and not (tmp_path / "run.pt").exists()
    json.dumps(record)  # plain types: it goes into the recorded JSON


def test_recorded_files_name_their_command():
    for name in ("ladder_cpu.json", "scaling_cpu.json", "benchmark_cpu.json"):
        record = json.loads((utils.REPO_ROOT / "tests" / name).read_text())
        assert record["command"].startswith("python tests/"), name


def test_the_lessons_recipe_is_the_ladders():
    recipe = json.loads((utils.REPO_ROOT / "tests" / "ladder_cpu.json").read_text())["recipe"]
    for name in ("optimizer", "schedule", "lr", "muon_lr", "weight_decay", "decay_fraction"):
        assert getattr(utils.PRETRAIN, name) == recipe.get(name, getattr(utils.TrainConfig, name))
    assert utils.GPTConfig().dropout == recipe["dropout"]
    assert recipe["arch"] == "gpt" and not recipe["compile"]  # utils.GPT, not compiled


def test_the_full_length_rung_keeps_a_change_only_beyond_the_seed_spread():
    def runs(*losses: float) -> tuple[dict, ...]:
        return tuple({"dev_loss": loss} for loss in losses)

    kept = ladder.full_length_rung(9, runs(1.50, 1.52), [], runs(1.45, 1.46))
    assert kept["gain"] == pytest.approx(0.055) and kept["noise"] == pytest.approx(0.02)
    assert kept["kept"]
    assert not ladder.full_length_rung(9, runs(1.50, 1.52), [], runs(1.49, 1.53))["kept"]
    recorded = json.loads((utils.REPO_ROOT / "tests" / "ladder_cpu.json").read_text())
    rung = recorded["full_length"]
    assert rung == ladder.full_length_rung(
        rung["steps"], (rung["recipe"]["seed0"], rung["recipe"]["seed1"]), rung["candidates"],
        (rung["winner"]["seed0"], rung["winner"]["seed1"]),
    )
    assert rung["winner"]["seed0"] == min(rung["candidates"], key=lambda r: r["dev_loss"])
    assert rung["kept"] == (recorded["recipe"] == rung["winner"]["seed0"]["settings"])


def test_reading_exercises_ask_for_a_word_of_their_passage_and_fit_the_block():
    corpus = utils.load_corpus()
    exercises = qa_recipes.reading_exercises(corpus.train_text, 200, seed=3)
    for exercise in exercises:
        assert "___" in exercise["question"] and len(exercise["question"]) <= 80
        assert exercise["answer"] in exercise["passage"].lower()
        assert utils.squash(exercise["passage"]) in utils.squash(corpus.train_text)
    utils.encode_qa(exercises, corpus.tokenizer, 256)  # raises if one does not fit
    assert exercises[:5] == qa_recipes.reading_exercises(corpus.train_text, 5, seed=3)[:5]
    examples = qa_recipes.recipe_examples(corpus, "both + reading")
    plain = utils.finetune_examples(corpus, qa_recipes.RECIPES["both + reading"])
    assert len(examples) == len(plain) + qa_recipes.READING["both + reading"]


def test_rescoring_the_ladder_records_each_seeds_steps_and_changes_nothing_else(tmp_path):
    recorded = json.loads((utils.REPO_ROOT / "tests" / "ladder_cpu.json").read_text())
    record = json.loads(json.dumps(recorded))
    for rung in record["rungs"]:
        rung.pop("seed_steps_to_target", None)
    ladder.add_times(record, record["timings"])
    for rung, before in zip(record["rungs"], recorded["rungs"], strict=True):
        if rung["seed1"] is None:
            continue
        steps = rung["seed_steps_to_target"]
        assert steps == [ladder.steps_to(rung[k]["curve"], record["target_dev_loss"])
                         for k in ("seed0", "seed1")]
        assert rung["steps_to_target"] == pytest.approx(sum(steps) / 2)
        assert rung == before  # the committed file is what --rescore writes


def test_the_unread_dev_book_is_kept_out_of_replay_and_out_of_the_dev_base(tmp_path, monkeypatch):
    corpus = utils.load_corpus()
    fit_text, dev_text = utils.split_text(corpus.train_text)
    dev_ids = torch.tensor(corpus.tokenizer.encode(dev_text))
    replayed, unread = qa_recipes.with_dev_book(corpus), qa_recipes.with_dev_book(corpus, True)
    assert torch.equal(replayed.splits["val"], dev_ids)
    assert torch.equal(unread.splits["val"], dev_ids)
    assert torch.equal(replayed.splits["train"], corpus.splits["train"])  # replay reads the slice
    assert len(unread.splits["train"]) == len(fit_text)  # replay stops before it
    assert torch.equal(unread.splits["train"], corpus.splits["train"][: len(fit_text)])
    tiny = utils.TrainConfig(max_steps=3, warmup_steps=1, eval_interval=3, eval_iters=1)
    monkeypatch.setattr(utils, "PRETRAIN", tiny)
    path = tmp_path / "dev_base.pt"
    model = qa_recipes.pretrain_dev_base(corpus, path)
    state = utils.load_checkpoint(path)
    assert state["extra"]["origin"] == qa_recipes.DEV_BASE_ORIGIN  # how main() tells it apart
    assert state["step"] == 3 and model.training is False
    assert state["history"]["losses"].keys() == {"train", "val"}  # val: the dev slice
