"""Committed notebooks must read well on GitHub: no machine paths in any output, no execution
timestamps in cell metadata (they make every re-run a noisy diff), and one kernelspec for all.

    python tests/notebook_hygiene.py           # check notebooks/*.ipynb; exit 1 on a problem
    python tests/notebook_hygiene.py --strip   # drop timestamps, reset the kernelspec, then check
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
#: An absolute path of some machine: /work/..., /tmp/..., /home/..., C:\Users\..., and the like.
#: A path inside a URL or relative to the repository (checkpoints/full/base.pt) does not match.
ABSOLUTE_PATH = re.compile(
    r"(?<![\w.~/:-])(?:/(?:work|tmp|home|root|content|Users|var|private|mnt|opt|srv)/"
    r"|[A-Za-z]:\\)[^\s'\"]*"
)
#: The kernelspec of every lesson (an executing Jupyter may rename it, e.g. "(ipykernel)").
KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}
TEXT_OUTPUTS = ("text/plain", "text/html", "text/markdown", "text/latex", "application/json")


def output_texts(cell: dict) -> list[str]:
    """The readable text of a code cell's outputs (streams, text data, errors; not images)."""
    texts = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            texts.append(output.get("text", ""))
        elif output.get("output_type") == "error":
            texts += [output.get("evalue", ""), *output.get("traceback", [])]
        for mime in TEXT_OUTPUTS:
            value = output.get("data", {}).get(mime)
            if value is not None:
                texts.append(value if isinstance(value, str) else str(value))
    return texts


def problems(notebook: nbformat.NotebookNode, name: str) -> list[str]:
    """Absolute paths in outputs, execution timestamps and another kernelspec, one line each."""
    found = []
    if dict(notebook.metadata.get("kernelspec", {})) != KERNELSPEC:
        found.append(f"{name}: kernelspec is not {KERNELSPEC}")
    for index, cell in enumerate(notebook.cells):
        if "execution" in cell.get("metadata", {}):
            found.append(f"{name}, cell {index}: execution timestamps in the metadata")
        for text in output_texts(cell):
            found += [f"{name}, cell {index}: absolute path {m[:80]!r} in an output"
                      for m in ABSOLUTE_PATH.findall(text)]
    return found


def strip_timestamps(notebook: nbformat.NotebookNode) -> int:
    """Remove the ``execution`` metadata (start and end times) of every cell and reset the
    kernelspec; return how many things changed."""
    stripped = int(dict(notebook.metadata.get("kernelspec", {})) != KERNELSPEC)
    notebook.metadata["kernelspec"] = dict(KERNELSPEC)
    for cell in notebook.cells:
        if cell.get("metadata", {}).pop("execution", None) is not None:
            stripped += 1
    return stripped


def main(argv: list[str]) -> int:
    found = []
    for path in sorted(ROOT.glob("notebooks/*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        if "--strip" in argv and strip_timestamps(notebook):
            nbformat.write(notebook, path)
        found += problems(notebook, f"notebooks/{path.name}")
    print("\n".join(found) or "notebooks OK: no absolute paths, no timestamps, one kernelspec")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
