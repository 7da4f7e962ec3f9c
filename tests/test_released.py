"""The released weights (data/released_weights/, written by tests/release_weights.py) and the
committed outputs of the lessons agree: recomputing a figure of each gives it back.

These tests fail while data/released_weights/ is missing: a lesson opened from its badge would
then train a stand-in instead of showing the real model.
"""

import json
import math
import re
from pathlib import Path

import nbformat
import notebook_hygiene
import pytest
import torch
import utils

RELEASED = utils.RELEASED_DIR
NOTEBOOKS = utils.REPO_ROOT / "notebooks"
FIX = "after the full run, `python tests/release_weights.py` writes them (then commit them)"


def released(name: str) -> Path:
    path = RELEASED / name
    assert path.is_file(), f"{utils.display_path(path)} is missing: {FIX}."
    return path


def cell_output(notebook: str, *needles: str) -> str:
    """The committed text output of the one code cell of ``notebook`` whose source holds every
    one of ``needles``."""
    cells = [c for c in nbformat.read(NOTEBOOKS / notebook, as_version=4).cells
             if c.cell_type == "code" and all(n in c.source for n in needles)]
    assert len(cells) == 1, f"{notebook}: expected one code cell with {needles}, got {len(cells)}"
    text = "".join(notebook_hygiene.output_texts(cells[0]))
    assert text.strip(), f"{notebook}: the cell with {needles} has no committed output"
    return text


def committed_val_loss() -> float:
    """Lesson 3 §11's row "this model (val)  <nats/char>  <bits/char>  <perplexity>"."""
    text = cell_output("03_pretraining.ipynb", "evaluate_text", "this model (val)")
    match = re.search(r"^this model \(val\)\s+(\d+\.\d+)\s+(\d+\.\d+)\s", text, re.M)
    assert match, f"03_pretraining.ipynb: no 'this model (val)' row in the output:\n{text}"
    nats, bits = map(float, match.groups())
    assert math.isclose(nats / math.log(2), bits, abs_tol=1e-3), "the row's columns disagree"
    return nats


def committed_answers() -> list[tuple[str, str, str]]:
    """Lesson 6's ask() cell: (question, mode, answer) for every answer it printed."""
    text = cell_output("06_evaluation.ipynb", "def ask(", "show_answer(")
    found, question = [], None
    for line in text.splitlines():
        if line.startswith("Q: "):
            question = line[3:]
        elif m := re.match(r"\s+(closed-book|open-book)\s*: (.*)$", line):
            assert question is not None, f"06_evaluation.ipynb: an answer before a question: {line}"
            found.append((question, m[1], m[2]))
    assert found, f"06_evaluation.ipynb: no answers in the ask() cell's output:\n{text}"
    return found


def committed_qa_results() -> dict:
    """Lesson 6's one-line results: ``QA_RESULTS {json}``."""
    text = cell_output("06_evaluation.ipynb", 'print("QA_RESULTS "')
    match = re.search(r"^QA_RESULTS (\{.*\})$", text, re.M)
    assert match, f"06_evaluation.ipynb: no QA_RESULTS line in the output:\n{text}"
    return json.loads(match[1])


@pytest.fixture(scope="module")
def corpus():
    return utils.load_corpus()


def test_released_base_model_gives_lesson_3s_validation_loss(corpus):
    model, _, _ = utils.load_checked(released("base.pt"), corpus, torch.device("cpu"))
    assert utils.evaluate_text(model, corpus.splits["val"]) == pytest.approx(
        committed_val_loss(), abs=1e-4
    )


def test_released_finetuned_model_gives_lesson_6s_answers(corpus):
    path = released("finetuned.pt")
    model, tokenizer, _ = utils.load_checked(path, corpus, torch.device("cpu"))
    book_index = utils.Retriever(corpus.book)  # as lesson 6 builds it
    for question, mode, shown in committed_answers():
        passage = book_index.search(question) if mode == "open-book" else None
        assert utils.answer(model, tokenizer, question, passage) == shown, (question, mode)


def test_released_finetuned_model_answers_a_batch_as_one_by_one(corpus):
    model, tokenizer, _ = utils.load_checked(released("finetuned.pt"), corpus, torch.device("cpu"))
    by_length: dict[int, list] = {}  # closed-book prompts of equal length decode side by side
    for r in utils.qa_split(corpus.qa, "paraphrase") + utils.qa_split(corpus.qa, "train"):
        by_length.setdefault(len(tokenizer.encode(utils.qa_prompt(r["question"]))), []).append(r)
    groups = [group[:4] for group in by_length.values() if len(group) >= 4][:4]
    records = [r for group in groups for r in group]  # four batches of four, and more open-book
    assert len(records) == 16
    book_index = utils.Retriever(corpus.book)
    for retriever in (None, book_index):
        rows = utils.evaluate_qa(model, tokenizer, records, retriever)["rows"]
        for r in rows:
            assert r["predicted"] == utils.answer(model, tokenizer, r["question"], r.get("passage"))
        assert any(r["stopped"] for r in rows)


def test_released_scores_are_lesson_6s():
    scores = json.loads(released("evaluation.json").read_text(encoding="utf-8"))
    shown = committed_qa_results()
    assert scores["mode"] == "full"
    for key in ("base", "fine-tuned"):
        assert scores["book"][key]["loss"] == pytest.approx(shown["book_val_loss"][key], abs=1e-4)
    assert scores["book"]["base"]["loss"] == pytest.approx(committed_val_loss(), abs=1e-4)
    for model, modes in (("fine-tuned", shown), ("base", shown["base"])):
        for mode in ("closed", "open"):
            for split, figures in modes[mode].items():
                kept = {k: scores["qa"][model][mode][split][k] for k in figures}
                assert kept == pytest.approx(figures), (model, mode, split)


def test_released_weights_are_model_only():
    for name in ("base.pt", "finetuned.pt"):
        state = utils.load_checkpoint(released(name))
        assert state["optimizer"] is None and state["rng"] is None and state["scaler"] is None
        assert released(name).stat().st_size < 8 * 2**20, f"{name} is larger than a few MB"
