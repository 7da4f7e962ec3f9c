# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: cellView,jupyter,-all
#     notebook_metadata_filter: kernelspec,jupytext,colab,accelerator
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 7 — Stats: what the model costs, and how it compares
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/your-username/GPT-0.5M/blob/main/notebooks/07_stats.ipynb)
#
# **What you will learn:** the model's costs (parameters, arithmetic, time, memory), the tricks the
# ladder kept (§4.2), how it compares with the original, and what scaling up buys.
#
# - **Reads:** lessons 3 and 5's checkpoints (else the released weights, else a short stand-in
#   model), lesson 6's `evaluation.json` (else the release's copy, with released models), and
#   three recorded runs in `tests/`.
# - **Writes:** nothing, unless it trains a stand-in (beside the checkpoints).

# %% [markdown]
# ## 0. Setup
# This first cell makes the shared module `utils.py` importable (in Colab it clones the
# repository first) and prints the device.

# %% cellView="form"
# @title Setup: make `utils` importable (in Colab, clone the repository once)
import os, subprocess, sys  # noqa: E401, I001

REPO, BRANCH = "https://github.com/your-username/GPT-0.5M", "main"  # a fork: set its address
if "google.colab" in sys.modules and not os.path.isdir("/content/GPT-0.5M"):
    subprocess.run(["git", "clone", "-q", "--depth=1", "-b", BRANCH, REPO, "/content/GPT-0.5M"])
sys.path[:0] = {"/content/GPT-0.5M/notebooks", os.path.abspath("notebooks")} - set(sys.path)
import utils  # not found in Colab? The clone failed: set REPO above to your fork's address

device = utils.setup_lesson(REPO, BRANCH)

# %% [markdown]
# ## 1. Parameters by module
#
# Every trainable number, counted once. The output head shares the token embedding's matrix
# (weight tying), so it adds nothing.

# %%
import itertools
import json
import math
import textwrap

import matplotlib.pyplot as plt
import torch

corpus = utils.load_corpus()
model = utils.build_model(corpus.tokenizer)
by_module = utils.parameters_by_module(model)
for name, count in by_module.items():
    print(f"{name:22} {count:>8,}")

# %% [markdown]
# The total, fixed by the architecture and the vocabulary:

# %%
# NBVAL_CHECK_OUTPUT
print(f"total parameters: {model.num_parameters():,}")

# %% [markdown]
# By kind, the four blocks together: attention and MLP weights dominate; the token embedding is
# small (one row per vocabulary character).

# %%
groups: dict[str, int] = {}
for name, count in by_module.items():
    kind = name.split(".")[-1] if name.startswith("blocks") else name
    groups[kind] = groups.get(kind, 0) + count
fig, ax = plt.subplots(figsize=(7, 3))
ax.barh(list(groups), list(groups.values()), color="tab:blue")
for i, value in enumerate(groups.values()):
    ax.text(value, i, f" {value:,}", va="center")
ax.set(xlabel="parameters", title="Parameters by kind (all four blocks together)")
ax.invert_yaxis()
ax.set_xlim(0, max(groups.values()) * 1.25)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 2. FLOPs per character
#
# Per token, an $m \times n$ weight matrix costs $2mn$ floating-point operations (**FLOPs**: a
# multiply and an add per weight); attention's scores and weighted sum add about $4Td$ per layer,
# for context $T$ and width $d$ (`n_embd`); training costs about three forward passes.
# `utils.flops_per_token` adds these up. **MFU** (model FLOPs utilisation, §5): FLOPs per second
# over a large matrix multiply's (§4).

# %%
config = model.config
forward = utils.flops_per_token(config, with_backward=False)
training = utils.flops_per_token(config)
tokens_per_step = utils.PRETRAIN.batch_size * config.block_size
print(f"forward FLOPs per character:            {forward / 1e6:.2f} M")
print(f"training FLOPs per character (x3):      {training / 1e6:.2f} M")
print(
    f"training FLOPs per step ({tokens_per_step} chars): {training * tokens_per_step / 1e9:.1f} G"
)
print(f"rule of thumb 6 x parameters:           {6 * model.num_parameters() / 1e6:.2f} M")

# %% [markdown]
# The rule of thumb "6 FLOPs per parameter per token" undercounts (above): in a model this narrow,
# attention over the context is a large share of the work (33%: Solution 1).
#
# ## 3. How long training took
#
# Training seconds (loss estimates and checkpoint writes excluded) as lessons 3 and 5 saved them:
# this machine's checkpoints, else the released weights (the **series run**, the README's full run
# of all seven lessons), else a short stand-in. A position is one character slot of a training
# window, fine-tuning's Q&A padding included:

# %%
base, _, base_state = utils.load_or_pretrain(corpus, device)
tuned, _, tuned_state = utils.load_or_finetune(corpus, device)


def run_summary(state: dict) -> dict:
    cfg, history = state["train_config"], state["history"]
    seconds = history["seconds"][-1]
    tokens = state["step"] * cfg["batch_size"] * config.block_size
    where = "the series run's machine" if state["source"] == "released" else str(device)
    return {"steps": state["step"], "seconds": seconds, "tokens_per_s": tokens / seconds,
            "where": where}


runs = {"pretraining": run_summary(base_state), "fine-tuning": run_summary(tuned_state)}
for name, run in runs.items():
    print(
        f"{name:12} {run['steps']:>6} steps in {run['seconds'] / 60:5.1f} min "
        f"= {run['tokens_per_s']:>8,.0f} positions/s on {run['where']}"
    )

# %% [markdown]
# ## 4. The benchmark: our recipe against the original's
#
# `tests/benchmark.py` rebuilds the original notebook's model (post-norm blocks of PyTorch's
# ready-made attention, fixed position vectors, ReLU MLP, no dropout, constant AdamW learning rate,
# 32 windows of 128 characters) and times it in one process against `utils.GPT` (16 windows of 256:
# the same 4,096 characters a step), plus KV-cached and uncached generation and a large matrix
# multiply (the machine's practical peak).

# %%
bench = json.loads((utils.REPO_ROOT / "tests" / "benchmark_cpu.json").read_text())
print("made with:", bench["command"])
print(f"{'':22}{'original':>12}{'ours':>12}")
for name, key in (("ms / training step", "ms_per_step"), ("characters / s", "tokens_per_s")):
    print(f"{name:22}{bench['original_' + key]:>12,.1f}{bench['ours_' + key]:>12,.1f}")
print(f"training speed, ours / original: {bench['speedup']:.2f}x (one run: no timing spread)")
print(f"generation of {bench['kv_new_tokens']} characters: {bench['kv_cached_tokens_per_s']:.0f}/s "
      f"with the KV cache, {bench['kv_uncached_tokens_per_s']:.0f}/s without "
      f"({bench['kv_speedup']:.2f}x)")

# %% [markdown]
# In pictures: training throughput, and generation with and without the KV cache. Timings on a
# shared machine are noisy: the benchmark interleaves the two models and reports medians and ratios,
# from one run (§4.2's rounds spread, slowest minus fastest round over the median, is 13–34%).

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.2))
training_speed = [bench["original_tokens_per_s"], bench["ours_tokens_per_s"]]
generation_speed = [bench["kv_uncached_tokens_per_s"], bench["kv_cached_tokens_per_s"]]
ax1.bar(["original", "ours"], training_speed, color=["tab:gray", "tab:blue"])
ax1.set(ylabel="characters/s", title=f"Training ({bench['speedup']:.2f}x)")
ax2.bar(["no cache", "KV cache"], generation_speed, color=["tab:gray", "tab:green"])
ax2.set(ylabel="characters/s", title=f"Generation ({bench['kv_speedup']:.2f}x)")
plt.tight_layout()
plt.show()

# %% [markdown]
# ### 4.1 Quality for the same time budget
#
# `python tests/benchmark.py --quality` trains both recipes on the same split for at most the same
# budget: on a CPU, one thread's CPU seconds, less disturbed by other jobs; on a GPU, clock seconds.
# Each recipe's loss is estimated on windows of its own context (128 and 256 characters).

# %%
recorded_path = utils.REPO_ROOT / "tests" / "benchmark_cpu.json"
recorded = json.loads(recorded_path.read_text())
print("made with:", recorded["command"])
print("hardware: ", recorded["hardware"])
print(f"budget:    {recorded['budget_minutes']:g} min per recipe on {recorded['quality_clock']}, "
      f"{recorded['quality_threads']} thread(s)")
fig, ax = plt.subplots(figsize=(7, 4))
for name, color in (("original", "tab:gray"), ("ours", "tab:blue")):
    curve = recorded["curves"][name]
    ax.plot([s / 60 for s in curve["seconds"]], curve["val"], label=name, color=color)
    ax.scatter(curve["best_seconds"] / 60, curve["best_val"], color=color, zorder=3)
ax.axhline(recorded["best_val_original"], color="tab:gray", linestyle=":", linewidth=1)
ax.set(
    xlabel="training minutes (one thread's CPU time)",
    ylabel="validation loss (nats/char)",
    title="Validation loss for the same time budget",
)
ax.set_ylim(top=2.2)
ax.grid(alpha=0.3)
ax.legend()
plt.show()

# %% [markdown]
# Dotted line: the original recipe's best validation loss; dots: each recipe's best.

# %%
ratio = recorded["time_to_original_best_ratio"]
every = recorded["curves"]["ours"]["steps"][1] - recorded["curves"]["ours"]["steps"][0]
print(
    f"best validation loss: original {recorded['best_val_original']:.4f}, "
    f"ours {recorded['best_val_ours']:.4f}"
)
print(
    f"time to reach the original's best: original {recorded['original_seconds_to_best']:.0f} s, "
    f"ours {recorded['ours_seconds_to_original_best']:.0f} s ({ratio:.2f}x; ours at its first "
    f"estimate below it, one every {every} steps, so at most this)"
)

# %% [markdown]
# ### 4.2 The speed-up ladder: what each change buys
#
# `tests/ladder.py` climbs a **ladder** from **today's recipe** (pre-ladder: AdamW, cosine
# schedule, dropout 0.15), each rung graded against the one before on a **dev slice** (the last 10%
# of the *training* text), 500 steps a run. A rung tries settings with seed 0, reruns the winner
# with seed 1, and is kept only if its gain beats the noise: the two rungs' larger **seed spread**
# (a rung's two seeds' dev losses apart). The architecture rung: RoPE (positions as query and key
# rotations), QK-norm (normalised queries and keys), ReLU² (squared ReLU) and zero-initialised
# output projections. All but the full-length rung (below) used lesson 2 §5.2's `FastDropout`, as
# did §7.1.

# %%
ladder = json.loads((utils.REPO_ROOT / "tests" / "ladder_cpu.json").read_text())
today = ladder["rungs"][0]["seed0"]["settings"]


def changed(settings: dict) -> str:
    """The settings that differ from today's recipe, e.g. 'schedule=wsd lr=0.004'."""
    return " ".join(f"{k}={v}" for k, v in settings.items() if today.get(k) != v) or "-"


print("made with:", ladder["command"])
print(f"{ladder['steps_per_run']} steps per run, one thread each, {ladder['hardware']['cpu']}")
for rung in ladder["rungs"]:
    print(f"\n{rung['name']} ({rung['changes']}), seed 0:")
    for run in rung["candidates"]:
        print(f"   {changed(run['settings']):<52} dev {run['dev_loss']:.4f}")
    if rung["seed1"] is None:
        print("   no candidate beat the rung before: not kept")
        continue
    line = f"   winner, two seeds: {rung['dev_loss_mean']:.4f} (spread {rung['seed_spread']:.4f})"
    if "gain" in rung:
        verdict = "kept" if rung["kept"] else "not kept: within the noise"
        line += f"; gain {rung['gain']:+.4f} against noise {rung['noise']:.4f}: {verdict}"
    print(line)

# %% [markdown]
# Short runs favour light regularisation, and lesson 3's recipe (`utils.PRETRAIN`) reads the book
# far more often. So **the confirmation** reran the winner at that recipe's full length, beside the
# same with today's dropout and weight decay; one seed each, so the noise is the ladder's largest
# seed spread.

# %%
check = ladder["confirmation"]
for run in check["runs"]:
    print(
        f"{check['steps']} steps, dropout {run['settings']['dropout']}, weight decay "
        f"{run['settings']['weight_decay']}: dev {run['dev_loss']:.4f}"
    )
if check["gain"] > check["noise"]:
    print(
        f"the winner's regularisation still wins, by {check['gain']:.4f} "
        f"(noise {check['noise']:.4f})"
    )
elif check["gain"] < -check["noise"]:
    print(
        f"today's regularisation wins at full length, by {-check['gain']:.4f} (noise "
        f"{check['noise']:.4f})"
    )
else:
    print(
        f"no measurable difference at full length ({check['gain']:+.4f}, "
        f"noise {check['noise']:.4f})"
    )

# %% [markdown]
# A last rung, **full length**, tunes that recipe at its 1,300 steps, seed 0: decay over the last
# half, or all after warm-up; dropout 0.25; both. The best and the recipe rerun with seed 1. With
# `nn.Dropout`, the recipe's seed-0 score differs a little from the confirmation's.

# %%
full_length = ladder["full_length"]
before = full_length["recipe"]["seed0"]["settings"]
start = full_length["recipe"]["seed0"]["dev_loss"]
print(f"{full_length['steps']} steps, on top of the recipe (dev {start:.4f}), seed 0:")
for run in full_length["candidates"]:
    change = " ".join(f"{k}={v}" for k, v in run["settings"].items() if before.get(k) != v)
    print(f"   {change:<40} dev {run['dev_loss']:.4f}")
for name, label in (("recipe", "recipe"), ("winner", "best candidate")):
    print(f"{label}, two seeds: {full_length[name]['dev_loss_mean']:.4f} "
          f"(spread {full_length[name]['seed_spread']:.4f})")
noise = full_length["noise"]
verdict = ("kept" if full_length["kept"] else
           "not kept: worse beyond the noise" if full_length["gain"] < -noise else
           "not kept: no measurable difference")
print(f"gain {full_length['gain']:+.4f} against noise {full_length['noise']:.4f}: {verdict}")

# %% [markdown]
# So lesson 3's pretraining recipe, `utils.PRETRAIN` (the base model of lessons 3 to 6), is what
# the confirmation and the full-length rung left:

# %%
recipe = ladder["recipe"]
print("changes from today's recipe:", changed(recipe))
ladder_fields = ("optimizer", "schedule", "lr", "muon_lr", "weight_decay", "decay_fraction")
default = utils.TrainConfig()
assert all(getattr(utils.PRETRAIN, k) == recipe.get(k, getattr(default, k)) for k in ladder_fields)
assert utils.GPTConfig().dropout == recipe["dropout"]

# %% [markdown]
# Time is steps × seconds per step, each timed on one thread in interleaved rounds; so was
# `torch.compile` (PyTorch's compiler, which merges operations):

# %%
for name, timing in ladder["timings"].items():
    print(
        f"{name:<22} {timing['median'] * 1000:6.0f} ms/step (rounds spread {timing['spread']:.0%})"
    )
compiled = ladder["compile"]
if abs(compiled["speedup"] - 1) > compiled["noise"]:
    print(
        f"torch.compile of the {ladder['kept'][-1]} rung: {compiled['speedup']:.2f}x the speed per "
        f"step, beyond the timing noise "
        f"({compiled['noise']:.0%}); an option, not the recipe (it needs a C++ compiler)"
    )
else:
    print(
        f"torch.compile of the {ladder['kept'][-1]} rung: no measurable difference "
        f"({compiled['speedup']:.2f}x, timing noise "
        f"{compiled['noise']:.0%})"
    )

# %% [markdown]
# The kept rungs' seed-0 runs and the original notebook's recipe on the same slice:
# the **dev estimate** (8 fixed batches every 50 steps, not the whole slice) against CPU seconds.
# The **target**: today's best estimate, its worse seed's. The dashed **ceiling**: the Muon rung at
# one thread's large-matrix-multiply FLOP/s (legend; §5's peak is two threads').

# %%
kept = [rung for rung in ladder["rungs"] if rung["kept"]]
in_recipe = [r for r in kept if all(r["seed0"]["settings"][k] == v for k, v in before.items())]
recipe_rung = in_recipe[-1]  # the 500-step rung whose settings utils.PRETRAIN starts from
ceiling = ladder["ceiling"]
peak_step = ceiling["training_flops_per_step"] / (ceiling["matmul_peak_gflops_1_thread"] * 1e9)
fig, ax = plt.subplots(figsize=(8, 4.2))
original = ladder["original"]
ax.plot(
    [s * original["seconds_per_step"] for s in original["curve"]["step"]],
    original["curve"]["dev"],
    color="tab:gray",
    label=f"original notebook's recipe ({original['steps']:,} steps)",
)
for rung in kept:
    curve = rung["seed0"]["curve"]
    ax.plot([s * rung["seconds_per_step"] for s in curve["step"]], curve["dev"], label=rung["name"])
curve = recipe_rung["seed0"]["curve"]
ax.plot(
    [s * peak_step for s in curve["step"]],
    curve["dev"],
    "k--",
    linewidth=1,
    label=f"ceiling: the recipe at {ceiling['matmul_peak_gflops_1_thread']:.0f} GFLOP/s",
)
ax.axhline(
    ladder["target_dev_loss"],
    color="tab:red",
    linestyle=":",
    linewidth=1,
    label="target: today's best",
)
ax.set(
    xscale="log",
    xlabel="CPU seconds of one thread (log scale)",
    ylabel="dev loss (nats/char)",
    title="The speed-up ladder on the dev slice",
    ylim=(None, 2.6),
)
ax.grid(alpha=0.3, which="both")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# In numbers: each kept rung's CPU seconds to the target (its two seeds' mean steps, not quite where
# seed 0's curve crosses), as a ratio to the rung before; then the climb against the original and
# the ceiling. A second verdict, beside "kept": a time gain counts only if each seed's ratio clears
# the timing spread.

# %%
def seed_seconds(rung: dict) -> list[float]:
    """CPU seconds to the target with the steps of seed 0, then of seed 1."""
    return [steps * rung["seconds_per_step"] for steps in rung["seed_steps_to_target"]]


def against_noise(now: list[float], before: list[float], of: str, *names: str) -> str:
    """The time ratio ``of`` something: beyond the noise only if every seed's ratio clears the
    larger rounds spread of ``names``, on the same side."""
    spread = max(ladder["timings"][name]["spread"] for name in names)
    ratios = [a / b for a, b in zip(now, before, strict=True)]
    clear = all(r < 1 - spread for r in ratios) or all(r > 1 + spread for r in ratios)
    verdict = "beyond" if clear else "no measurable difference: within"
    return (f"{sum(now) / sum(before):.2f}x {of} (seeds {min(ratios):.2f}-{max(ratios):.2f}x: "
            f"{verdict} the timing spread, {spread:.0%})")


print(f"target: dev loss {ladder['target_dev_loss']:.4f}, {ladder['target']}")
print("  (estimates: 8 fixed batches every 50 steps; 'dev' above: the whole slice at the end)")
previous = None
for rung in kept:
    seconds, ratio = rung["seconds_to_target"], ""
    if previous:
        ratio = against_noise(seed_seconds(rung), seed_seconds(previous), "the rung before",
                              rung["name"], previous["name"])
    print(f"{rung['name']:<22} {seconds:6.0f} s to the target  {ratio}")
    previous = rung
later = ", ".join(r["name"] for r in kept[kept.index(recipe_rung) + 1 :])
print(f"the recipe: the {recipe_rung['name']} rung ({later or 'no later rung'} kept at "
      f"{ladder['steps_per_run']} steps, lost at full length)")
climb = against_noise(seed_seconds(recipe_rung), seed_seconds(kept[0]), "today's time",
                      kept[0]["name"], recipe_rung["name"])
print(f"the climb to the recipe: {climb} to the target")
reach = original["seconds_to_target"]
if reach is None:
    print(
        f"the original recipe did not reach it in {original['steps']} steps "
        f"(best {original['best_dev_estimate']:.4f})"
    )
else:
    need = against_noise(seed_seconds(recipe_rung), [reach, reach], "that (one run)", "original",
                         recipe_rung["name"])
    print(f"the original recipe took {reach:.0f} s: the recipe needs {need}")
print(
    f"at the ceiling the recipe would need {recipe_rung['steps_to_target'] * peak_step:.0f} s: "
    f"it runs at {peak_step / recipe_rung['seconds_per_step']:.0%} of the peak"
)

# %% [markdown]
# ## 5. Memory and hardware
#
# Peak memory: the most GPU memory PyTorch held, or on a CPU the process's most RAM (Python and
# PyTorch included). The model's own state: 4 bytes a weight, plus two numbers per AdamW
# parameter and one per Muon parameter.

# %%
adamw, *muon = utils.make_optimizer(model, utils.PRETRAIN, torch.device("cpu"))


def numbers(opt: torch.optim.Optimizer) -> int:
    return sum(p.numel() for group in opt.param_groups for p in group["params"])


state_numbers = model.num_parameters() + 2 * numbers(adamw) + sum(numbers(opt) for opt in muon)
print(f"weights + optimizer state: {state_numbers * 4 / 2**20:.1f} MB")
print(f"peak memory of the benchmark process: {bench['peak_memory_mb']:.0f} MB")
print(
    f"achieved {bench['ours_gflops']:.1f} GFLOP/s while training = {bench['ours_mfu']:.0%} "
    f"of a large matrix multiply's {bench['matmul_peak_gflops']:.0f} GFLOP/s"
)
print("hardware:", bench["hardware"])

# %% [markdown]
# ## 6. The original notebook beside ours
#
# The original's times are its README's (a Colab T4), its other figures its notebook's; ours are
# §3's runs. Steps do not compare one to one: both pretrain on 4,096 characters a step, but in
# other contexts (128 against 256), optimizers and costs per step.


# %%
def took(run: dict) -> str:
    return f"{run['steps']:,} steps, {run['seconds'] / 60:.2f} min ({run['where']})"


shape = f"{config.block_size} / {config.n_embd} / {config.n_layer} / {config.n_head}"
best_val = min(base_state["history"]["losses"]["val"])
estimate = f"best validation estimate ({base_state['train_config']['eval_iters']} batches)"
rows = [
    ("parameters", "542,770", f"{model.num_parameters():,}"),
    ("block / embedding / layers / heads", "128 / 128 / 4 / 4", shape),
    ("batch", "32", str(utils.PRETRAIN.batch_size)),
    ("pretraining", "50K steps, ~11 min (T4)", took(runs["pretraining"])),
    ("fine-tuning", "10K steps, ~2 min (T4)", took(runs["fine-tuning"])),
    ("validation split", "none", "last 10% of the book"),
    (estimate, "not measured", f"{best_val:.3f}"),
]
width = max(len(ours) for _, _, ours in rows) + 2
print(f"{'':36}{'original notebook':>28}{'GPT-0.5M':>{width}}")
for name, theirs, ours in rows:
    print(f"{name:36}{theirs:>28}{ours:>{width}}")

# %% [markdown]
# Did our pretraining stop past its best validation estimate? A rise below §4.2's confirmation
# noise is no evidence of overfitting.

# %%
val_curve, val_steps = base_state["history"]["losses"]["val"], base_state["history"]["step"]
best_at = val_steps[val_curve.index(best_val)]
if best_at == val_steps[-1]:
    print(f"the validation estimate was at its lowest at the last step, {best_at:,} "
          f"({best_val:.4f}): no rise to judge")
else:
    rise, noise = val_curve[-1] - best_val, ladder["confirmation"]["noise"]  # §4.2's noise
    verdict = "it had begun to overfit" if rise > noise else "no measurable rise (seed spread"
    print(
        f"the validation estimate was best at step {best_at:,} ({best_val:.4f}) and ended at "
        f"{val_curve[-1]:.4f} at step {val_steps[-1]:,}, {rise:.4f} nats higher: {verdict}"
        + ("" if rise > noise else f" {noise:.4f})")
    )

# %% [markdown]
# ### 6.1 Quality beside cost
#
# Lesson 6's `evaluation.json`: book validation loss in bits per character (lower is better) and
# Q&A exact match, closed- and open-book (higher is better). From a lesson 6 run on this machine,
# else, with the released weights, the release's copy; the `scores:` line says which.

# %%
evaluation_path = utils.CHECKPOINT_DIR / "evaluation.json"
if not evaluation_path.exists() and base_state["source"] == tuned_state["source"] == "released":
    evaluation_path = utils.RELEASED_DIR / "evaluation.json"  # lesson 6's scores of these models
if evaluation_path.exists():
    evaluation = json.loads(evaluation_path.read_text(encoding="utf-8"))
    qa_tuned = evaluation["qa"]["fine-tuned"]
    print(f"scores: {utils.display_path(evaluation_path)} ({evaluation['mode']} run of lesson 6)")
    print(f"model size: {model.num_parameters():,} parameters")
    for name, key in (("pretraining", "base"), ("fine-tuning", "fine-tuned")):
        run = runs[name]
        print(
            f"{name:12} {run['seconds'] / 60:5.1f} min -> book validation "
            f"{evaluation['book'][key]['bpc']:.3f} bits/char"
        )
    for mode in qa_tuned:
        scores = ", ".join(f"{split} {m['exact_match']:.0%}" for split, m in qa_tuned[mode].items())
        print(f"fine-tuned Q&A exact match, {mode}-book: {scores}")
else:
    print(f"No {utils.display_path(evaluation_path)} yet: run lesson 6 to fill this table.")

# %% [markdown]
# ### 6.2 Why 543,027 and not 542,770
#
# The benchmark's copy has 543,027; the original printed 542,770. Its book had 50 distinct
# characters, ours 49 plus the tags' `<` and `>`, and its untied model pays per character an
# embedding row ($d = 128$ numbers), an output row (128) and an output bias.

# %%
import importlib.util

benchmark_file = utils.REPO_ROOT / "tests" / "benchmark.py"
spec = importlib.util.spec_from_file_location("benchmark", benchmark_file)
benchmark = importlib.util.module_from_spec(spec)
spec.loader.exec_module(benchmark)


def original_parameters(vocab_size: int) -> int:
    config = utils.GPTConfig(vocab_size=vocab_size, block_size=benchmark.ORIGINAL_BLOCK)
    return sum(p.numel() for p in benchmark.OriginalGPT(config).parameters())


per_character = 2 * config.n_embd + 1  # embedding row + output row + output bias
ours_vocab = corpus.tokenizer.vocab_size
print(f"original model, our {ours_vocab}-character vocabulary: {original_parameters(ours_vocab):,}")
print(f"original model, its 50-character vocabulary:   {original_parameters(50):,}")
print(f"difference: {ours_vocab - 50} character x {per_character} parameters")
assert original_parameters(50) == 542_770  # the figure the original notebook printed
difference = original_parameters(ours_vocab) - original_parameters(50)
assert difference == (ours_vocab - 50) * per_character

# %% [markdown]
# Ours, tied and without output bias, pays 128 parameters per character.

# %% [markdown]
# ## 7. Scaling up
#
# ### 7.1 The model-size study
#
# `tests/scaling.py` trains sizes from 0.05M to 1.2M parameters with lesson 3's recipe rescaled to
# 800 steps, on the first 90% of the training text, often estimating the **dev** loss (the last
# 10%). It keeps the best weights (**early stopping**), graded on the validation text in bits per
# character (bpc).

# %%
study = json.loads((utils.REPO_ROOT / "tests" / "scaling_cpu.json").read_text())
print("made with:", study["command"])
print("hardware: ", study["hardware"], "|", study["clock"])
print(f"budget:    at most {study['budget']['steps']:,} steps per size; {study['selection']}")
sizes = sorted(
    (r for r in study["runs"] if r["tokenizer"] == "chars"), key=lambda r: r["parameters"]
)
print(f"\n{'size':>6} {'parameters':>11} {'best dev at':>12} {'CPU s':>7} {'val bpc':>8}")
for r in sizes:
    print(
        f"{r['size']:>6} {r['parameters']:>11,} {r['best_step']:>6} of {r['steps']:<5} "
        f"{r['cpu_seconds']:>7.0f} {r['val_bpc']:>8.3f}"
    )
print(f"{sizes[-1]['parameters'] / sizes[0]['parameters']:.0f}x from the smallest to the largest")

# %% [markdown]
# Left: validation bpc against size, lesson 3's bigram and compressor yardsticks dashed. Right:
# each size's dev curve; dots: where early stopping kept the weights.


# %%
def plot_scaling(study: dict) -> None:
    runs = sorted(
        (r for r in study["runs"] if r["tokenizer"] == "chars"), key=lambda r: r["parameters"]
    )
    _, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    ax1.plot([r["parameters"] for r in runs], [r["val_bpc"] for r in runs], marker="o")
    for name, bits in study["baselines_bpc"].items():
        ax1.axhline(bits, linestyle="--", linewidth=1, color="gray")
        ax1.annotate(name, (runs[0]["parameters"], bits), va="bottom", fontsize=8, color="gray")
    ax1.set(
        xscale="log",
        xlabel="parameters (log scale)",
        ylabel="validation bits per character",
        title="Best-dev model of each size",
    )
    for r in runs:
        curve = r["dev_curve"]
        line = ax2.plot(curve["step"], curve["dev"], label=r["size"])[0]
        ax2.scatter(r["best_step"], r["best_dev_loss"], color=line.get_color(), zorder=3)
    ax2.set(xlabel="step", ylabel="dev loss (nats/char)", title="Dev curves", ylim=(None, 2.2))
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3, which="both")
    ax2.legend(fontsize=8)
    plt.tight_layout()
    plt.show()


plot_scaling(study)

# %% [markdown]
# Neighbouring sizes differ measurably only if the gap beats §4.2's confirmation noise (the
# ladder's largest seed spread, at the lesson's size, not the full-length rung's): the 800-step
# runs have no spread of their own.

# %%
noise_bits = ladder["confirmation"]["noise"] / math.log(2)  # §4.2's noise, in bits
best_size = min(sizes, key=lambda r: r["val_bpc"])
bz2_bits = study["baselines_bpc"]["bz2"]
bigram_bits = study["baselines_bpc"]["bigram"]
print(
    f"every size beats the bigram table ({bigram_bits:.2f} bpc) by more than the noise: "
    f"{all(r['val_bpc'] < bigram_bits - noise_bits for r in sizes)}"
)
below = [r["size"] for r in sizes if r["val_bpc"] < bz2_bits - noise_bits]
near = [r["size"] for r in sizes if abs(r["val_bpc"] - bz2_bits) <= noise_bits]
print(f"bz2 ({bz2_bits:.3f} bpc): sizes below it by more than the noise {below}, "
      f"within the noise of it {near}")
tied = [r["size"] for r in sizes if r["val_bpc"] - best_size["val_bpc"] <= noise_bits]
print(f"lowest: {best_size['size']} at {best_size['val_bpc']:.3f} bpc; within the noise "
      f"({noise_bits:.3f} bpc) of it: {', '.join(tied)}")
for small, big in itertools.pairwise(sizes):
    gain = small["val_bpc"] - big["val_bpc"]
    verdict = (
        "better"
        if gain > noise_bits
        else "worse"
        if gain < -noise_bits
        else "no measurable difference"
    )
    print(
        f"{small['size']:>6} -> {big['size']:<6} {gain:+.3f} bpc: {verdict}; "
        f"best dev at step {small['best_step']} -> {big['best_step']}"
    )

# %% [markdown]
# Where a bigger size stops paying, something else limits the score: too few steps, a recipe
# tuned at 0.57M, or too little text. Do the curves tell which?

# %%
last_best = [r["size"] for r in sizes if r["best_step"] == r["steps"]]
print(f"sizes whose dev loss was still at its best at the last step: {last_best}")
if len(last_best) == len(sizes):
    print(
        "none began to overfit within the budget: every dev loss was lowest at the last "
        "estimate; whether more steps would let a bigger size pull ahead, or more text, "
        "this study does not measure"
    )
else:
    early = [f"{r['size']} (step {r['best_step']})" for r in sizes if r["best_step"] < r["steps"]]
    print(f"early stopping kept an earlier model for: {', '.join(early)}: their dev loss was "
          "lower before the end than at it")
print(
    "a same-compute comparison would need budgets long enough to train the big sizes well: "
    "not affordable here, so the study does not claim one"
)

# %% [markdown]
# Samples of the smallest and largest model, same prompt and seed:


# %%
def side_by_side(left: str, right: str, titles: tuple[str, str], width: int = 44) -> None:
    """Two texts in two columns, cut to the same number of characters (↵ marks a newline)."""
    n = min(len(left), len(right))
    columns = [textwrap.wrap(text[:n].replace("\n", " ↵ "), width) for text in (left, right)]
    print(f"{titles[0]:<{width}}   {titles[1]}")
    for a, b in itertools.zip_longest(*columns, fillvalue=""):
        print(f"{a:<{width}} | {b}")


print(f"prompt: {study['prompt']!r}\n")
small, big = sizes[0], sizes[-1]
side_by_side(
    small["sample"],
    big["sample"],
    (f"{small['size']}: {small['val_bpc']:.2f} bpc", f"{big['size']}: {big['val_bpc']:.2f} bpc"),
)

# %% [markdown]
# ### 7.2 Subword tokens: byte-pair encoding
#
# Our model spends one position (one forward pass, when generating) on each letter of "the".
# **Byte-pair encoding** (BPE, as in GPT-2) makes the training text's most frequent adjacent pair of
# tokens a new token, again and again.
#
# Step 1: cut the text into chunks merges may not cross (a word with its leading space, a run of
# punctuation or whitespace), so no token glues two words.

# %%
import re
from collections import Counter

CHUNK = re.compile(r" ?\w+| ?[^\w\s]+|\s+")
example = "‘what is the use of a book,’ thought alice"
print(CHUNK.findall(example))
train_text = corpus.tokenizer.normalize(corpus.train_text)
assert CHUNK.findall(train_text) == utils.split_chunks(train_text)  # the helper is this regex
assert "".join(CHUNK.findall(train_text)) == train_text  # nothing is lost

# %% [markdown]
# Step 2: count adjacent pairs. Each distinct chunk is counted once, with its frequency.


# %%
def count_pairs(words: Counter) -> Counter:
    """How often each adjacent pair of tokens occurs, over words (tuples of ids) with counts."""
    pairs = Counter()
    for word, count in words.items():
        for pair in itertools.pairwise(word):
            pairs[pair] += count
    return pairs


chars = corpus.tokenizer
words = Counter(tuple(chars.encode(chunk)) for chunk in CHUNK.findall(train_text))
pairs = count_pairs(words)
print(f"{sum(words.values()):,} chunks, {len(words):,} distinct")
print("most frequent pairs:", [(chars.decode(p), n) for p, n in pairs.most_common(5)])

# %% [markdown]
# Step 3: merge. Replace every occurrence of the chosen pair, read left to right, by the new id.


# %%
def merge(ids: tuple[int, ...], pair: tuple[int, int], new_id: int) -> tuple[int, ...]:
    out, i = [], 0
    while i < len(ids):
        if ids[i : i + 2] == pair:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return tuple(out)


the = tuple(chars.encode(" the"))
print(the, "->", merge(the, tuple(chars.encode("th")), 99))
assert list(merge(the, (the[1], the[2]), 99)) == utils.merge_pair(the, (the[1], the[2]), 99)

# %% [markdown]
# Step 4: repeat, a number of times fixed **without** looking at validation results: 256 merges
# (51 + 256 = 307 tokens). A late merge may be a rare pair of the training split. Quick mode
# learns fewer.

# %%
num_merges = utils.by_mode(full=study["bpe"]["merges"], quick=32)
merges = []
for _ in range(num_merges):
    pairs = count_pairs(words)
    best = max(pairs, key=pairs.__getitem__)  # ties: the pair seen first
    new_id = chars.vocab_size + len(merges)
    merges.append(best)
    words = Counter({merge(w, best, new_id): c for w, c in words.items()})
bpe = utils.BPETokenizer.train(corpus.train_text, chars, num_merges)
assert merges == bpe.merges  # the helper learns the same merges
print(bpe)
print("first merges:", [bpe.pieces[chars.vocab_size + i] for i in range(12)])
print("last merges: ", [bpe.pieces[-i] for i in range(12, 0, -1)])

# %% [markdown]
# Step 5: encode new text: in each chunk, apply the earliest-learned merge present, again and again.
# Decoding joins the pieces; the round trip is exact (lower-cased); BPE is built on our characters,
# so an unknown character raises lesson 1's `ValueError`.


# %%
def encode_chunk(chunk: str) -> tuple[int, ...]:
    ids = tuple(chars.encode(chunk))
    rank = {pair: i for i, pair in enumerate(merges)}
    while len(ids) > 1:
        pair = min(itertools.pairwise(ids), key=lambda p: rank.get(p, len(rank)))
        if pair not in rank:
            break
        ids = merge(ids, pair, chars.vocab_size + rank[pair])
    return ids


val_text = corpus.val_text
ids = [i for chunk in CHUNK.findall(chars.normalize(val_text)) for i in encode_chunk(chunk)]
assert ids == bpe.encode(val_text)  # the helper encodes the same way
assert bpe.decode(ids) == chars.normalize(val_text)  # exact round trip
print([bpe.decode([i]) for i in bpe.encode(example)])
try:
    bpe.encode("alice & co")
except ValueError as error:
    print("ValueError:", str(error)[:60], "...")

# %% [markdown]
# What BPE buys: fewer tokens for the same text, so a block of 256 positions holds more
# characters, and a training step reads more of the book.

# %%
chars_per_token = len(val_text) / len(ids)
print(f"validation text: {len(val_text):,} characters = {len(ids):,} BPE tokens "
      f"({chars_per_token:.2f} characters per token)")
block = config.block_size
print(f"context of one block: {block} characters, or about "
      f"{block * chars_per_token:.0f} characters of validation text in {block} BPE tokens")

# %% [markdown]
# **A fair comparison.** A BPE token carries 2.2 characters on average, so its loss is larger
# even for a better model: both are graded in bits per character (`utils.bits_per_character`).
# The BPE model: the 0.57M configuration, same recipe and early stopping, 307 embedding rows.

# %%
bpe_run = next(r for r in study["runs"] if r["tokenizer"] == "bpe")
char_run = next(r for r in sizes if r["size"] == bpe_run["size"])
print(f"{'':22}{'characters':>12}{'BPE':>12}")
for key, name, fmt in (
    ("parameters", "parameters", "{:,}"),
    ("best_step", "best dev at step", "{:,}"),
    ("cpu_seconds", "CPU seconds", "{:.0f}"),
    ("characters_per_s", "characters/s", "{:,.0f}"),
    ("context_characters", "context chars (train)", "{:.0f}"),
    ("val_bpc", "val bits/character", "{:.3f}"),
):
    print(f"{name:22}{fmt.format(char_run[key]):>12}{fmt.format(bpe_run[key]):>12}")
difference = char_run["val_bpc"] - bpe_run["val_bpc"]
if abs(difference) <= noise_bits:
    print(f"\nno measurable difference: {difference:+.3f} bpc, noise {noise_bits:.3f}")
else:
    winner = "BPE tokens" if difference > 0 else "characters"
    print(
        f"\n{winner} reach the lower validation bpc, by {abs(difference):.3f} "
        f"(noise {noise_bits:.3f}), each graded at its best dev step within "
        f"{max(char_run['steps'], bpe_run['steps']):,} steps"
    )
side_by_side(char_run["sample"], bpe_run["sample"], ("characters", "BPE tokens"))

# %% [markdown]
# The network is the same; only embedding and head grow. The BPE run reads the book more often. The
# price: a vocabulary to learn, a tokenizer that must travel with every checkpoint, and here a
# worse validation score (above).

# %% [markdown]
# ### 7.3 Several processes: `torchrun` and DistributedDataParallel
#
# Under `torchrun` (PyTorch's multi-process launcher), each process (a *rank*) of
# `tests/ddp_pretrain.py` calls `utils.train` with `ranks=Ranks(device)`: `DistributedDataParallel`
# wraps the model, averaging gradients across ranks; rank $r$ of $N$ takes rows $rB/N$ to
# $(r+1)B/N$ of the shared batch; only rank 0 prints and saves.
# `tests/test_distributed.py` checks that two processes match one with the whole batch and resume
# exactly. To time them: `python tests/ddp_pretrain.py --compare ddp.json --steps 30 --dropout 0`.

# %% [markdown]
# ## Summary
#
# - Most parameters sit in attention and MLP weights; attention over the context is a large share
#   of the FLOPs.
# - Speeds are timed in interleaved rounds of one process, so load slows them alike;
#   budget runs count CPU time; the ladder keeps only tricks beating the seed noise.
# - Compare model sizes against the seed noise, tokenizers in bits per character.
# - Under `torchrun`, `utils.train` gives one process's batches and losses.

# %% [markdown]
# ## Exercises
#
# 1. **Attention's share.** With `utils.flops_per_token`, find the share of attention-score FLOPs
#    at block size 64, 128 and 256. What does it say about longer contexts?
# 2. **Stable numbers.** Run `python tests/benchmark.py` twice: are ratios or absolute numbers
#    steadier?
# 3. **On a GPU.** On a Colab T4, run `!python ../tests/benchmark.py --device cuda`; compare the
#    speed-up with your CPU's.
# 4. **Tokens of a name.** Tokenize "the mock turtle" with `bpe`. Which words became single
#    tokens, and why?

# %% [markdown]
# ## Solutions
#
# Solutions 1 and 4 run with the lesson (collapsed in Jupyter: click to open); 2 and 3 need runs
# outside it.
#
# **Solution 1.** Attention-score FLOPs as a share of all training FLOPs:

# %% jupyter={"source_hidden": true}
for t in (64, 128, 256):
    c = utils.GPTConfig(vocab_size=corpus.tokenizer.vocab_size, block_size=t)
    scores = 3 * c.n_layer * 2 * 2 * t * c.n_embd  # QK^T and AV, forward and backward
    share = scores / utils.flops_per_token(c)
    print(f"block {t:>3}: attention scores are {share:.0%} of the FLOPs")

# %% [markdown]
# Per token, score FLOPs grow with the context, weight FLOPs do not: the share grows with the block.
#
# **Solution 2.** Ratios should be steadier: background load slows both models alike, and cancels.
#
# **Solution 3.** No GPU run is recorded here: compare its speed-up (ours / original) and MFU with
# §4 and §5.
#
# **Solution 4.** Each token, and how often the training split holds it as a chunk:

# %% jupyter={"source_hidden": true}
chunk_counts = Counter(CHUNK.findall(train_text))
for piece in (bpe.decode([i]) for i in bpe.encode("the mock turtle")):
    print(f"{piece!r:>10}: one token; a chunk {chunk_counts[piece]:,} times in the training split")

# %% [markdown]
# Merges fuse the most frequent pairs first, so text frequent enough becomes one token; how
# frequent depends on the number of merges (§7.2).
