"""The repository's address is named once, in pyproject.toml ([tool.gpt05m] repository); the
Colab badges (README and every lesson) and the first cell's clone URL derive from it.

    python tests/repository.py            # check that every badge and clone URL agrees
    python tests/repository.py https://github.com/<you>/GPT-0.5M   # point everything at a fork
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
README = ROOT / "README.md"
_SETTING = re.compile(r'^repository = "(?P<url>[^"]*)"', re.M)
_GITHUB = re.compile(r"https://github\.com/(?P<owner>[\w.-]+)/(?P<name>[\w.-]+?)(\.git)?")
_COLAB = re.compile(r"https://colab\.research\.google\.com/github/[^)\s\"'\\]+")
_CLONE_CELL = re.compile(r'REPO_URL = \\?"(?P<url>[^"\\]*)')
_CLONE_README = re.compile(r"git clone (?P<url>\S+)")


def read_repository() -> str:
    """The address set in pyproject.toml, e.g. https://github.com/owner/GPT-0.5M."""
    match = _SETTING.search(PYPROJECT.read_text(encoding="utf-8"))
    if match is None or not _GITHUB.fullmatch(match["url"]):
        raise ValueError(f"{PYPROJECT.name} needs [tool.gpt05m] repository = 'https://github.com/…'")
    return match["url"]


def colab_url(repository: str, notebook: str) -> str:
    """The Colab link that opens ``notebooks/<notebook>`` of ``repository``'s main branch."""
    github = _GITHUB.fullmatch(repository)
    return (
        f"https://colab.research.google.com/github/{github['owner']}/{github['name']}"
        f"/blob/main/notebooks/{notebook}"
    )


def lesson_files() -> list[Path]:
    """Every lesson in both forms: notebooks/NN_name.ipynb and py_percent/NN_name.py."""
    return sorted(ROOT.glob("notebooks/0*.ipynb")) + sorted(ROOT.glob("py_percent/0*.py"))


def problems(repository: str | None = None) -> list[str]:
    """Every place where a badge or a clone URL disagrees with ``repository``."""
    repository = repository or read_repository()
    found = []
    readme = README.read_text(encoding="utf-8")
    links = _COLAB.findall(readme)
    if not links:
        found.append("README.md has no Colab badge")
    for link in links:
        if link != colab_url(repository, link.rsplit("/", 1)[-1]):
            found.append(f"README.md: Colab link {link}")
    for match in _CLONE_README.finditer(readme):
        if match["url"] not in (repository, repository + ".git"):
            found.append(f"README.md: git clone {match['url']}")
    for path in lesson_files():
        text = path.read_text(encoding="utf-8")
        name = f"{path.parent.name}/{path.name}"
        expected = colab_url(repository, path.stem + ".ipynb")
        if _COLAB.findall(text) != [expected]:
            found.append(f"{name}: Colab badge {_COLAB.findall(text)}, expected [{expected}]")
        if [m["url"] for m in _CLONE_CELL.finditer(text)] != [repository]:
            found.append(f"{name}: the first cell must set REPO_URL = {repository!r} once")
    return found


def set_repository(new: str) -> None:
    """Point pyproject.toml, the README's badge and clone line, and every lesson at ``new``."""
    if not _GITHUB.fullmatch(new):
        raise SystemExit(f"Expected https://github.com/<owner>/<name>, got {new!r}.")
    old = read_repository()
    old_colab, new_colab = colab_url(old, ""), colab_url(new, "")
    for path in [PYPROJECT, README, *lesson_files()]:
        text = path.read_text(encoding="utf-8")
        path.write_text(text.replace(old_colab, new_colab).replace(old, new), encoding="utf-8")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        set_repository(sys.argv[1])
    issues = problems()
    print("\n".join(issues) or f"every badge and clone URL points at {read_repository()}")
    sys.exit(1 if issues else 0)
