"""Copy the final full run's models into data/released_weights/, model-only, for every lesson to
load when the reader's machine has no checkpoint of its own (a fresh Colab runtime, say).

    python tests/release_weights.py     # after the README's run command, from the repository root

Reads checkpoints/full/base.pt and finetuned.pt and writes data/released_weights/base.pt and
finetuned.pt atomically: config, vocabulary, weights and the metadata the lessons read
(train_config, step, history, extra), without optimizer, random-number or gradient-scaler state.
Also writes data/released_weights/evaluation.json: lesson 6's scores of these two models (from
checkpoints/full/evaluation.json, without the per-question rows), for lesson 7 to show.
Refuses quick mode, checkpoints that are not finished runs of the full plans, and scores whose
book losses these models do not give back.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "notebooks"))
import utils

SOURCE_DIR = utils.REPO_ROOT / "checkpoints" / "full"


def model_only(path: Path, plan: utils.TrainConfig) -> dict[str, Any]:
    """The checkpoint at ``path`` without its resume state; refused unless it finished ``plan``."""
    utils.load_model(path)  # the config, vocabulary and weights fit together
    state = utils.load_checkpoint(path)
    if state["train_config"] != asdict(plan) or state["step"] != plan.max_steps:
        raise SystemExit(
            f"{utils.display_path(path)} is not a finished run of the full plan "
            f"({state['step']} steps of {state['train_config']}): a quick-mode or interrupted "
            "run? Run the README's run command first."
        )
    extra = {key: value for key, value in state["extra"].items() if key != "rank_rng"}
    return {**state, "optimizer": None, "rng": None, "scaler": None, "extra": extra}


def release(source: Path = SOURCE_DIR, target: Path = utils.RELEASED_DIR) -> list[Path]:
    """Write ``target``/base.pt and finetuned.pt from ``source``; return the written paths."""
    if utils.QUICK:
        raise SystemExit("Quick mode is on (GPT05M_QUICK): unset it; it never releases weights.")
    base = model_only(source / "base.pt", utils.PRETRAIN)
    tuned = model_only(source / "finetuned.pt", utils.FINETUNE)
    base_model, _, _ = utils.load_model(source / "base.pt")
    if json.loads(tuned["extra"]["origin"])["base"] != utils.weights_fingerprint(base_model):
        raise SystemExit("finetuned.pt was not fine-tuned from this base.pt: run lesson 5 again.")
    tuned_model, _, _ = utils.load_model(source / "finetuned.pt")
    models = {"base": base_model, "fine-tuned": tuned_model}  # lesson 6's names
    scores = lesson_6_scores(source / "evaluation.json", models)
    written = []
    for name, state in (("base.pt", base), ("finetuned.pt", tuned)):
        utils.write_atomic(target / name, lambda file, state=state: torch.save(state, file))
        written.append(target / name)
    utils.write_text_atomic(target / "evaluation.json", json.dumps(scores, indent=1))
    return [*written, target / "evaluation.json"]


def lesson_6_scores(path: Path, models: dict[str, utils.GPT]) -> dict[str, Any]:
    """Lesson 6's ``evaluation.json`` at ``path`` without its rows; refused unless it is a full
    run whose book losses ``models`` (by lesson 6's names) give back."""
    if not path.exists():
        raise SystemExit(f"{utils.display_path(path)} is missing: run lesson 6 first.")
    evaluation = json.loads(path.read_text(encoding="utf-8"))
    if evaluation["mode"] != "full":
        raise SystemExit(f"{utils.display_path(path)} is from a {evaluation['mode']} run.")
    corpus = utils.load_corpus()
    for key, model in models.items():
        loss = utils.evaluate_text(model, corpus.splits["val"])
        scored = evaluation["book"][key]["loss"]
        if abs(loss - scored) > 1e-4:
            raise SystemExit(f"{utils.display_path(path)} scored another {key} model "
                             f"({scored:.4f}, not {loss:.4f}): run lesson 6 again.")
    qa = {model: {mode: {split: {k: v for k, v in scores.items() if k != "rows"}
                         for split, scores in splits.items()}
                  for mode, splits in modes.items()}
          for model, modes in evaluation["qa"].items()}
    return {"mode": evaluation["mode"], "book": evaluation["book"], "qa": qa}


if __name__ == "__main__":
    for path in release():
        print(f"wrote {utils.display_path(path)} ({path.stat().st_size / 2**20:.2f} MB)")
