"""The repository's address and branch are named once, in pyproject.toml ([tool.gpt05m]
repository and branch); the Colab badges (README and every lesson) and the first cell's clone
line derive from them.

    python tests/repository.py            # check that every badge and clone line agrees
    python tests/repository.py https://github.com/<you>/GPT-0.5M [branch]   # point all at a fork
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
README = ROOT / "README.md"
_SETTING = re.compile(r'^repository = "(?P<url>[^"]*)"', re.M)
_BRANCH_SETTING = re.compile(r'^branch = "(?P<branch>[^"]*)"', re.M)
_GITHUB = re.compile(r"https://github\.com/(?P<owner>[\w.-]+)/(?P<name>[\w.-]+?)(\.git)?")
_COLAB = re.compile(r"https://colab\.research\.google\.com/github/[^)\s\"'\\]+")
#: The first cell's clone line, in a .py file or (with escaped quotes) in an .ipynb.
_CLONE_CELL = re.compile(r'REPO, BRANCH = \\?"(?P<url>[^"\\]*)\\?", \\?"(?P<branch>[^"\\]*)')
_CLONE_README = re.compile(r"git clone (?P<url>\S+)")


def read_repository() -> str:
    """The address set in pyproject.toml, e.g. https://github.com/owner/GPT-0.5M."""
    match = _SETTING.search(PYPROJECT.read_text(encoding="utf-8"))
    if match is None or not _GITHUB.fullmatch(match["url"]):
        raise ValueError(f"{PYPROJECT.name} needs [tool.gpt05m] repository = 'https://github.com/…'")
    return match["url"]


def read_branch() -> str:
    """The branch set in pyproject.toml, e.g. main."""
    match = _BRANCH_SETTING.search(PYPROJECT.read_text(encoding="utf-8"))
    if match is None or not match["branch"]:
        raise ValueError(f"{PYPROJECT.name} needs [tool.gpt05m] branch = 'main' (or another)")
    return match["branch"]


def colab_url(repository: str, notebook: str, branch: str = "main") -> str:
    """The Colab link that opens ``notebooks/<notebook>`` of ``repository``'s ``branch``."""
    github = _GITHUB.fullmatch(repository)
    return (
        f"https://colab.research.google.com/github/{github['owner']}/{github['name']}"
        f"/blob/{branch}/notebooks/{notebook}"
    )


def lesson_files() -> list[Path]:
    """Every lesson in both forms: notebooks/NN_name.ipynb and py_percent/NN_name.py."""
    return sorted(ROOT.glob("notebooks/0*.ipynb")) + sorted(ROOT.glob("py_percent/0*.py"))


def problems(repository: str | None = None, branch: str | None = None) -> list[str]:
    """Every place where a badge or a clone line disagrees with ``repository`` and ``branch``."""
    repository, branch = repository or read_repository(), branch or read_branch()
    found = []
    readme = README.read_text(encoding="utf-8")
    links = _COLAB.findall(readme)
    if not links:
        found.append("README.md has no Colab badge")
    for link in links:
        if link != colab_url(repository, link.rsplit("/", 1)[-1], branch):
            found.append(f"README.md: Colab link {link}")
    for match in _CLONE_README.finditer(readme):
        if match["url"] not in (repository, repository + ".git"):
            found.append(f"README.md: git clone {match['url']}")
    for path in lesson_files():
        text = path.read_text(encoding="utf-8")
        name = f"{path.parent.name}/{path.name}"
        expected = colab_url(repository, path.stem + ".ipynb", branch)
        if _COLAB.findall(text) != [expected]:
            found.append(f"{name}: Colab badge {_COLAB.findall(text)}, expected [{expected}]")
        if [m.group("url", "branch") for m in _CLONE_CELL.finditer(text)] != [(repository, branch)]:
            found.append(f"{name}: the first cell must set REPO, BRANCH = {repository!r}, "
                         f"{branch!r} once")
    return found


def set_repository(new: str, branch: str | None = None) -> None:
    """Point pyproject.toml, the README's badge and clone line, and every lesson at ``new`` (and
    ``branch``, if given)."""
    if not _GITHUB.fullmatch(new):
        raise SystemExit(f"Expected https://github.com/<owner>/<name>, got {new!r}.")
    old, old_branch = read_repository(), read_branch()
    branch = branch or old_branch
    old_colab, new_colab = colab_url(old, "", old_branch), colab_url(new, "", branch)
    for path in [PYPROJECT, README, *lesson_files()]:
        text = path.read_text(encoding="utf-8").replace(old_colab, new_colab)
        text = _CLONE_CELL.sub(lambda m: m[0][: m.start("branch") - m.start()] + branch, text)
        text = _BRANCH_SETTING.sub(f'branch = "{branch}"', text)
        path.write_text(text.replace(old, new), encoding="utf-8")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        set_repository(*sys.argv[1:3])
    issues = problems()
    print("\n".join(issues) or f"every badge and clone line points at {read_repository()} "
          f"({read_branch()})")
    sys.exit(1 if issues else 0)
