"""A fresh Colab runtime, simulated: a copy of the repository (tracked files and the book, no
checkpoints/) runs lesson 7 in quick mode. It loads both models with the helpers lessons 4 to 7
share: they must be the released weights, said so; lesson 6's scores, never run in this runtime,
must come from the release too; and data/released_weights/ must stay as it was (quick mode never
writes there).

Fails while data/released_weights/ is missing: the lessons would then train stand-ins.
"""

import hashlib
import os
import shutil
import subprocess
import sys

import nbformat
import notebook_hygiene
import pytest
import utils

ROOT = utils.REPO_ROOT


def digests(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*"))}


@pytest.fixture(scope="module")
def fresh_copy(tmp_path_factory):
    for name in ("base.pt", "finetuned.pt", "evaluation.json"):
        assert (utils.RELEASED_DIR / name).is_file(), (
            f"data/released_weights/{name} is missing: after the full run, "
            "`python tests/release_weights.py` writes it (then commit it)."
        )
    copy = tmp_path_factory.mktemp("fresh") / "GPT-0.5M"
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.splitlines()
    for name in [*tracked, "data/alice.txt"]:
        if (ROOT / name).is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, copy / name)
    assert not (copy / "checkpoints").exists()
    return copy


def test_a_lesson_opened_from_its_badge_shows_the_released_model(fresh_copy):
    lesson, models = "07_stats", 2  # base and fine-tuned
    before = digests(fresh_copy / "data" / "released_weights")
    out = fresh_copy / f"{lesson}_run.ipynb"
    done = subprocess.run(
        [sys.executable, "-m", "nbconvert", "--to", "notebook", "--execute", "--output", str(out),
         "--ExecutePreprocessor.timeout=1800", str(fresh_copy / "notebooks" / f"{lesson}.ipynb")],
        env={**os.environ, "GPT05M_QUICK": "1", "MPLBACKEND": "Agg"},
        cwd=fresh_copy / "notebooks", capture_output=True, text=True,
    )
    assert done.returncode == 0, f"{lesson} failed in the fresh copy:\n{done.stderr[-3000:]}"
    notebook = nbformat.read(out, as_version=4)
    text = "".join(t for c in notebook.cells if c.cell_type == "code"
                   for t in notebook_hygiene.output_texts(c))
    sources = [line for line in text.splitlines() if line.startswith("model: ")]
    assert len(sources) == models and all(
        line.startswith("model: released weights data/released_weights/") for line in sources
    ), sources
    assert "STAND-IN" not in text
    assert "scores: data/released_weights/evaluation.json (full run of lesson 6)" in text
    assert digests(fresh_copy / "data" / "released_weights") == before
    assert not (fresh_copy / "data" / "released_weights" / "base_short.pt").exists()
