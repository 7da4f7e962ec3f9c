"""The repository around the lessons: one address and branch for badges and clones, a short
Colab first cell that clones once and installs nothing, the README's commands, the requirements,
and the notebook-hygiene check."""

import shutil
import subprocess
import sys
import types
from pathlib import Path

import nbformat
import notebook_hygiene
import pytest
import repository
import utils
from helpers import TOKENIZER, tiny_batches, tiny_model

ROOT = repository.ROOT
LESSONS = sorted(ROOT.glob("py_percent/0*.py"))


def setup_cell(path: Path) -> str:
    """The first code cell of a py_percent lesson (a Colab form: ``cellView="form"``)."""
    cells = path.read_text(encoding="utf-8").split("\n# %%")
    (first, *_) = [c for c in cells[1:] if not c.startswith((" [markdown]", "\n"))]
    assert first.startswith(' cellView="form"\n'), f"{path.name}: the first code cell is no form"
    return first.split("\n", 1)[1].strip() + "\n"


def readme_command(word: str) -> str:
    """The one command of the README's code blocks that sets up a fresh machine (it starts with
    ``pip install -r``) and contains ``word``."""
    blocks = ROOT.joinpath("README.md").read_text(encoding="utf-8").split("```")[1::2]
    lines = [line for block in blocks for line in block.splitlines()]
    (line,) = [line for line in lines if line.startswith("pip install -r") and word in line]
    return line


def test_badges_and_clone_urls_agree_with_the_one_address():
    assert repository.problems() == []


def test_the_check_fails_when_one_place_disagrees():
    found = repository.problems("https://github.com/someone-else/GPT-0.5M")
    assert any(p.startswith("README.md: Colab link") for p in found)
    assert any(p.startswith("README.md: git clone") for p in found)
    for path in repository.lesson_files():
        assert sum(f"/{path.name}:" in p for p in found) == 2  # its badge and its clone line
    found = repository.problems(branch="dev")
    assert any(p.startswith("README.md: Colab link") for p in found)
    for path in repository.lesson_files():
        assert sum(f"/{path.name}:" in p for p in found) == 2


def test_setting_a_fork_address_rewrites_every_place(tmp_path, monkeypatch):
    for path in [repository.PYPROJECT, repository.README, *repository.lesson_files()]:
        copy = tmp_path / path.relative_to(ROOT)
        copy.parent.mkdir(exist_ok=True)
        shutil.copy(path, copy)
    monkeypatch.setattr(repository, "ROOT", tmp_path)
    monkeypatch.setattr(repository, "PYPROJECT", tmp_path / "pyproject.toml")
    monkeypatch.setattr(repository, "README", tmp_path / "README.md")
    old, fork = repository.read_repository(), "https://github.com/a-reader/GPT-0.5M"
    repository.set_repository(fork)
    assert repository.read_repository() == fork
    assert repository.problems() == []
    assert repository.problems(old) != []
    repository.set_repository(fork, "lessons-v2")  # a branch of the fork
    assert repository.read_branch() == "lessons-v2" and repository.problems() == []
    assert "/blob/lessons-v2/notebooks/01_setup.ipynb" in (tmp_path / "README.md").read_text()
    assert 'REPO, BRANCH = "https://github.com/a-reader/GPT-0.5M", "lessons-v2"' in setup_cell(
        tmp_path / "py_percent" / LESSONS[0].name
    )


def test_every_lesson_opens_with_the_same_short_setup_cell_collapsed_in_colab():
    cells = {setup_cell(path) for path in LESSONS}
    assert len(LESSONS) == 7 and len(cells) == 1
    cell = cells.pop()
    lines = [line for line in cell.splitlines() if line.strip()]
    assert len(lines) <= 8 and lines[0].startswith("# @title Setup")
    url, branch = repository.read_repository(), repository.read_branch()
    assert f'REPO, BRANCH = "{url}", "{branch}"' in cell
    assert "pip" not in cell  # Colab has every package the lessons need: nothing is installed
    for path in ROOT.glob("notebooks/0*.ipynb"):
        first = next(c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
        assert first.metadata.get("cellView") == "form", path.name


def run_setup_cell(tmp_path, monkeypatch, clone_works: bool = True) -> list:
    """Run the first cell as Colab would, with /content/GPT-0.5M in ``tmp_path`` and a fake
    ``git clone``; return the commands it ran."""
    calls, clone = [], tmp_path / "content" / "GPT-0.5M"

    def fake_run(args, **kwargs):
        calls.append(args)
        if clone_works:  # a clone whose utils.py records the call of the cell's last line
            (clone / "notebooks").mkdir(parents=True)
            (clone / "notebooks" / "utils.py").write_text(
                "def setup_lesson(repo, branch):\n    print('one line', repo, branch)\n"
                "    return 'device'\n"
            )
        return subprocess.CompletedProcess(args, 0 if clone_works else 128)

    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.delitem(sys.modules, "utils")  # as in a fresh runtime: no utils imported yet
    monkeypatch.setattr(subprocess, "run", fake_run)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if "notebooks" not in p])
    monkeypatch.chdir(tmp_path)
    code = setup_cell(LESSONS[0]).replace("/content/GPT-0.5M", str(clone))
    namespace: dict = {}
    exec(code, namespace)
    assert namespace["device"] == "device"
    return calls


def test_in_colab_the_setup_cell_clones_the_badges_branch_once_and_installs_nothing(
    tmp_path, monkeypatch, capsys
):
    calls = run_setup_cell(tmp_path, monkeypatch)
    url, branch = repository.read_repository(), repository.read_branch()
    clone = str(tmp_path / "content" / "GPT-0.5M")
    assert calls == [["git", "clone", "-q", "--depth=1", "-b", branch, url, clone]]
    assert capsys.readouterr().out == f"one line {url} {branch}\n"
    path_before = list(sys.path)
    exec(setup_cell(LESSONS[0]).replace("/content/GPT-0.5M", clone), {})  # a re-run
    assert len(calls) == 1 and sys.path == path_before  # no second clone, nothing added
    assert capsys.readouterr().out == f"one line {url} {branch}\n"


def test_a_failed_clone_says_what_to_change(tmp_path, monkeypatch):
    with pytest.raises(ModuleNotFoundError) as error:
        run_setup_cell(tmp_path, monkeypatch, clone_works=False)
    line = next(line for line in setup_cell(LESSONS[0]).splitlines() if "import utils" in line)
    assert "clone failed" in line and "REPO" in line  # the traceback shows this line
    assert error.value.name == "utils"


def test_outside_colab_the_setup_cell_prints_one_line_and_clones_nothing(monkeypatch, capsys):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("ran a command"))
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.chdir(ROOT)
    namespace: dict = {}
    exec(setup_cell(LESSONS[0]), namespace)
    assert capsys.readouterr().out == f"device: {namespace['device']} | quick mode: True\n"


def test_ci_runs_the_readme_test_command_exactly():
    command = readme_command("python -m pytest")
    assert command == "pip install -r requirements-dev.txt && python -m pytest"
    ci_lines = ROOT.joinpath(".ci", "run").read_text(encoding="utf-8").splitlines()
    assert command in ci_lines


def test_the_readme_run_command_installs_and_saves_clean_notebooks():
    command = readme_command("nbconvert")
    assert command.startswith("pip install -r requirements.txt && ")
    for part in ["GPT05M_PROGRESS=text", "record_timing=False", "notebook_hygiene.py --strip"]:
        assert part in command


def test_requirements_split_and_colab_friendly():
    reader = ROOT.joinpath("requirements.txt").read_text().splitlines()
    dev = ROOT.joinpath("requirements-dev.txt").read_text().splitlines()
    packages = [line.split("#")[0].strip() for line in reader if line.split("#")[0].strip()]
    assert not [p for p in packages if p.startswith(("nbval", "pytest", "ruff", "hypothesis"))]
    assert not [p for p in packages if "==" in p]  # ranges only: Colab's versions satisfy them
    (widgets,) = [p for p in packages if p.startswith("ipywidgets")]
    assert widgets == "ipywidgets>=7.6"  # Colab's 7.7.1 stays
    assert "-r requirements.txt" in dev
    for tool in ["nbval", "pytest", "hypothesis", "jupytext", "ruff"]:
        assert any(line.startswith(tool) for line in dev), tool


def notebook_with(output_text: str, timestamps: bool = False) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell("print(path)")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=output_text)]
    if timestamps:
        cell.metadata["execution"] = {"iopub.execute_input": "2026-11-25T03:55:53.819954Z"}
    notebook = nbformat.v4.new_notebook(cells=[cell])
    notebook.metadata["kernelspec"] = dict(notebook_hygiene.KERNELSPEC)
    return notebook


@pytest.mark.parametrize(
    "text",
    [
        "wrote /work/main/checkpoints/full/evaluation.json (258,608 bytes)",
        "save it as /tmp/tmpgx50yc4d/missing.txt",
        "loaded /home/alice/GPT-0.5M/checkpoints/full/base.pt",
        "cache: /root/data/alice.txt",
        "saved to /content/GPT-0.5M/checkpoints/full/base.pt",
        r"saved to C:\Users\alice\GPT-0.5M\data",
    ],
)
def test_hygiene_check_finds_absolute_paths_in_outputs(text):
    (problem,) = notebook_hygiene.problems(notebook_with(text), "x.ipynb")
    assert "x.ipynb, cell 0: absolute path" in problem


@pytest.mark.parametrize(
    "text",
    [
        "wrote checkpoints/full/evaluation.json (258,608 bytes)",
        "downloaded https://www.gutenberg.org/tmp/home/11.txt",
        "the ratio is 3/4 and 10/20 steps",
        "the book comes from the cache: data/alice.txt",
    ],
)
def test_hygiene_check_accepts_relative_paths_and_urls(text):
    assert notebook_hygiene.problems(notebook_with(text), "x.ipynb") == []


def test_hygiene_check_finds_and_strips_execution_timestamps():
    notebook = notebook_with("ok", timestamps=True)
    assert notebook_hygiene.problems(notebook, "x.ipynb") == [
        "x.ipynb, cell 0: execution timestamps in the metadata"
    ]
    assert notebook_hygiene.strip_timestamps(notebook) == 1
    assert notebook_hygiene.problems(notebook, "x.ipynb") == []


def test_text_progress_keeps_the_step_lines_and_drops_the_bar(monkeypatch, capsys):
    cfg = utils.TrainConfig(
        max_steps=4, batch_size=2, warmup_steps=1, eval_interval=2, eval_iters=1
    )
    monkeypatch.setattr(utils, "TEXT_PROGRESS", True)
    assert utils.make_progress_bar(total=10).disable
    utils.train(tiny_model(), tiny_batches(), cfg, tokenizer=TOKENIZER, progress=True)
    out, err = capsys.readouterr()
    assert [line.split(":")[0] for line in out.splitlines()] == ["step      2", "step      4"]
    assert "%|" not in out + err  # no bar, neither as a widget nor as text
    monkeypatch.setattr(utils, "TEXT_PROGRESS", False)
    assert not utils.make_progress_bar(total=10).disable


def test_paths_are_printed_relative_to_the_repository(tmp_path):
    assert utils.display_path(utils.FINETUNED_CHECKPOINT).startswith("checkpoints/")
    assert utils.display_path(utils.REPO_ROOT / "data" / "alice.txt") == "data/alice.txt"
    assert utils.display_path(tmp_path / "x.pt") == str((tmp_path / "x.pt").resolve())


def test_hygiene_check_finds_and_resets_another_kernelspec():
    notebook = notebook_with("ok")
    notebook.metadata["kernelspec"]["display_name"] = "Python 3 (ipykernel)"  # as nbconvert writes
    (problem,) = notebook_hygiene.problems(notebook, "x.ipynb")
    assert problem.startswith("x.ipynb: kernelspec is not")
    assert notebook_hygiene.strip_timestamps(notebook) == 1
    assert notebook_hygiene.problems(notebook, "x.ipynb") == []
