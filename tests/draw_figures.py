"""Draw the lessons' two diagrams once and save them beside the notebooks (not collected by pytest).

Run from the repository root: python tests/draw_figures.py
It writes notebooks/figures/prenorm_block.png (lesson 2 §6) and notebooks/figures/kv_cache.png
(lesson 4 §8.2); the lessons show them with one line, IPython.display.Image(...).
"""

import itertools
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.patches import FancyBboxPatch

FIGURES = Path(__file__).resolve().parent.parent / "notebooks" / "figures"


def arrow(ax, points, **style):
    """Straight segments through ``points``, with an arrow head on the last one."""
    for i, (start, end) in enumerate(itertools.pairwise(points)):
        head = "-|>" if i == len(points) - 2 else "-"
        props = {"arrowstyle": head, "lw": 1.2, "shrinkA": 0, "shrinkB": 0, **style}
        ax.annotate("", xy=end, xytext=start, arrowprops=props)


def box(ax, x, y, text, colour, width):
    corner = (x - width / 2, y - 0.3)
    patch = FancyBboxPatch(corner, width, 0.6, boxstyle="round,pad=0.05", facecolor=colour)
    patch.set_edgecolor("black")
    ax.add_patch(patch)
    ax.text(x, y, text, ha="center", va="center", fontsize=9)


def prenorm_block() -> plt.Figure:
    """One pre-norm block: the residual stream along the bottom, two normalised branches."""
    fig, ax = plt.subplots(figsize=(9, 2.6))
    stream, branch = 0.0, 1.3
    branches = [  # fork, LayerNorm, sub-layer and plus x-positions; labels; colour
        (0.8, 1.8, 3.5, 4.8, "LayerNorm\nln1", "attention\n(mixes positions)", "#c6dbef"),
        (5.6, 6.6, 8.3, 9.6, "LayerNorm\nln2", "MLP\n(per position)", "#fdd0a2"),
    ]
    for fork, ln_x, f_x, plus, ln_name, f_name, colour in branches:
        arrow(ax, [(fork, stream), (fork, branch), (ln_x - 0.6, branch)])
        box(ax, ln_x, branch, ln_name, "#e5e5e5", width=1.1)
        arrow(ax, [(ln_x + 0.6, branch), (f_x - 0.9, branch)])
        box(ax, f_x, branch, f_name, colour, width=1.7)
        arrow(ax, [(f_x + 0.9, branch), (plus, branch), (plus, stream + 0.17)])
        ax.add_patch(plt.Circle((plus, stream), 0.17, facecolor="white", edgecolor="black"))
        ax.text(plus, stream, "+", ha="center", va="center", fontsize=12)
    for start, end in ((-0.4, 4.8 - 0.17), (4.8 + 0.17, 9.6 - 0.17), (9.6 + 0.17, 10.7)):
        arrow(ax, [(start, stream), (end, stream)])
    ax.text(-0.5, stream, "x\n(B, T, C)", ha="right", va="center", fontsize=10)
    ax.text(10.8, stream, "out\n(B, T, C)", ha="left", va="center", fontsize=10)
    note = {"ha": "center", "va": "top", "fontsize": 8}
    ax.text(2.4, -0.3, "residual stream: only additions", color="dimgray", style="italic", **note)
    ax.text(4.8, -0.3, "x + attn(ln1(x))", **note)
    ax.text(9.6, -0.3, "x + mlp(ln2(x))", **note)
    ax.set(xlim=(-1.4, 11.9), ylim=(-0.7, 1.8))
    ax.set_title("One pre-norm block: LayerNorm only on the branches", fontsize=11)
    ax.set_aspect("equal")
    ax.axis("off")
    return fig


def cell(ax, x, y, text, colour, hatch=None):
    ax.add_patch(plt.Rectangle((x - 0.45, y - 0.4), 0.9, 0.8, facecolor=colour, hatch=hatch))
    ax.patches[-1].set(edgecolor="black", linewidth=0.8)
    ax.text(x, y, text, ha="center", va="center", fontsize=8)


def kv_cache() -> plt.Figure:
    """Left: one cached generation step. Right: the window slide that rebuilds the cache."""
    cached, new = "#d9d9d9", "#a1d99b"
    ratios = {"width_ratios": [1, 1.25]}
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.2), gridspec_kw=ratios)
    small = {"fontsize": 8}
    below = {"ha": "center", "va": "top", "fontsize": 8}
    n_past = 6  # cached positions in the drawing
    for i in range(n_past + 1):
        colour = new if i == n_past else cached
        cell(ax1, i, 1.6, f"k{i}", colour)
        cell(ax1, i, 0.6, f"v{i}", colour)
        arrow(ax1, [(n_past, 3.0), (i, 2.0)], arrowstyle="->", color="tab:green", lw=0.9)
    cell(ax1, n_past, 3.4, f"q{n_past}", new)
    ax1.text(-0.8, 1.6, "keys", ha="right", va="center", fontsize=9)
    ax1.text(-0.8, 0.6, "values", ha="right", va="center", fontsize=9)
    ax1.text(n_past + 0.6, 3.4, "query of the\nnew character", ha="left", va="center", **small)
    arrow(ax1, [(n_past - 0.55, -0.1), (-0.45, -0.1)], arrowstyle="<->", lw=0.8)
    ax1.text((n_past - 1) / 2, -0.4, "cache: kept from earlier steps", **below)
    ax1.text(n_past, -0.4, "new:\nthis step", **below)
    ax1.set(xlim=(-2.2, n_past + 2.6), ylim=(-1.2, 4.0))
    ax1.set_title("One step: append k, v; the new query attends to all keys", fontsize=10)

    block = 8  # block_size in the drawing
    n_drop = block + 1 - block // 2  # the newest block // 2 are kept, the new one too
    for i in range(block + 1):
        cell(ax2, i, 2.4, "new" if i == block else str(i), new if i == block else cached)
        if i < n_drop:
            cell(ax2, i, 0.6, "", "white", hatch="///")
        else:
            cell(ax2, i, 0.6, str(i - n_drop), new)
    ax2.text(-0.8, 2.4, "full", ha="right", va="center", fontsize=9)
    ax2.text(-0.8, 0.6, "after\nthe slide", ha="right", va="center", fontsize=9)
    label = f"does not fit\n(block_size = {block}\nin this drawing)"
    ax2.text(block + 0.6, 2.4, label, ha="left", va="center", **small)
    ax2.text((n_drop - 1) / 2, -0.1, "oldest characters dropped", **below)
    middle = (n_drop + block) / 2
    label = "newest half fed again in one call:\npositions 0, 1, ...; a new cache"
    ax2.text(middle, -0.1, label, **below)
    arrow(ax2, [(middle, 1.95), (middle, 1.05)], arrowstyle="->", lw=1)
    ax2.set(xlim=(-2.2, block + 3.2), ylim=(-1.2, 3.2))
    ax2.set_title("The window slide: drop the oldest half, rebuild the cache", fontsize=10)
    for ax in (ax1, ax2):
        ax.set_aspect("equal")
        ax.axis("off")
    return fig


if __name__ == "__main__":
    FIGURES.mkdir(exist_ok=True)
    for name, draw in (("prenorm_block", prenorm_block), ("kv_cache", kv_cache)):
        fig = draw()
        fig.tight_layout()
        path = FIGURES / f"{name}.png"
        stamp = {"Software": None}  # no matplotlib version in the file: the same bytes every run
        fig.savefig(path, dpi=110, bbox_inches="tight", metadata=stamp)
        print(f"wrote {path.relative_to(FIGURES.parent.parent)}")
