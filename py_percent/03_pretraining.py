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
# **What you will learn:** how the GPT of lesson 2 learns to predict the next character of
# *Alice's Adventures in Wonderland*. We build the training loop piece by piece (batch, loss,
# gradients, AdamW and Muon, the learning-rate schedule, gradient clipping, loss estimates), run
# the real thing, compare it with simple baselines, and read its curves for overfitting.
#
# - **Reads:** the book in `data/` (downloaded by `utils.load_corpus()` if missing).
# - **Writes:** the base checkpoint `checkpoints/full/base.pt`, which lessons 4–7 load.
# - **Runtime:** the full run takes minutes on a CPU and less on a GPU; the rest is seconds.

# %% [markdown]
# ## 0. Setup
# This first cell makes the shared module `utils.py` importable (in Colab it clones the
# repository first) and prints the device.

# %% cellView="form"
# @title Setup: make `utils` importable (in Colab, clone the repository once)
import os, subprocess, sys  # noqa: E401, I001  (later cells use these too)

REPO, BRANCH = "https://github.com/your-username/GPT-0.5M", "main"  # a fork: set its address
if "google.colab" in sys.modules and not os.path.isdir("/content/GPT-0.5M"):
    subprocess.run(["git", "clone", "-q", "--depth=1", "-b", BRANCH, REPO, "/content/GPT-0.5M"])
sys.path[:0] = {"/content/GPT-0.5M/notebooks", os.path.abspath("notebooks")} - set(sys.path)
import utils  # not found in Colab? The clone failed: set REPO above to your fork's address

device = utils.setup_lesson(REPO, BRANCH)

# %% [markdown]
# The other imports of this lesson.

# %%
import dataclasses
import math

import matplotlib.pyplot as plt
import torch

# %% [markdown]
# ## 1. The data and a fresh model
#
# `utils.load_corpus()` does everything lesson 1 showed: it loads the book, builds the
# character vocabulary, and encodes the first 90% of the book as the training split and the
# last 10% as the validation split.

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
# 1. **Batch:** cut random windows of text (inputs `x`) and the same windows shifted by one
#    character (targets `y`).
# 2. **Forward:** the model predicts a distribution over the next character at every position;
#    the loss is the cross-entropy between those predictions and `y`.
# 3. **Backward:** `loss.backward()` computes the gradient of the loss for every weight.
# 4. **Update:** the optimizer nudges every weight against its gradient.
#
# ### 2.1 A batch
#
# `utils.book_batches` returns a function `get_batch(split, generator)`. The generator is a
# private random-number source, so the batches do not depend on anything else that uses
# randomness (such as dropout).

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
# The model returns logits of shape `(B, T, vocab)` and the mean cross-entropy over all
# `B × T` positions. An untrained model spreads its probability almost evenly over the
# vocabulary, so its loss should be close to $\ln(\text{vocab size})$, a little above it
# (lesson 2, §9.1 explains the small excess). Losses here are in **nats**: cross-entropy with
# the natural logarithm (÷ ln 2 gives bits).

# %%
model.train()  # dropout on, as during training
logits, loss = model(x.to(device), y.to(device))  # logits: (B, T, vocab)
print("logits:", tuple(logits.shape))
print(f"loss: {loss.item():.4f}   ln(vocab) = {math.log(tokenizer.vocab_size):.4f}")
assert abs(loss.item() - math.log(tokenizer.vocab_size)) < 0.25

# %% [markdown]
# ### 2.3 Backward: the gradients
#
# `loss.backward()` fills `p.grad` for every parameter `p`: how much the loss would change
# if that weight grew a little. A few of them:

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
# Plain gradient descent moves every weight by `lr × gradient`. **Adam** keeps two running
# averages per weight, of the gradient (`m`, momentum) and of its square (`v`), and moves the
# weight by `lr × m / √v`. Dividing by `√v` gives every weight a step of a similar size, however
# large or small its gradients are. **AdamW** adds *decoupled weight decay*: every step it also
# shrinks the weight a little, `w ← w − lr × weight_decay × w`, which keeps weights small.
#
# `utils.make_optimizer` returns a list of optimizers. With `optimizer="adamw"` it is one AdamW,
# with the parameters in two groups:

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
# - **Matrices** (linear weights, embeddings) hold almost all the parameters and do the
#   "memorising". Pulling them towards zero is a gentle regulariser against overfitting.
# - **Vectors** (biases, LayerNorm scales and shifts) are few and set offsets and scales.
#   Decaying a LayerNorm scale towards 0 would just shrink the signal, not regularise it.
# - The tied token-embedding / output matrix is one tensor, so it is listed (and decayed) once.
#
# Let's take one step and see how far each weight moves.

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
# On its **first** step, Adam moves (almost) every weight by about the learning rate, whatever
# the size of its gradient: with only one gradient seen, `m / √v` is just ±1. A step that
# large, in a random direction for each weight's noisy first gradient, can knock a fresh
# model off course. That is the reason for the warm-up in §4.

# %% [markdown]
# ### 3.2 Muon: momentum, then orthogonalise
#
# AdamW sizes each number of a weight matrix's step on its own. **Muon** (Jordan et al., 2024)
# treats the step of a matrix as a whole:
#
# 1. **Momentum:** keep a running mean of the gradients, as heavy-ball methods do.
# 2. **Orthogonalise:** replace that matrix by the nearest *orthogonal* one: the same singular
#    vectors, every singular value pushed towards 1. No direction of the matrix gets a huge step
#    while others get none.
#
# An exact answer needs a singular value decomposition (SVD). Five rounds of the
# **Newton–Schulz** iteration, only matrix products, push the values part of the way there:


# %%
def orthogonalise(g: torch.Tensor, steps: int = 5) -> torch.Tensor:
    """Newton–Schulz: g with its singular values pushed towards 1, singular vectors kept."""
    a, b, c = 3.4445, -4.7750, 2.0315  # tuned for speed, not for exactly 1 (Jordan et al.)
    tall = g.size(0) > g.size(1)
    x = g.T if tall else g  # work on the wide side: x @ x.T is then the smaller matrix
    x = x / x.norm()  # divide by the Frobenius norm: every singular value is now <= 1
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x  # an odd polynomial of the singular values
    return x.T if tall else x


# %% [markdown]
# Each round maps every singular value σ to aσ + bσ³ + cσ⁵: small values grow about 3.4×
# per round, values near 1 stay near 1. Here it is on a real gradient from §2.3, that of the
# first block's attention matrix:

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
# A whole Muon step for one weight matrix `p`, in four lines. The momentum `buf` starts at zero;
# tall matrices step a little further, by √(rows / columns), as in the reference code.


# %%
def muon_step(p: torch.Tensor, buf: torch.Tensor, lr: float, weight_decay: float) -> None:
    """One Muon update of the matrix ``p`` from its gradient; ``buf`` is its momentum."""
    buf.lerp_(p.grad, 1 - 0.95)  # momentum: buf = 0.95 * buf + 0.05 * grad
    update = orthogonalise(p.grad.lerp(buf, 0.95))  # Nesterov: look ahead along the momentum
    p.mul_(1 - lr * weight_decay)  # decoupled weight decay, as in AdamW
    p.add_(update, alpha=-lr * max(1, p.size(0) / p.size(1)) ** 0.5)


# %% [markdown]
# Proof that it is Muon: three steps by hand, with `utils.Muon`, and with `torch.optim.Muon`
# (in PyTorch 2.9 and later), on copies of the same matrix with the same gradients.
# PyTorch's version orthogonalises in bfloat16, so it agrees only to that precision.

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
# Why bfloat16 in PyTorch's version? GPUs multiply 16-bit numbers fast. A CPU without
# bfloat16 hardware emulates it slowly, so `utils.newton_schulz` uses 32-bit floats on the CPU.
# Muon only handles matrices. Our recipe gives it the blocks' weight matrices and leaves the
# embeddings, LayerNorms and biases to AdamW:

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
# The learning rate of every step comes from a schedule. It starts with a **warm-up**: a linear
# climb from `cfg.lr / warmup_steps` (step 0) to `cfg.lr`, while the optimizers' running
# averages are still noisy. Two shapes follow it:
#
# - **cosine:** fall along half a cosine to `cfg.min_lr` at `cfg.max_steps`;
# - **warm-up/stable/decay (WSD):** stay at `cfg.lr`, then fall in a straight line to
#   `cfg.min_lr` over the last `decay_fraction` of the steps. Big steps for as long as possible;
#   the final decay settles the model into a minimum.
#
# Written out (Muon's learning rate follows the same curve, in proportion):


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
# The training loop uses `utils.lr_at`. It must agree with ours at **every** step, for each
# plan of the series: pretraining, the short stand-in, and fine-tuning (lesson 5), and for both
# shapes.

# %%
for plan_name in ("PRETRAIN", "PRETRAIN_SHORT", "FINETUNE"):
    plan = getattr(utils, plan_name)
    for shape in ("cosine", "wsd"):
        variant = dataclasses.replace(plan, schedule=shape)
        for step in range(plan.max_steps + 1):
            assert lr_schedule(step, variant) == utils.lr_at(step, variant), (plan_name, step)
    print(f"utils.{plan_name:<15} {plan.max_steps + 1:>5} steps, cosine and WSD: identical")

# %% [markdown]
# Both shapes for this lesson's run; the solid one is the plan `utils.PRETRAIN` uses (quick mode
# scales the whole plan down).

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
# Which shape, and which peaks? Lesson 7 §4.2 shows the **speed-up ladder** that chose them:
# each change measured on a dev slice of the training text (never the validation text), and
# kept only if its gain beat the spread between two seeds.
#
# ## 5. Gradient clipping
#
# Now and then a batch produces an unusually large gradient, and one huge step can undo a lot
# of training. **Clipping** treats all gradients as one long vector and, if its length (the
# *global norm*) is above `cfg.grad_clip`, scales the whole vector down to that length. The
# direction is unchanged; only the step size is capped.
#
# A small helper measures the global norm:


# %%
def global_grad_norm(model: torch.nn.Module) -> float:
    """Length of all gradients of ``model`` seen as one vector."""
    grads = [p.grad.flatten() for p in model.parameters() if p.grad is not None]
    return torch.cat(grads).norm().item()


# %% [markdown]
# One step's gradient, before and after `torch.nn.utils.clip_grad_norm_` (which returns the
# norm it measured *before* clipping):

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
# Clipping caps the length of the gradient, not of the optimizer's step: AdamW and Muon size
# their steps themselves (§3). §7 counts how often clipping acts in the first steps of training.

# %% [markdown]
# ## 6. Measuring progress: `utils.estimate_loss`
#
# The loss of one training batch is noisy: it depends on which text was drawn. To follow
# training we average the loss over `cfg.eval_iters` batches of each split, with the model in
# `eval()` mode (no dropout) and without gradients.
#
# The batches are drawn with a **fixed seed**, so every estimate, at every step of every run,
# grades the same text. A change in the number then comes from the model, not from the draw
# (§10 shows how much the number would wobble otherwise).

# %%
same_1 = utils.estimate_loss(model, get_batch, ["train", "val"], cfg.eval_iters, device, seed=0)
same_2 = utils.estimate_loss(model, get_batch, ["train", "val"], cfg.eval_iters, device, seed=0)
print("seed 0:      ", {k: round(v, 4) for k, v in same_1.items()})
print("seed 0 again:", {k: round(v, 4) for k, v in same_2.items()})
assert same_1 == same_2  # same text, same model: exactly the same number

# %% [markdown]
# ## 7. A tiny training loop, by hand
#
# Now we put the pieces together into a loop and run a few steps on a fresh model: the four
# parts of §2, plus the schedule (§4) and clipping (§5). The plan is
# `utils.PRETRAIN` shortened to `n_steps` steps, with a warm-up of a fifth of them.

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
# What the two panels show, in numbers: where the gradient norm peaked, how often clipping
# acted, and whether the loss ever went up from one step to the next (this warm-up is only
# `n_steps / 5` steps long, so the peak learning rate arrives fast).

# %%
peak = max(range(n_steps), key=grad_norms.__getitem__)
n_clipped = sum(norm > demo_cfg.grad_clip for norm in grad_norms)
rises = [losses[i] - losses[i - 1] for i in range(1, n_steps) if losses[i] > losses[i - 1]]
print(f"largest gradient norm: {grad_norms[peak]:.2f} at step {peak + 1} "
      f"(learning rate {utils.lr_at(peak, demo_cfg):.1e})")  # fmt: skip
print(f"clipping acted on {n_clipped} of {n_steps} steps (norm above {demo_cfg.grad_clip})")
if rises:
    print(f"the loss rose on {len(rises)} of {n_steps - 1} steps, at most by {max(rises):.3f}")
else:
    print("the loss fell on every step")

# %% [markdown]
# `utils.train` is this same loop plus bookkeeping: loss estimates, a progress bar,
# checkpoints, and **mixed precision** on a GPU (matrix products in 16-bit floats, which GPUs
# multiply much faster, with the weights kept in 32-bit). Proof: with the same seeds it
# produces the same per-step losses. (`stop_at` ends it early without changing the plan.)

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
# `utils.PRETRAIN` is a `TrainConfig`. Each field, its default and its value in this run; the
# comment beside each field of `TrainConfig` in `utils.py` says what it means.

# %%
default = utils.TrainConfig()
changed = [f.name for f in dataclasses.fields(default)
           if getattr(utils.PRETRAIN, f.name) != getattr(default, f.name)]  # fmt: skip
print(f"{'field':<14} {'default':>8} {'this run':>9}")
for f in dataclasses.fields(default):
    ours, mark = getattr(utils.PRETRAIN, f.name), "  (changed)" if f.name in changed else ""
    print(f"{f.name:<14} {getattr(default, f.name)!s:>8} {ours!s:>9}{mark}")
print(f"{len(changed)} of {len(dataclasses.fields(default))} fields differ from the defaults")

# %% [markdown]
# How much text is that? Every step reads `batch_size × block_size` characters. Dividing the
# total by the length of the training split gives the number of passes over the book
# ("epochs"; the windows are random, so some text is seen more often than other text).

# %%
chars_seen = utils.PRETRAIN.max_steps * utils.PRETRAIN.batch_size * block_size
print(f"characters read in training: {chars_seen:,}")
print(f"passes over the training split: {chars_seen / len(corpus.splits['train']):.1f}")

# %% [markdown]
# ### 8.2 Train
#
# `utils.pretrain` builds a fresh model with the recipe's seed and runs `utils.train` on the
# book. While it runs:
#
# - a **progress bar** shows the step, speed and the latest loss estimates;
# - every `eval_interval` steps it estimates the train and val loss and **saves a checkpoint**
#   (to a temporary file, then renamed, so a crash never leaves a half-written file);
# - if you **interrupt** it (Ctrl-C, or the stop button in Jupyter/Colab), it saves first.
#   Re-running the cell then **resumes exactly** where it stopped: the checkpoint holds the
#   weights, the optimizer state and the random-number states of batches and dropout.
# - If the checkpoint is already complete, the cell just loads it and returns at once.

# %%
model, history = utils.pretrain(corpus, utils.PRETRAIN, utils.BASE_CHECKPOINT, device)

# %% [markdown]
# The measured training time (your numbers will differ: hardware, other programs running,
# quick mode):

# %%
seconds, done = history["seconds"][-1], history["step"][-1]
print(f"{done} steps in {seconds / 60:.1f} min on {device}")
print(f"{done / seconds:.1f} steps/s = {done * cfg.batch_size * block_size / seconds:,.0f} chars/s")

# %% [markdown]
# ## 9. Yardsticks: what is a good loss?
#
# A loss means little alone. Three kinds of yardstick, in **bits per character** (nats ÷ ln 2):
#
# - a **uniform guess** over the vocabulary;
# - a **bigram count table**: count which character follows which in the training text, and
#   predict from those counts (plus one everywhere, so nothing has probability 0);
# - **compressors** (zlib, bz2, lzma): compress the training text, then the training and
#   validation text together. The extra bytes, ×8 ÷ characters, are what they need per new
#   character.
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
# The compressors, on the same lower-cased text the model reads. `utils.baseline_bits_per_char`
# computes the bigram and compressor yardsticks; lesson 7 reuses it.

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
# Left: the loss estimates on both splits (dotted: the best validation loss), with two
# yardsticks dashed. Right: the raw loss of every training step, noisy because every batch is
# different text, with a moving average.

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
utils.plot_losses(history, ax=ax1, title="Estimated loss (train / val)")
for name, color in (("bigram", "tab:gray"), ("bz2", "tab:purple")):
    ax1.axhline(baselines[name] * math.log(2), color=color, linestyle="--", linewidth=1)
    ax1.annotate(name, (0, baselines[name] * math.log(2)), color=color, va="bottom")

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
# - Both curves fall together while the model learns what holds for the whole book: spelling,
#   common words, punctuation.
# - The validation text (the last chapters) is never trained on. A **gap** that grows means the
#   model fits the training text better than new text: memorisation has begun.
# - **Overfitting** proper starts where the validation curve turns **up** while the training
#   curve keeps falling. The best checkpoint is the one at the lowest validation loss.
# - The original notebook had **no validation split**. It trained its training loss far below
#   anything a model this size reaches on unseen text: it had memorised the book, and nothing
#   showed it.
#
# To call a change real, we need the noise of an estimate. The same final model, graded on
# batches drawn with other seeds:

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
# What happened in this run, judged against that noise:

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
    print(f"The gap grew by {gaps[-1] - gaps[0]:.4f}: memorisation has begun, the warning sign.")

# %% [markdown]
# ## 11. The number to report
#
# `estimate_loss` samples a few random batches: good for watching training, but a sample.
# `utils.evaluate_text` grades **every** character of the validation split exactly once.
# We report it three ways:
#
# - **nats per character:** the cross-entropy itself;
# - **bits per character:** nats ÷ ln 2, what a compressor built on this model would need;
# - **perplexity:** $e^{\text{loss}}$: "as unsure as a uniform pick among this many characters".

# %%
val_nats = utils.evaluate_text(model, corpus.splits["val"])
rows = [("this model (val)", val_nats)]
rows += [(name, bits * math.log(2)) for name, bits in yardsticks.items()]
print(f"{'':<18} {'nats/char':>10} {'bits/char':>10} {'perplexity':>11}")
for label, nats in rows:
    print(f"{label:<18} {nats:>10.4f} {nats / math.log(2):>10.4f} {math.exp(nats):>11.2f}")
best_other = min(yardsticks, key=yardsticks.get)
margin = yardsticks[best_other] - val_nats / math.log(2)
side = "below" if margin > 0 else "above"
print(f"the model is {abs(margin):.3f} bits/char {side} the best yardstick ({best_other})")
assert val_nats < math.log(vocab)

# %% [markdown]
# ## 12. What the model learned
#
# A short **greedy** sample: at every step take the single most likely next character
# (lesson 4 covers generation properly). The tokenizer lower-cases everything, so the model
# writes in lower case. In quick mode the model has trained for only a few dozen steps and
# writes gibberish; after the full run it writes recognisable words and names.

# %%
prompt = "alice was beginning to "
sample = utils.generate(model, tokenizer, prompt, max_new_tokens=300, temperature=0.0)
print(prompt + sample)

# %% [markdown]
# ## 13. The checkpoint
#
# The run wrote one file, which the next lessons load (quick mode writes to its own folder,
# so tests never overwrite a full run):

# %%
path = utils.BASE_CHECKPOINT
print(f"{path.relative_to(utils.REPO_ROOT)}: {path.stat().st_size / 1e6:.1f} MB")

# %% [markdown]
# It is a plain dictionary of tensors, numbers, strings, lists and dicts: no pickled Python
# objects. So `torch.load(..., weights_only=True)`, the safe loader that refuses arbitrary
# code, can read it. `utils.load_checkpoint` does exactly that and checks the format.

# %%
state = utils.load_checkpoint(path)
for key in state:
    print(f"{key:<13} {type(state[key]).__name__}")
print("step:", state["step"])
print("model config:", state["model_config"])

raw = torch.load(path, map_location="cpu", weights_only=True)  # the safe loader works directly
assert raw["step"] == state["step"] == utils.PRETRAIN.max_steps

# %% [markdown]
# What the keys hold:
#
# - `model_config`, `tokenizer`: enough to rebuild the model and its vocabulary;
# - `model`: the weights; `optimizer`: each optimizer's state (AdamW's running averages,
#   Muon's momentum), for resuming;
# - `train_config`, `step`, `history`: the plan, how far it got, the loss curves;
# - `rng`: random-number states of dropout and batches, so a resumed run continues exactly;
# - `scaler`: the mixed-precision state on a GPU; `format`, `extra`: version tag and notes.
#
# `utils.load_model` rebuilds the model from the file. Proof that it is the model we trained:
# both give the same predictions.

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
# - A training step is: batch → forward (cross-entropy) → backward → clip → update, with the
#   learning rate set by the schedule. `utils.train` is exactly that loop plus bookkeeping.
# - AdamW sizes every number's step on its own; Muon orthogonalises each matrix's step with
#   Newton–Schulz. The recipe uses the one the ladder of lesson 7 chose.
# - Warm-up protects the fresh model from large first steps; the decay at the end settles it.
#   Clipping caps the length of any single gradient.
# - A loss means something beside yardsticks: a bigram table and real compressors.
# - Loss estimates use a fixed seed so they are comparable; a change counts only when it is
#   larger than the estimate's noise. The number to report grades every validation character.
#
# ## Exercises
#
# 1. **No warm-up, no clipping.** Rerun the tiny loop of §7 with `warmup_steps=1` and
#    `grad_clip=1e9` (no clipping in practice). What happens to the loss in the first steps?
# 2. **Measure the gap.** Compute the exact loss on the *training* split with
#    `utils.evaluate_text` and compare it with the validation loss. What does the difference
#    tell you?
# 3. **Overfit on purpose.** Train a fresh model without dropout on only the first 3,000
#    characters of the training split for a few hundred steps (no checkpoint). Plot the curves
#    with `utils.plot_losses`: where does the validation loss turn up?

# %% [markdown]
# ## Solutions
#
# Each solution is a code cell that runs with the lesson (the tests execute it too, with fewer
# steps). In Jupyter its code starts collapsed: click the cell to open it.
#
# **Solution 1.** The tiny loop of §7 again, with no warm-up and no clipping in practice:

# %% jupyter={"source_hidden": true}
wild_cfg = dataclasses.replace(demo_cfg, warmup_steps=1, grad_clip=1e9)
torch.manual_seed(wild_cfg.seed)
wild = utils.build_model(tokenizer).to(device)
wild_losses = utils.train(wild, get_batch, wild_cfg, tokenizer=tokenizer, progress=False)[
    "train_step_loss"
]
tail = max(1, n_steps // 5)  # compare the mean of the last fifth of the steps
wild_end, tame_end = sum(wild_losses[-tail:]) / tail, sum(losses[-tail:]) / tail
print("no warm-up, no clip:", [round(v, 3) for v in wild_losses[:12]], "...")
print("§7's loop:          ", [round(v, 3) for v in losses[:12]], "...")
print(f"highest loss after step 1: {max(wild_losses[1:]):.3f} without, "
      f"{max(losses[1:]):.3f} with warm-up and clipping (start: {losses[0]:.3f})")  # fmt: skip
verdict = "worse" if wild_end > tame_end else "not worse"
print(f"mean of the last {tail} steps: {wild_end:.3f} without, {tame_end:.3f} with: "
      f"{verdict} without warm-up and clipping")  # fmt: skip
assert abs(wild_losses[0] - losses[0]) < tolerance  # same seeds: same model, same first batch

# %% [markdown]
# With the full learning rate from the first step and no cap on the gradient, the first
# steps are as large as the optimizers allow (§3). The printed comparison says how this run
# ended; with so few steps (and in quick mode, very few) the outcome depends on the seed, and a
# difference smaller than §10's noise is no measurable difference.
#
# **Solution 2.** The exact loss on the training split, beside the validation loss:

# %% jupyter={"source_hidden": true}
train_ids = corpus.splits["train"]
train_ids = train_ids[: utils.by_mode(full=len(train_ids), quick=20_000)]  # quick: a slice
train_nats = utils.evaluate_text(model, train_ids)
print(f"train {train_nats:.4f}  val {val_nats:.4f}  gap {val_nats - train_nats:+.4f} nats/char"
      f"  ({len(train_ids):,} training characters graded)")  # fmt: skip

# %% [markdown]
# The gap is how much better the model does on text it has trained on than on text it has
# never seen. Part of it is memorisation; part may be that the last chapters (the validation
# split) use other names and words. A gap that keeps growing during training is the
# warning sign of overfitting.
#
# **Solution 3.** A fresh model, dropout 0, on 3,000 characters, with this lesson's recipe
# shortened to a few hundred steps (a handful in quick mode):

# %% jupyter={"source_hidden": true}
tiny_splits = {"train": corpus.splits["train"][:3000], "val": corpus.splits["val"]}
tiny_batches = utils.book_batches(tiny_splits, block_size, cfg.batch_size)
n_tiny = utils.by_mode(full=300, quick=6)
tiny_cfg = dataclasses.replace(
    cfg, max_steps=n_tiny, warmup_steps=max(1, n_tiny // 15),
    eval_interval=max(1, n_tiny // 12), eval_iters=cfg.eval_iters,
)  # fmt: skip
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
if tiny_rise > noise:
    print(
        f"the validation loss turned up after step {small_history['step'][tiny_best]}: it rose "
        f"{tiny_rise:.3f}, more than the noise of §10 ({noise:.3f})"
    )
else:
    print(f"no measurable rise yet ({tiny_rise:.3f}, noise {noise:.3f}): train longer")

# %% [markdown]
# With so little text, the training loss keeps falling while the validation loss reaches its
# minimum and then climbs: the model learns those 3,000 characters by heart. The dotted line
# marks where you should have stopped; the printed lines say whether the rise beat the noise.
