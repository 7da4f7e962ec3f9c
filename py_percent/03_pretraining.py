# ---
# jupyter:
#   jupytext:
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
# # Lesson 3 — Pretraining
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/your-username/GPT-0.5M/blob/main/notebooks/03_pretraining.ipynb)
#
# **What you will learn:** how the GPT of lesson 2 learns to predict the book's next character:
# the training loop piece by piece, the real run, yardsticks, and how to read the loss curves.
#
# - **Reads:** the book in `data/`.
# - **Writes:** the base checkpoint `checkpoints/full/base.pt`, which lessons 4–7 load.
# - **Runtime:** §8.2 prints the time spent in training steps (loss estimates and saves aside).

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
# The main imports of this lesson (§9 adds the compressors).

# %%
import dataclasses
import math
import statistics

import matplotlib.pyplot as plt
import torch

# %% [markdown]
# ## 1. The data and a fresh model
#
# `utils.load_corpus()` does lesson 1 in one call: the book, its character vocabulary, and the
# encoded splits (first 90% train, last 10% validation).

# %%
# NBVAL_CHECK_OUTPUT
corpus = utils.load_corpus()
tokenizer = corpus.tokenizer
print(f"vocabulary: {tokenizer.vocab_size} characters")
print(f"train split: {len(corpus.splits['train']):,} characters")
print(f"val split:   {len(corpus.splits['val']):,} characters")

# %% [markdown]
# A fresh GPT-0.5M, exactly as lesson 2 built it. The seed fixes the random initial weights,
# so every run of this lesson starts from the same model.

# %%
# NBVAL_CHECK_OUTPUT
cfg = utils.PRETRAIN  # the pretraining recipe; we look at all its fields in §8
torch.manual_seed(cfg.seed)
model = utils.build_model(tokenizer).to(device)
print(f"parameters: {model.num_parameters():,}")

# %% [markdown]
# ## 2. One training step, by hand
#
# A training step has four parts:
#
# 1. **Batch:** windows of text `x`, and the same windows one character on, `y`.
# 2. **Forward:** predict the next character at every position; the **loss** measures how wrong
#    that is.
# 3. **Backward:** each weight's **gradient**: how the loss would change if that weight grew a
#    little.
# 4. **Update:** the optimizer moves each weight against its gradient.
#
# ### 2.1 A batch
#
# `utils.book_batches` returns `get_batch(split, generator)`; the generator draws only the
# batches.

# %%
block_size = model.config.block_size  # characters of context (from GPTConfig)
get_batch = utils.book_batches(corpus.splits, block_size, cfg.batch_size)
batch_rng = torch.Generator().manual_seed(cfg.seed)

x, y = get_batch("train", batch_rng)  # (B, T), (B, T)
print("x:", tuple(x.shape), x.dtype, "| y:", tuple(y.shape))
print("x[0] as text:", repr(tokenizer.decode(x[0, :50])))
print("y[0] as text:", repr(tokenizer.decode(y[0, :50])))
assert torch.equal(x[:, 1:], y[:, :-1])  # y is x shifted left by one character

# %% [markdown]
# Each row holds `block_size` training examples at once: from position `t`, the model
# must predict `y[t]` having seen `x[0..t]`. So one batch grades
# `batch_size × block_size` predictions.

# %% [markdown]
# ### 2.2 Forward: the loss
#
# The model returns logits `(B, T, vocab)` and the loss: the mean cross-entropy over all
# positions, in **nats** (natural logarithm; ÷ ln 2 gives bits). Untrained, it spreads its
# probability almost evenly, so the loss sits a little above ln(vocab size) (lesson 2 §9.1).

# %%
model.train()  # dropout on, as during training
logits, loss = model(x.to(device), y.to(device))  # logits: (B, T, vocab)
print("logits:", tuple(logits.shape))
print(f"loss: {loss.item():.4f}   ln(vocab) = {math.log(tokenizer.vocab_size):.4f}")
assert abs(loss.item() - math.log(tokenizer.vocab_size)) < 0.25

# %% [markdown]
# ### 2.3 Backward: the gradients
#
# `loss.backward()` fills `p.grad`, the gradient, for every parameter `p`. A few of them:

# %%
model.zero_grad(set_to_none=True)
loss.backward()

for name, p in list(model.named_parameters())[:6]:
    print(f"{name:<28} {tuple(p.shape)!s:<12} grad norm {p.grad.norm():.4f}")
assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())

# %% [markdown]
# ## 3. The optimizers: AdamW and Muon
#
# ### 3.1 AdamW
#
# Gradient descent moves each weight by `lr × gradient` (`lr`: the **learning rate**). **Adam**
# moves it by `lr × m / √v`, with running averages of its gradient (`m`, the *momentum*) and of
# its square (`v`): similar steps for all weights. **AdamW** also shrinks each weight by `lr ×
# weight_decay × w` every step (*weight decay*).
#
# With `optimizer="adamw"`, `utils.make_optimizer` returns one AdamW with two parameter groups:

# %%
adamw_cfg = dataclasses.replace(cfg, optimizer="adamw")  # AdamW for every tensor
(optimizer,) = utils.make_optimizer(model, adamw_cfg, device)

names = {id(p): n for n, p in model.named_parameters()}
for group in optimizer.param_groups:
    params = group["params"]
    print(
        f"weight_decay={group['weight_decay']:<4} {len(params):>2} tensors, "
        f"{sum(p.numel() for p in params):>7,} numbers, e.g. {names[id(params[0])]}, "
        f"{names[id(params[1])]}"
    )

decay, no_decay = (g["params"] for g in optimizer.param_groups)
assert all(p.dim() >= 2 for p in decay) and all(p.dim() < 2 for p in no_decay)
assert len(decay) + len(no_decay) == len(list(model.parameters()))  # every tensor, once

# %% [markdown]
# Why decay only the matrices?
#
# - **Matrices** (linear weights, embeddings) hold almost all parameters; pulling them towards
#   zero makes memorising harder.
# - **Vectors** (biases, LayerNorm scales and shifts) set offsets and scales; decay would only
#   shrink the signal.
# - The tied embedding/output matrix counts once.
#
# One step, and how far each weight moves:

# %%
for group in optimizer.param_groups:
    group["lr"] = cfg.lr  # the peak learning rate, to make the effect visible

before = [p.detach().clone() for p in model.parameters()]
optimizer.step()
moved = torch.cat(
    [(p.detach() - b).abs().flatten() for p, b in zip(model.parameters(), before, strict=True)]
)
print(f"learning rate:              {cfg.lr:.1e}")
print(f"median |change| per weight: {moved.median():.1e}")
assert 0.8 < (moved.median() / cfg.lr).item() < 1.2

# %% [markdown]
# On its **first** step Adam moves the median weight by the learning rate: after one gradient,
# `m / √v` is ±1. Steps that large, in noisy directions, are what the warm-up (small learning
# rates at first, §4) guards against; clipping (§5: scaling a too-large gradient down) only limits
# one huge gradient's pull on the running averages. Solution 1 drops both in one pair of
# runs.

# %% [markdown]
# ### 3.2 Muon: momentum, then orthogonalise
#
# A matrix's **singular values** measure how much it stretches along each of its main directions.
# **Muon** (Keller Jordan et al.) takes a running mean of each weight matrix's gradients
# (momentum), then moves its singular values towards 1, keeping the directions: no direction gets
# a huge step while others get almost none.
#
# Five rounds of **Newton–Schulz**, only matrix products, do this approximately:


# %%
def orthogonalise(g: torch.Tensor, steps: int = 5) -> torch.Tensor:
    """Newton–Schulz: g with its singular values pushed towards 1, singular vectors kept."""
    a, b, c = 3.4445, -4.7750, 2.0315  # tuned for speed, not for exactly 1 (Jordan et al.)
    tall = g.size(0) > g.size(1)
    x = g.T if tall else g  # work on the wide side: x @ x.T is then the smaller matrix
    x = x / x.norm()  # Frobenius norm, √(sum of squares): every singular value is now <= 1
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x  # an odd polynomial of the singular values
    return x.T if tall else x


# %% [markdown]
# Each round maps every singular value σ to aσ + bσ³ + cσ⁵: small values grow about 3.4× per round,
# values near 1 stay in a band around it, not at 1. Five rounds lift small values only part of
# the way: many stay well below 1, so the result is far more even than the gradient, not perfectly
# even. On §2.3's gradient of the first block's attention matrix:

# %%
grad = model.blocks[0].attn.qkv.weight.grad
before_sv = torch.linalg.svdvals(grad)
after_sv = torch.linalg.svdvals(orthogonalise(grad))
assert torch.allclose(orthogonalise(grad), utils.newton_schulz(grad), atol=1e-5)  # = utils

fig, ax = plt.subplots(figsize=(7, 3.2))
ax.semilogy(before_sv / before_sv.max(), label="gradient (divided by its largest)")
ax.semilogy(after_sv, label="after Newton–Schulz")
ax.set(
    xlabel="singular value, largest first",
    ylabel="size (log scale)",
    title=f"blocks.0.attn.qkv.weight {tuple(grad.shape)}",
)
ax.grid(alpha=0.3)
ax.legend()
plt.show()
near_one = lambda sv: int(((sv > 0.5) & (sv < 1.5)).sum())  # singular values close to 1
print(
    f"singular values between 0.5 and 1.5: {near_one(before_sv / before_sv.max())} of "
    f"{len(before_sv)} before (divided by the largest), {near_one(after_sv)} after"
)
assert near_one(after_sv) > near_one(before_sv / before_sv.max())

# %% [markdown]
# A whole Muon step for one matrix `p`, in four lines. The momentum `buf` starts at zero; tall
# matrices step a little further, by √(rows / columns), as in Muon's authors' code.


# %%
def muon_step(p: torch.Tensor, buf: torch.Tensor, lr: float, weight_decay: float) -> None:
    """One Muon update of the matrix ``p`` from its gradient; ``buf`` is its momentum."""
    buf.lerp_(p.grad, 1 - 0.95)  # momentum: buf = 0.95 * buf + 0.05 * grad
    update = orthogonalise(p.grad.lerp(buf, 0.95))  # Nesterov: look ahead along the momentum
    p.mul_(1 - lr * weight_decay)  # decoupled weight decay, as in AdamW
    p.add_(update, alpha=-lr * max(1, p.size(0) / p.size(1)) ** 0.5)


# %% [markdown]
# Proof: three steps by hand, with `utils.Muon` and with `torch.optim.Muon` (PyTorch 2.9 and
# later), on copies of one matrix. PyTorch's version orthogonalises in bfloat16 (a 16-bit float),
# so it agrees only to that precision.

# %%
start = model.blocks[0].attn.qkv.weight.detach().clone()
copies = {name: torch.nn.Parameter(start.clone()) for name in ("hand", "utils", "torch")}
buf = torch.zeros_like(start)
ours = utils.Muon([copies["utils"]], lr=cfg.muon_lr, weight_decay=cfg.weight_decay)
theirs = None
if hasattr(torch.optim, "Muon"):
    theirs = torch.optim.Muon([copies["torch"]], lr=cfg.muon_lr, weight_decay=cfg.weight_decay)
gen = torch.Generator().manual_seed(0)
with torch.no_grad():
    for _ in range(3):
        g = torch.randn(start.shape, generator=gen) * grad.std()
        for copy in copies.values():
            copy.grad = g.clone()
        muon_step(copies["hand"], buf, cfg.muon_lr, cfg.weight_decay)
        ours.step()
        if theirs:
            theirs.step()
hand_vs_utils = (copies["hand"] - copies["utils"]).abs().max().item()
print(f"hand vs utils.Muon:        max |difference| {hand_vs_utils:.1e}")
assert hand_vs_utils < 1e-6
if theirs:
    moved = (copies["torch"] - start).abs().max().item()
    hand_vs_torch = (copies["hand"] - copies["torch"]).abs().max().item()
    print(
        f"hand vs torch.optim.Muon:  max |difference| {hand_vs_torch:.1e} "
        f"(the weights moved by up to {moved:.1e})"
    )
    assert hand_vs_torch < 0.05 * moved
else:
    print("torch.optim.Muon needs PyTorch 2.9 or later: compared with utils.Muon only")

# %% [markdown]
# `utils.newton_schulz` uses bfloat16 only on a GPU whose hardware multiplies it fast (compute
# capability, NVIDIA's chip generation, 8.0+; not Colab's T4); elsewhere 32-bit floats. Muon takes
# only the blocks' weight matrices; AdamW takes the rest:

# %%
optimizers = utils.make_optimizer(model, cfg, device)
names = {id(p): n for n, p in model.named_parameters()}
for opt in optimizers:
    params = [p for group in opt.param_groups for p in group["params"]]
    shown = ", ".join(names[id(p)] for p in params[:3])
    print(
        f"{type(opt).__name__:<6} peak lr {opt.param_groups[0]['peak_lr']:.0e}: "
        f"{len(params):>2} tensors, {sum(p.numel() for p in params):>7,} numbers, e.g. {shown}"
    )
assert sum(len(g["params"]) for o in optimizers for g in o.param_groups) == len(names)

# %% [markdown]
# ## 4. The learning-rate schedule
#
# First a linear **warm-up**, from `cfg.lr / warmup_steps` (step 0) to `cfg.lr`, while the
# optimizers' averages are noisy. Then one of two shapes:
#
# - **cosine:** half a cosine down to `cfg.min_lr` at `cfg.max_steps`;
# - **warm-up/stable/decay (WSD):** stay at `cfg.lr`, then fall linearly to `cfg.min_lr` over the
#   last `decay_fraction` of the steps.
#
# Written out (Muon's learning rate follows in proportion):


# %%
def lr_schedule(step: int, cfg: utils.TrainConfig) -> float:
    """AdamW's learning rate at optimizer step ``step`` (from 0): warm-up, then cosine or WSD."""
    if step < cfg.warmup_steps:  # steps 0, 1, ...: lr/warmup, 2 lr/warmup, ..., lr
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.schedule == "wsd":
        decay_start = max(
            cfg.warmup_steps, cfg.max_steps - round(cfg.decay_fraction * cfg.max_steps)
        )
        progress = (step - decay_start) / max(1, cfg.max_steps - decay_start)
        return cfg.lr - min(1.0, max(0.0, progress)) * (cfg.lr - cfg.min_lr)
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps))
    cosine = 0.5 * (1.0 + math.cos(math.pi * progress))  # 1 -> 0
    return cfg.min_lr + cosine * (cfg.lr - cfg.min_lr)


# %% [markdown]
# The training loop uses `utils.lr_at`. It must agree with ours at **every** step, for each plan
# of the series and both shapes.

# %%
for plan_name in ("PRETRAIN", "PRETRAIN_SHORT", "FINETUNE"):
    plan = getattr(utils, plan_name)
    for shape in ("cosine", "wsd"):
        variant = dataclasses.replace(plan, schedule=shape)
        for step in range(plan.max_steps + 1):
            assert lr_schedule(step, variant) == utils.lr_at(step, variant), (plan_name, step)
    print(f"utils.{plan_name:<15} {plan.max_steps + 1:>5} steps, cosine and WSD: identical")

# %% [markdown]
# Both shapes for this lesson's run; solid: the one `utils.PRETRAIN` uses, chosen in lesson 7 §4.2
# on a slice of the training text (quick mode shortens the plan).

# %%
fig, ax = plt.subplots(figsize=(7, 3.5))
for shape in ("wsd", "cosine"):
    variant = dataclasses.replace(cfg, schedule=shape)
    style = "-" if shape == cfg.schedule else "--"
    ax.plot([lr_schedule(s, variant) for s in range(cfg.max_steps)], style, label=shape)
ax.axhline(cfg.min_lr, color="tab:red", linestyle=":", linewidth=1, label="min_lr")
ax.set(xlabel="step", ylabel="AdamW learning rate", title=f"utils.PRETRAIN: {cfg.schedule}")
ax.grid(alpha=0.3)
ax.legend()
plt.show()

lrs = [lr_schedule(s, cfg) for s in range(cfg.max_steps)]
print(
    f"{cfg.warmup_steps} warm-up steps of {cfg.max_steps}; peak {cfg.lr:.1e} "
    f"(Muon: {cfg.muon_lr:.1e}), floor {cfg.min_lr:.1e}, shape {cfg.schedule}"
)
assert math.isclose(lr_schedule(cfg.warmup_steps - 1, cfg), cfg.lr)  # peak at end of warm-up
assert all(0 < lr <= cfg.lr for lr in lrs)
assert math.isclose(lr_schedule(cfg.max_steps, cfg), cfg.min_lr)  # floor at the end

# %% [markdown]
# ## 5. Gradient clipping
#
# With plain gradient descent (step = learning rate × gradient), one unusually large gradient would
# make one huge step. **Clipping** treats all gradients as one long vector; if its length (the
# *global norm*) is above `cfg.grad_clip`, it scales it down to that length, direction unchanged. A
# helper measures the global norm:


# %%
def global_grad_norm(model: torch.nn.Module) -> float:
    """Length of all gradients of ``model`` seen as one vector."""
    grads = [p.grad.flatten() for p in model.parameters() if p.grad is not None]
    return torch.cat(grads).norm().item()


# %% [markdown]
# One step's gradient, before and after `torch.nn.utils.clip_grad_norm_` (which returns the norm
# before clipping):

# %%
x, y = get_batch("train", batch_rng)
_, loss = model(x.to(device), y.to(device))
model.zero_grad(set_to_none=True)
loss.backward()

norm_before = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip).item()
norm_after = global_grad_norm(model)
print(f"clip at:     {cfg.grad_clip}")
print(f"norm before: {norm_before:.4f}")
print(f"norm after:  {norm_after:.4f}")
assert abs(norm_after - min(norm_before, cfg.grad_clip)) < 1e-3

# %% [markdown]
# Clipping caps the gradient's length, not the step's: AdamW and Muon size their steps themselves
# (§3). §7 counts how often clipping acts in the first steps.

# %% [markdown]
# ## 6. Measuring progress: `utils.estimate_loss`
#
# One batch's loss depends on the text drawn. `estimate_loss` averages `cfg.eval_iters` batches
# per split, in `eval()` mode (no dropout), without gradients, from a **fixed seed**: every
# estimate grades the same text, so a change comes from the model.

# %%
same_1 = utils.estimate_loss(model, get_batch, ["train", "val"], cfg.eval_iters, device, seed=0)
same_2 = utils.estimate_loss(model, get_batch, ["train", "val"], cfg.eval_iters, device, seed=0)
print("seed 0:      ", {k: round(v, 4) for k, v in same_1.items()})
print("seed 0 again:", {k: round(v, 4) for k, v in same_2.items()})
assert same_1 == same_2  # same text, same model: exactly the same number

# %% [markdown]
# ## 7. A tiny training loop, by hand
#
# §2's four parts, plus the schedule (§4) and clipping (§5), for `n_steps` steps of
# `utils.PRETRAIN` on a fresh model, a fifth of them warm-up.

# %%
n_steps = utils.by_mode(full=60, quick=5)
demo_cfg = dataclasses.replace(
    cfg, max_steps=n_steps, warmup_steps=max(1, n_steps // 5), eval_interval=n_steps
)

torch.manual_seed(demo_cfg.seed)
demo = utils.build_model(tokenizer).to(device).train()
optimizers = utils.make_optimizer(demo, demo_cfg, device)  # AdamW, and Muon if the plan says
batch_rng = torch.Generator().manual_seed(demo_cfg.seed)  # batches
torch.manual_seed(demo_cfg.seed)  # dropout

losses, grad_norms = [], []
for step in range(demo_cfg.max_steps):
    share = utils.lr_at(step, demo_cfg) / demo_cfg.lr  # 1. this step's share of the peak
    for opt in optimizers:
        for group in opt.param_groups:
            group["lr"] = group["peak_lr"] * share
    x, y = get_batch("train", batch_rng)  # 2. batch: (B, T), (B, T)
    _, loss = demo(x.to(device), y.to(device))  # 3. forward
    for opt in optimizers:
        opt.zero_grad(set_to_none=True)
    loss.backward()  # 4. backward
    norm = torch.nn.utils.clip_grad_norm_(demo.parameters(), demo_cfg.grad_clip)  # 5. clip
    for opt in optimizers:
        opt.step()  # 6. update
    losses.append(loss.item())
    grad_norms.append(norm.item())

print(f"loss: step 1 {losses[0]:.4f} -> step {n_steps} {losses[-1]:.4f}")
assert sum(losses[-3:]) / 3 < losses[0]  # the loss went down

# %% [markdown]
# The loss per step, and the gradient norm the clipping saw (dotted: the clip limit).

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.2))
ax1.plot(range(1, n_steps + 1), losses, marker=".")
ax1.set(xlabel="step", ylabel="training loss (nats/char)", title="Loss per step")
ax2.plot(range(1, n_steps + 1), grad_norms, marker=".", color="tab:orange")
ax2.axhline(demo_cfg.grad_clip, color="gray", linestyle=":")
ax2.set(xlabel="step", ylabel="global grad norm", title="Gradient norm before clipping")
for ax in (ax1, ax2):
    ax.grid(alpha=0.3)
plt.tight_layout()
plt.show()

# %% [markdown]
# In numbers: the gradient norm's peak, how often clipping acted, how often the loss rose (with a
# warm-up of `n_steps / 5` steps, the peak learning rate comes fast).

# %%
peak = max(range(n_steps), key=grad_norms.__getitem__)
n_clipped = sum(norm > demo_cfg.grad_clip for norm in grad_norms)
rises = [losses[i] - losses[i - 1] for i in range(1, n_steps) if losses[i] > losses[i - 1]]
print(f"largest gradient norm: {grad_norms[peak]:.2f} at step {peak + 1} "
      f"(learning rate {utils.lr_at(peak, demo_cfg):.1e})")
print(f"clipping acted on {n_clipped} of {n_steps} steps (norm above {demo_cfg.grad_clip})")
if rises:
    print(f"the loss rose on {len(rises)} of {n_steps - 1} steps, at most by {max(rises):.3f}")
else:
    print("the loss fell on every step")

# %% [markdown]
# `utils.train` is this loop plus loss estimates, a progress bar, checkpoints, and on a GPU
# **mixed precision** (matrix products in 16-bit floats, weights kept in 32-bit). Proof: the same
# seeds give the same losses. (`stop_at` ends it early.)

# %%
n_check = min(n_steps, utils.by_mode(full=10, quick=3))
torch.manual_seed(demo_cfg.seed)
twin = utils.build_model(tokenizer).to(device)
twin_history = utils.train(
    twin, get_batch, demo_cfg, tokenizer=tokenizer, stop_at=n_check, progress=False
)

ours, theirs = losses[:n_check], twin_history["train_step_loss"]
print("hand loop: ", [round(v, 5) for v in ours])
print("utils.train:", [round(v, 5) for v in theirs])
tolerance = 5e-2 if device.type == "cuda" else 1e-4  # on a GPU utils.train uses mixed precision
assert max(abs(a - b) for a, b in zip(ours, theirs, strict=True)) < tolerance

# %% [markdown]
# ## 8. The real run
#
# ### 8.1 The recipe
#
# `utils.PRETRAIN` is a `TrainConfig`: each field, its default and this run's value (the comments
# in `utils.py` say what each field means).

# %%
default = utils.TrainConfig()
changed = [f.name for f in dataclasses.fields(default)
           if getattr(utils.PRETRAIN, f.name) != getattr(default, f.name)]
print(f"{'field':<14} {'default':>8} {'this run':>9}")
for f in dataclasses.fields(default):
    ours, mark = getattr(utils.PRETRAIN, f.name), "  (changed)" if f.name in changed else ""
    print(f"{f.name:<14} {getattr(default, f.name)!s:>8} {ours!s:>9}{mark}")
print(f"{len(changed)} of {len(dataclasses.fields(default))} fields differ from the defaults")

# %% [markdown]
# How much text is that? Characters read (`batch_size × block_size` per step) over the training
# split's length gives the passes over the book, or **epochs** (random windows read some text more
# often).

# %%
chars_seen = utils.PRETRAIN.max_steps * utils.PRETRAIN.batch_size * block_size
print(f"characters read in training: {chars_seen:,}")
print(f"passes over the training split: {chars_seen / len(corpus.splits['train']):.1f}")

# %% [markdown]
# ### 8.2 Train
#
# `utils.pretrain` builds a fresh model with the recipe's seed and runs `utils.train`. Every
# `eval_interval` steps it prints the estimates and saves a checkpoint (to a temporary file, then
# renamed, so never half-written). Interrupted, it saves first; re-running the cell **resumes
# exactly**. A finished checkpoint is just loaded.

# %%
model, history = utils.pretrain(corpus, utils.PRETRAIN, utils.BASE_CHECKPOINT, device)

# %% [markdown]
# The training time (yours depends on hardware and load; quick mode runs far fewer steps):

# %%
seconds, done = history["seconds"][-1], history["step"][-1]
print(f"{done} steps in {seconds / 60:.1f} min on {device}")
print(f"{done / seconds:.1f} steps/s = {done * cfg.batch_size * block_size / seconds:,.0f} chars/s")

# %% [markdown]
# ## 9. Yardsticks: what is a good loss?
#
# Three yardsticks, in **bits per character** (nats ÷ ln 2):
#
# - a **uniform guess** over the vocabulary;
# - a **bigram count table**: how often each character follows each other in the training text,
#   plus one everywhere;
# - **compressors** (zlib, bz2, lzma): the bytes train + validation takes beyond train alone, ×8 ÷
#   validation characters.
#
# The bigram table in five lines:

# %%
train_ids, val_ids, vocab = corpus.splits["train"], corpus.splits["val"], tokenizer.vocab_size
counts = torch.ones(vocab, vocab)  # add-one smoothing
counts.index_put_((train_ids[:-1], train_ids[1:]), torch.ones(len(train_ids) - 1), accumulate=True)
probs = counts / counts.sum(dim=1, keepdim=True)  # row: this character, column: the next
bigram_bits = -probs[val_ids[:-1], val_ids[1:]].log2().mean().item()
print(f"bigram table: {bigram_bits:.3f} bits per validation character")

# %% [markdown]
# The compressors, on the lower-cased text the model reads. `utils.baseline_bits_per_char`
# computes all of these; lesson 7's scaling study (`tests/scaling.py`) reuses it.

# %%
import bz2
import lzma
import zlib

seen, new = (tokenizer.decode(ids.tolist()).encode() for ids in (train_ids, val_ids))
yardsticks = {"uniform guess": math.log2(vocab), "bigram table": bigram_bits}
for name, compress in (("zlib", zlib.compress), ("bz2", bz2.compress), ("lzma", lzma.compress)):
    yardsticks[name] = 8 * (len(compress(seen + new)) - len(compress(seen))) / len(val_ids)
for name, bits in yardsticks.items():
    print(f"{name:<14} {bits:.3f} bits/char = {bits * math.log(2):.3f} nats/char")
baselines = utils.baseline_bits_per_char(corpus)
assert math.isclose(baselines["bigram"], bigram_bits)
assert all(math.isclose(baselines[k], yardsticks[k]) for k in ("zlib", "bz2", "lzma"))

# %% [markdown]
# ## 10. Loss curves: is it overfitting?
#
# Left: the estimates on both splits (dotted: best validation) and two yardsticks (dashed). Right:
# every step's training loss, noisy because each batch is different text, and its moving average.

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
utils.plot_losses(history, ax=ax1, title="Estimated loss (train / val)")
for name, color in (("bigram", "tab:gray"), ("bz2", "tab:purple")):
    ax1.axhline(baselines[name] * math.log(2), color=color, linestyle="--", linewidth=1)
    ax1.annotate(name, (history["step"][0], baselines[name] * math.log(2)), color=color,
                 va="bottom")

step_losses = history["train_step_loss"]
window = max(5, len(step_losses) // 50)
smooth = [  # mean of the last `window` steps (fewer at the start)
    sum(step_losses[max(0, i + 1 - window) : i + 1]) / min(i + 1, window)
    for i in range(len(step_losses))
]
ax2.plot(range(1, len(step_losses) + 1), step_losses, alpha=0.3, label="per step")
ax2.plot(range(1, len(step_losses) + 1), smooth, label=f"mean of last {window}")
ax2.set(xlabel="step", ylabel="training loss (nats/char)", title="Loss of each training batch")
ax2.grid(alpha=0.3)
ax2.legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# How to read the curves:
#
# - Both fall together while the model learns what holds for the whole book.
# - A growing **gap** between them: the model fits its training text better than unseen text,
#   the warning sign of memorisation.
# - **Overfitting**: validation turns **up** while train keeps falling. The best model is the one
#   at the lowest validation loss (`base.pt` holds the last step's).
# - The original notebook had **no validation split**, so nothing could show whether it
#   memorised.
#
# The noise of an estimate: the same model, graded on batches from other seeds.

# %%
n_seeds = utils.by_mode(full=5, quick=2)
wobble = [
    utils.estimate_loss(model, get_batch, ["val"], cfg.eval_iters, device, seed=s)["val"]
    for s in range(1, n_seeds + 1)
]
noise = max(wobble) - min(wobble)
print(f"val estimates, seeds 1..{n_seeds}:", [round(v, 4) for v in wobble])
print(f"noise (their spread): {noise:.4f} nats/char")

# %% [markdown]
# This run, judged against that noise:

# %%
val, train_est, eval_steps = history["losses"]["val"], history["losses"]["train"], history["step"]
best = min(range(len(val)), key=val.__getitem__)
last = max(0, len(val) - 3)  # the estimate two intervals before the end
gaps = [v - t for v, t in zip(val, train_est, strict=True)]
print(f"best val {val[best]:.4f} at step {eval_steps[best]}; final {val[-1]:.4f}")
print(f"gap val - train: {gaps[0]:+.4f} at step {eval_steps[0]}, {gaps[-1]:+.4f} at the end")
change = val[-1] - val[last]
if val[-1] - val[best] > noise:
    print(
        f"Overfitting: val rose {val[-1] - val[best]:.4f} after step {eval_steps[best]}, "
        f"more than the noise ({noise:.4f})."
    )
elif change < -noise:
    print(
        f"Still improving: val fell {-change:.4f} since step {eval_steps[last]} "
        f"(noise {noise:.4f})."
    )
else:
    print(
        f"No measurable change since step {eval_steps[last]}: val moved {change:+.4f}, "
        f"within the noise ({noise:.4f})."
    )
if gaps[-1] - gaps[0] > noise:
    print(f"The gap grew by {gaps[-1] - gaps[0]:.4f}: the model fits its training text better "
          "than unseen text, the warning sign of memorisation.")

# %% [markdown]
# ## 11. The number to report
#
# `utils.evaluate_text` grades **every** validation character once, written three ways:
#
# - **nats per character:** the cross-entropy;
# - **bits per character:** nats ÷ ln 2, what a compressor built on this model would need;
# - **perplexity:** $e^{\text{loss}}$, "as unsure as a uniform pick among this many characters".

# %%
val_nats = utils.evaluate_text(model, corpus.splits["val"])
rows = [("this model (val)", val_nats)]
rows += [(name, bits * math.log(2)) for name, bits in yardsticks.items()]
print(f"{'':<18} {'nats/char':>10} {'bits/char':>10} {'perplexity':>11}")
for label, nats in rows:
    print(f"{label:<18} {nats:>10.4f} {nats / math.log(2):>10.4f} {math.exp(nats):>11.2f}")
best_other = min(yardsticks, key=yardsticks.get)
margin = yardsticks[best_other] - val_nats / math.log(2)
noise_bits = noise / math.log(2)  # §10's noise, in bits
if abs(margin) <= noise_bits:
    print(f"no measurable difference from the best yardstick ({best_other}): {margin:+.3f} "
          f"bits/char, noise {noise_bits:.3f}")
else:
    side = "below" if margin > 0 else "above"
    print(f"the model is {abs(margin):.3f} bits/char {side} the best yardstick ({best_other}), "
          f"beyond §10's noise ({noise_bits:.3f})")
assert val_nats < math.log(vocab)

# %% [markdown]
# §10's noise is that of a 20-batch estimate; this loss grades every character, and two training
# seeds of this recipe differ by less than that noise (lesson 7 §4.2): the margin holds either way.

# %% [markdown]
# ## 12. What the model learned
#
# A short **greedy** sample, always the likeliest next character (lesson 4 covers generation).
# After the full run it writes mostly the book's words and names, in lower case, and reuses
# the same phrases, as greedy text does (lesson 4 §3); after quick mode's short run
# (`utils.PRETRAIN.max_steps` steps there), gibberish.

# %%
prompt = "alice was beginning to "
sample = utils.generate(model, tokenizer, prompt, max_new_tokens=300, temperature=0.0)
print(prompt + sample)

# %% [markdown]
# ## 13. The checkpoint
#
# The run wrote one file, which the next lessons load:

# %%
path = utils.BASE_CHECKPOINT
print(f"{path.relative_to(utils.REPO_ROOT)}: {path.stat().st_size / 1e6:.1f} MB")

# %% [markdown]
# It holds only tensors, numbers, strings, `None`, lists and dicts, no other Python objects
# (saved by `pickle`, which can run code on loading), so `torch.load(..., weights_only=True)`,
# the loader that refuses arbitrary code, reads it.
# `utils.load_checkpoint` also checks the format.

# %%
state = utils.load_checkpoint(path)
for key in state:
    print(f"{key:<13} {type(state[key]).__name__}")
print("step:", state["step"])
print("model config:", state["model_config"])

raw = torch.load(path, map_location="cpu", weights_only=True)  # the safe loader works directly
assert raw["step"] == state["step"] == utils.PRETRAIN.max_steps

# %% [markdown]
# What the keys hold: the model's config, vocabulary and weights; the optimizers' and random-number
# states (and, on a GPU such as the T4, the gradient scaler of fp16 mixed precision: fp16, the
# other 16-bit float, has a narrower range than bfloat16, so the scaler enlarges the loss and small
# gradients do not round to zero), so a resumed run continues
# exactly; the plan, the step reached and the curves; a format tag and notes.
#
# `utils.load_model` rebuilds the model; it predicts exactly what the trained one does:

# %%
loaded, loaded_tokenizer, _ = utils.load_model(path, device)
model.eval()
x, _ = get_batch("val", torch.Generator().manual_seed(0))
with torch.no_grad():
    difference = (loaded(x.to(device))[0] - model(x.to(device))[0]).abs().max().item()
print(f"max |logits difference|: {difference:.2e}")
assert difference < 1e-5 and loaded_tokenizer == tokenizer

# %% [markdown]
# ## Summary
#
# - A step: batch → forward → backward → clip → update, at the schedule's learning rate;
#   `utils.train` adds bookkeeping.
# - AdamW sizes each number's step alone; Muon orthogonalises each matrix's step.
# - Warm-up keeps the first steps small, the final decay settles the model, clipping caps the
#   gradient.
# - Yardsticks give a loss meaning; a change counts only beyond the noise. Report the loss over
#   all the validation text.

# %% [markdown]
# ## Exercises
#
# 1. **No warm-up, no clipping.** Rerun §7's loop with `warmup_steps=1` and `grad_clip=1e9`. What
#    happens to the loss?
# 2. **Measure the gap.** Compare the exact loss (`utils.evaluate_text`) of the training split
#    with the validation loss. What does it tell you?
# 3. **Overfit on purpose.** Train a fresh model without dropout on 3,000 training characters for
#    150 steps. Where does the validation loss turn up?

# %% [markdown]
# ## Solutions
#
# Each solution is a code cell that runs with the lesson; in Jupyter its code starts collapsed
# (click to open it).
#
# **Solution 1.** §7's loop with no warm-up and no clipping in practice:

# %% jupyter={"source_hidden": true}
wild_cfg = dataclasses.replace(demo_cfg, warmup_steps=1, grad_clip=1e9)
torch.manual_seed(wild_cfg.seed)
wild = utils.build_model(tokenizer).to(device)
wild_losses = utils.train(wild, get_batch, wild_cfg, tokenizer=tokenizer, progress=False)[
    "train_step_loss"
]
tail = max(2, n_steps // 5)  # compare the mean of the last fifth of the steps
wild_end, tame_end = sum(wild_losses[-tail:]) / tail, sum(losses[-tail:]) / tail
print("no warm-up, no clip:", [round(v, 3) for v in wild_losses[:12]], "...")
print("§7's loop:          ", [round(v, 3) for v in losses[:12]], "...")
print(f"highest loss after step 1: {max(wild_losses[1:]):.3f} without, "
      f"{max(losses[1:]):.3f} with warm-up and clipping (start: {losses[0]:.3f})")
difference = wild_end - tame_end
# the runs draw the same batches, so compare them step by step (a paired test): the noise is two
# standard errors of the mean of the per-step differences
paired = [w - t for w, t in zip(wild_losses[-tail:], losses[-tail:], strict=True)]
tail_noise = 2 * statistics.stdev(paired) / math.sqrt(tail)
if abs(difference) <= tail_noise:
    verdict = f"no measurable difference ({difference:+.3f}, noise {tail_noise:.3f})"
else:
    side = "worse" if difference > 0 else "better"
    verdict = f"{side} without warm-up and clipping ({difference:+.3f}, noise {tail_noise:.3f})"
print(f"mean of the last {tail} steps: {wild_end:.3f} without, {tame_end:.3f} with: {verdict}")
assert abs(wild_losses[0] - losses[0]) < tolerance  # same seeds: same model, same first batch

# %% [markdown]
# With the full learning rate at once, the first steps are as large as the optimizers allow (§3),
# and with no cap one huge gradient can swamp the running averages. Whether that hurts this small
# model shows in the printed losses; the verdict counts a difference only beyond two standard errors
# of the mean per-step difference (the runs draw the same batches, so they are compared step by
# step). That bar is one seed's batch noise. Runs with other training seeds differ more (most
# spreads in lesson 7 §4.2, of losses on a held-back slice of the training text after 500 or 1,300
# steps), so the verdict tells what this pair did, not what every run needs.
#
# **Solution 2.** The exact loss on the training split, beside the validation loss:

# %% jupyter={"source_hidden": true}
train_ids = corpus.splits["train"]
train_ids = train_ids[: utils.by_mode(full=len(train_ids), quick=20_000)]  # quick: a slice
train_nats = utils.evaluate_text(model, train_ids)
print(f"train {train_nats:.4f}  val {val_nats:.4f}  gap {val_nats - train_nats:+.4f} nats/char"
      f"  ({len(train_ids):,} training characters graded)")

# %% [markdown]
# The gap: how much better the model does on text it trained on. Part is memorisation, part
# perhaps other words in the last chapters. A gap that keeps growing warns of overfitting.
#
# **Solution 3.** A fresh model, dropout 0, 3,000 characters, 150 steps of the recipe (quick mode:
# a handful):

# %% jupyter={"source_hidden": true}
tiny_splits = {"train": corpus.splits["train"][:3000], "val": corpus.splits["val"]}
tiny_batches = utils.book_batches(tiny_splits, block_size, cfg.batch_size)
n_tiny = utils.by_mode(full=150, quick=6)
tiny_cfg = dataclasses.replace(
    cfg, max_steps=n_tiny, warmup_steps=max(1, n_tiny // 15),
    eval_interval=max(1, n_tiny // 15), eval_iters=cfg.eval_iters,
)
torch.manual_seed(0)
small = utils.build_model(tokenizer, dropout=0.0).to(device)
small_history = utils.train(small, tiny_batches, tiny_cfg, tokenizer=tokenizer, progress=False)
utils.plot_losses(small_history, title="3,000 characters of training text, no dropout")
plt.show()

tiny_val, tiny_train = small_history["losses"]["val"], small_history["losses"]["train"]
tiny_best = min(range(len(tiny_val)), key=tiny_val.__getitem__)
tiny_rise = tiny_val[-1] - tiny_val[tiny_best]
print(f"train loss: {tiny_train[0]:.3f} -> {tiny_train[-1]:.3f}")
print(
    f"best val {tiny_val[tiny_best]:.3f} at step {small_history['step'][tiny_best]}, "
    f"final val {tiny_val[-1]:.3f}"
)
every = tiny_cfg.eval_interval
where = (f"by step {small_history['step'][0]}, the first estimate" if tiny_best == 0 else
         f"near step {small_history['step'][tiny_best]} (estimates every {every} steps)")
if tiny_rise > noise:
    print(f"the validation loss turned up {where}: it then rose {tiny_rise:.3f}, more than "
          f"§10's noise ({noise:.3f}, measured on the base model: for scale)")
else:
    print(f"no measurable rise yet ({tiny_rise:.3f}, noise {noise:.3f}): train longer")

# %% [markdown]
# Training loss keeps falling while validation climbs from its best estimate (printed above): the
# model learns the 3,000 characters by heart. The dotted line marks that best estimate, where
# **early stopping** (keeping the weights of the best validation estimate) would stop; the printed
# lines say whether the rise beat the noise.
