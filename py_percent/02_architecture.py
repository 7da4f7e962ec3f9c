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
# # Lesson 2 — The architecture
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/your-username/GPT-0.5M/blob/main/notebooks/02_architecture.ipynb)
#
# **What you will learn:** every part of GPT-0.5M, built up from small tensors: embeddings,
# causal self-attention written out by hand, multi-head attention, the MLP, the pre-norm
# residual block and the whole model. At each step we **prove** that our code computes the same
# numbers as PyTorch's built-in attention and as the model in `utils.py`.
#
# - **Reads:** the book and `data/alice_qa.jsonl` (for the vocabulary and real text).
# - **Writes:** nothing.
# - **Runtime:** well under a minute on a CPU; nothing is trained here.

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
# This lesson keeps every tensor on the **CPU**, whatever `device` says: the tensors are tiny, and
# on a GPU some kernels use lower-precision arithmetic that would blur our exact comparisons.
#
# We load the corpus of lesson 1 (book, tokenizer, encoded split) and the imports we need.

# %%
import math

import matplotlib.pyplot as plt
import torch
import torch.nn as nn
import torch.nn.functional as F

corpus = utils.load_corpus()
tokenizer = corpus.tokenizer
print(tokenizer)

# %% [markdown]
# ## 1. The plan
#
# GPT-0.5M turns a window of `T` character ids into `T` predictions of the next character:
#
# ```
# ids (B, T)
#  → token embedding + position embedding          (B, T, C)
#  → 4 × block:  x = x + attention(layernorm(x))   (B, T, C)
#                x = x + mlp(layernorm(x))
#  → final layernorm → linear head                 (B, T, vocab)   "logits"
# ```
#
# `B` is the batch size, `T` the number of characters in the window, `C` the width of every
# vector inside the model. All sizes live in one config object; here is the default one:

# %%
config = utils.GPTConfig(vocab_size=tokenizer.vocab_size)
for name, value in vars(config).items():
    print(f"{name:11} = {value}")

# %% [markdown]
# ## 2. Embeddings: from ids to vectors
#
# We start with a short real sentence from the book, lower-cased like everything the model sees.

# %%
sentence = "alice was beginning to get very tired"
assert sentence in corpus.book.lower()
ids = torch.tensor([tokenizer.encode(sentence)])  # (B, T) with B = 1
B, T = ids.shape
C = config.n_embd
print(f"B = {B}, T = {T}, C = {C}")
print(ids)

# %% [markdown]
# ### 2.1 Token embedding
#
# An `nn.Embedding(vocab_size, C)` is a table with one learnable row of `C` numbers per
# character. Looking up an id returns its row. The same character always gets the same vector,
# wherever it stands.

# %%
torch.manual_seed(0)
tok_emb = nn.Embedding(config.vocab_size, C)
tok = tok_emb(ids)  # (B, T, C)
print(f"table: {tuple(tok_emb.weight.shape)}  ->  tok: {tuple(tok.shape)}")
first_a, second_a = [i for i, ch in enumerate(sentence) if ch == "a"][:2]
assert torch.equal(tok[0, first_a], tok[0, second_a])  # both are the letter 'a'

# %% [markdown]
# ### 2.2 Position embedding
#
# Attention (next section) compares every vector with every other one, but it has no built-in
# idea of **order**: without help, "alice was" and "saw ecila" would look alike. So we add a
# second table with one learned vector per **position** `0 .. block_size-1`. This also sets the
# longest context the model can read: `block_size` characters.

# %%
pos_emb = nn.Embedding(config.block_size, C)
pos = pos_emb(torch.arange(T))  # (T, C)
x = tok + pos  # (B, T, C): broadcasting adds the same positions to every row of the batch
print(f"pos table: {tuple(pos_emb.weight.shape)}  pos: {tuple(pos.shape)}  x: {tuple(x.shape)}")
assert not torch.equal(x[0, first_a], x[0, second_a])  # same letter, different place

# %% [markdown]
# ## 3. One attention head, by hand
#
# Attention lets each position gather information from other positions. Each position makes
# three vectors from its own `x` with three linear layers:
#
# - a **query** `q`: "what am I looking for?"
# - a **key** `k`: "what do I contain?"
# - a **value** `v`: "what do I hand over if you pick me?"
#
# Position `t` scores every position `s` with the dot product `q[t] · k[s]`, turns the scores into
# weights with a softmax, and takes the weighted sum of the values. GPT-0.5M splits `C` into
# `n_head` heads; one head works in `head_size = C / n_head` dimensions.

# %%
head_size = C // config.n_head
torch.manual_seed(0)
query = nn.Linear(C, head_size, bias=False)
key = nn.Linear(C, head_size, bias=False)
value = nn.Linear(C, head_size, bias=False)
q, k, v = query(x), key(x), value(x)  # (B, T, hs) each
print(f"head_size = {head_size}; q, k, v: {tuple(q.shape)}")

# %% [markdown]
# ### 3.1 Scores, scaled by √head_size
#
# `q @ kᵀ` computes all `T × T` dot products at once. Why divide by `√head_size`? A dot product
# of `d` random numbers of variance 1 has variance `d`. Large scores make the softmax put almost
# all weight on one position, and its gradients vanish. Dividing by `√d` brings the spread back
# to about 1, as this quick experiment shows:

# %%
torch.manual_seed(0)
a, b = torch.randn(10_000, head_size), torch.randn(10_000, head_size)
raw = (a * b).sum(dim=-1)  # 10,000 dot products of random vectors
print(f"std of raw dot products: {raw.std():.2f}  (√{head_size} = {math.sqrt(head_size):.2f})")
print(f"std after dividing by √{head_size}: {(raw / math.sqrt(head_size)).std():.2f}")

# %% [markdown]
# Now the scores of our head on the sentence: one row per position `t`, one column per position
# `s`.

# %%
scores = q @ k.transpose(-2, -1) / math.sqrt(head_size)  # (B, T, T)
print(f"scores: {tuple(scores.shape)}")

# %% [markdown]
# ### 3.2 The causal mask
#
# The model must predict character `t + 1` using only characters `0 .. t`. If position `t`
# could look at position `t + 1`, it would simply copy the answer. So we set every score
# **above the diagonal** to `-inf`; after the softmax, `e^-inf = 0`, so the future gets exactly
# zero weight.

# %%
mask = torch.tril(torch.ones(T, T, dtype=torch.bool))  # (T, T): True = may look
masked = scores.masked_fill(~mask, float("-inf"))  # (B, T, T)
weights = F.softmax(masked, dim=-1)  # (B, T, T): each row sums to 1
out = weights @ v  # (B, T, hs): weighted sum of the values
print(f"weights: {tuple(weights.shape)}  out: {tuple(out.shape)}")
assert torch.allclose(weights.sum(dim=-1), torch.ones(B, T))
assert (weights[0][~mask] == 0).all()  # no weight on the future
assert weights[0, 0, 0] == 1  # the first character can only look at itself

# %% [markdown]
# On the left the mask: row `t` (the position that asks) may look at the columns `s ≤ t` (in
# dark). On the right the attention weights of our head on the real sentence. The weights are
# **random and untrained**, so the pattern inside the triangle means nothing yet; only its shape
# matters: every row spreads a total weight of 1 over the characters up to itself, and nothing
# above the diagonal.


# %%
labels = [utils.visible_char(ch) for ch in sentence]


def show_matrix(ax, matrix, title, cmap="viridis", ticks=True):
    """Draw a (T, T) matrix with the sentence's characters on both axes."""
    image = ax.imshow(matrix, cmap=cmap, vmin=0, vmax=1)
    ax.set_title(title, fontsize=10)
    if ticks:
        ax.set_xticks(range(len(labels)), labels, fontsize=6)
        ax.set_yticks(range(len(labels)), labels, fontsize=6)
        ax.set(xlabel="looked at (s)", ylabel="looking (t)")
    else:
        ax.set(xticks=[], yticks=[])
    return image


fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(8, 4))
show_matrix(ax1, mask.float(), "causal mask", cmap="Greys")
image = show_matrix(ax2, weights[0].detach(), "attention weights (untrained)")
fig.colorbar(image, ax=ax2, fraction=0.046)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 4. Multi-head attention
#
# One head can only look for one kind of thing at a time. **Multi-head** attention runs
# `n_head` heads side by side, each with its own queries, keys and values of size `head_size`,
# and concatenates their outputs back to width `C`. Two tricks make it fast:
#
# - One `Linear(C, 3C)` called `qkv` computes queries, keys and values of **all** heads at once.
# - We reshape `(B, T, C)` to `(B, n_head, T, head_size)`, so the heads become one more batch
#   dimension and a single matrix multiplication serves them all.
#
# First the attention itself, as a function of q, k and v. It is §3 written for any
# number of leading dimensions:


# %%
def causal_attention(q, k, v):
    """softmax(q kᵀ / √d + causal mask) v, for q, k, v of shape (..., T, d)."""
    T, d = q.shape[-2:]
    scores = q @ k.transpose(-2, -1) / math.sqrt(d)  # (..., T, T)
    mask = torch.tril(torch.ones(T, T, dtype=torch.bool, device=q.device))
    weights = F.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)  # (..., T, T)
    return weights @ v, weights  # (..., T, d), (..., T, T)


assert torch.allclose(causal_attention(q, k, v)[0], out)  # the same as §3

# %% [markdown]
# Now the module. Its two linear layers are called `qkv` and `proj`, like in `utils.py`, so the
# two can exchange weights. `proj` mixes the concatenated heads back together.


# %%
class MultiHeadAttention(nn.Module):
    """Causal multi-head self-attention, written out by hand."""

    def __init__(self, config: utils.GPTConfig) -> None:
        super().__init__()
        self.n_head = config.n_head
        self.qkv = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Queries, keys and values of every head, each (B, n_head, T, head_size)."""
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)  # 3 x (B, T, C)
        return tuple(t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.heads(x)  # (B, nh, T, hs) each
        y, _ = causal_attention(q, k, v)  # (B, nh, T, hs)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, T, C): heads side by side
        return self.dropout(self.proj(y))  # (B, T, C)


torch.manual_seed(0)
attn = MultiHeadAttention(config).eval()  # eval(): dropout off, so outputs are comparable
print(f"{tuple(x.shape)} -> {tuple(attn(x).shape)}")

# %% [markdown]
# Each head has its own weights, so each draws its own pattern on the same sentence (still
# untrained and random).

# %%
with torch.no_grad():
    _, head_weights = causal_attention(*attn.heads(x))  # (B, nh, T, T)
fig, axes = plt.subplots(1, config.n_head, figsize=(8, 2.4))
for h, ax in enumerate(axes):
    show_matrix(ax, head_weights[0, h], f"head {h}", ticks=False)
plt.tight_layout()
plt.show()

# %% [markdown]
# ### 4.1 Proof 1: our attention equals PyTorch's
#
# PyTorch has a fast built-in, `F.scaled_dot_product_attention(q, k, v, is_causal=True)`. It must
# give the same result as our hand-written version. We test on a real batch: 4 random windows
# of `block_size` characters from the book, embedded with the tables of §2.

# %%
get_batch = utils.book_batches(corpus.splits, config.block_size, batch_size=4)
xb, yb = get_batch("train", torch.Generator().manual_seed(0))  # (4, block_size) each
with torch.no_grad():
    emb = tok_emb(xb) + pos_emb(torch.arange(config.block_size))  # (B, T, C)
    q4, k4, v4 = attn.heads(emb)  # (B, nh, T, hs) each
    ours, _ = causal_attention(q4, k4, v4)
    theirs = F.scaled_dot_product_attention(q4, k4, v4, is_causal=True)
diff = (ours - theirs).abs().max().item()
print(f"max |ours - F.scaled_dot_product_attention| = {diff:.2e}")
assert diff < 1e-5

# %% [markdown]
# ### 4.2 Proof 2: our module equals `utils.CausalSelfAttention`
#
# `utils.CausalSelfAttention` is the attention the real model uses (it calls the fast built-in
# and also supports the KV cache of lesson 4). We copy our weights into it with
# `load_state_dict` (same parameter names) and compare outputs.

# %%
reference_attn = utils.CausalSelfAttention(config).eval()
reference_attn.load_state_dict(attn.state_dict())
with torch.no_grad():
    diff = (attn(emb) - reference_attn(emb)[0]).abs().max().item()  # [0]: it also returns a cache
print(f"max |ours - utils.CausalSelfAttention| = {diff:.2e}")
assert diff < 1e-5

# %% [markdown]
# ## 5. The MLP
#
# Attention moves information **between** positions. The MLP (multi-layer perceptron) then
# works on **each position on its own**: widen to `mlp_hidden` numbers, apply a non-linearity,
# project back to `C`. Without the non-linearity the whole model would be one big linear map.


# %%
class MLP(nn.Module):
    """Position-wise feed-forward network: C -> mlp_hidden -> GELU -> C."""

    def __init__(self, config: utils.GPTConfig) -> None:
        super().__init__()
        self.fc = nn.Linear(config.n_embd, config.mlp_hidden, bias=config.bias)
        self.proj = nn.Linear(config.mlp_hidden, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = F.gelu(self.fc(x))  # (B, T, mlp_hidden)
        return self.dropout(self.proj(hidden))  # (B, T, C)


torch.manual_seed(0)
mlp = MLP(config).eval()
reference_mlp = utils.MLP(config).eval()
reference_mlp.load_state_dict(mlp.state_dict())
with torch.no_grad():
    assert (mlp(emb) - reference_mlp(emb)).abs().max() < 1e-5
print(f"{tuple(emb.shape)} -> hidden {config.mlp_hidden} -> {tuple(mlp(emb).shape)}")

# %% [markdown]
# GPT models use **GELU** rather than ReLU as the non-linearity: it is a smooth version of ReLU
# that lets a little signal (and gradient) through for small negative inputs.

# %%
z = torch.linspace(-4, 4, 200)
fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(z, F.relu(z), label="ReLU", linestyle="--")
ax.plot(z, F.gelu(z), label="GELU")
ax.set(xlabel="input", ylabel="output", title="Non-linearities")
ax.grid(alpha=0.3)
ax.legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# ### 5.1 Dropout: noise in training, nothing in use
#
# Every module above ends in `self.dropout`, and `LessonGPT` (§7) applies one more to the
# embeddings. Dropout is a regulariser that acts **only in training mode**:
#
# - in `train()` mode each number is set to 0 with probability `p`, and the survivors are
#   multiplied by `1 / (1 - p)`, so the **expected value** of every number is unchanged;
# - in `eval()` mode it is the identity, so measuring and generating are deterministic.
#
# Every training step thus trains a randomly thinned network, and no single unit can carry a
# memorised detail on its own: a brake on learning a small book by heart. Our rate is
# `config.dropout`. On a long vector of ones:

# %%
p_drop = config.dropout
ones = torch.ones(1_000_000)
dropout = nn.Dropout(p_drop)
torch.manual_seed(0)
dropped = dropout.train()(ones)  # train mode
survivors = dropped[dropped != 0].unique()
print(f"p = {p_drop}: {(dropped == 0).float().mean():.4f} of the numbers dropped")
print(f"survivors are all {survivors.item():.4f} = 1 / (1 - p) = {1 / (1 - p_drop):.4f}")
print(f"mean: {ones.mean():.4f} before, {dropped.mean():.4f} after")
assert abs((dropped == 0).float().mean() - p_drop) < 0.005
assert torch.allclose(survivors, torch.tensor(1 / (1 - p_drop)))
assert torch.equal(dropout.eval()(ones), ones)  # eval mode: the identity

# %% [markdown]
# ### 5.2 The project's faster dropout
#
# On a CPU, drawing one random float per number is a noticeable share of a training step.
# `utils.FastDropout` draws random **bytes** instead: one random 64-bit integer is 8 bytes, i.e. 8
# uniform numbers in 0..255 at once. A byte below `threshold = round(p × 256)` drops its number.
#
# - The drop rate is `threshold / 256`: `p` rounded to a multiple of 1/256.
# - Survivors are scaled by `256 / (256 - threshold)` = `1 / (1 - threshold / 256)`: the rule of
#   `nn.Dropout`, with the rounded `p`.
#
# Written out by hand, and checked against `utils.FastDropout` on the same random draws:


# %%
def byte_dropout(x: torch.Tensor, p: float) -> torch.Tensor:
    """Training-mode dropout of ``x`` with a mask made of random bytes."""
    threshold = round(p * 256)  # a byte below this drops its number
    n = x.numel()
    draws = torch.randint(-(2**63), 2**63 - 1, ((n + 7) // 8,), dtype=torch.int64)  # 8 bytes each
    random_bytes = draws.view(torch.uint8)[:n].view(x.shape)  # uniform in 0..255
    keep = random_bytes >= threshold  # (x.shape) True = survives
    return x * keep * (256 / (256 - threshold))  # survivors scaled by 1 / (1 - rounded p)


fast = utils.FastDropout(p_drop).train()
torch.manual_seed(1)
by_hand = byte_dropout(emb, p_drop)
torch.manual_seed(1)
from_utils = fast(emb)
assert torch.equal(by_hand, from_utils)  # same draws, bit for bit the same output

p_rounded = round(p_drop * 256) / 256
print(f"p = {p_drop} becomes {round(p_drop * 256)}/256 = {p_rounded:.4f}")
print(f"dropped by FastDropout: {(fast(ones) == 0).float().mean():.4f} of {len(ones):,} numbers")
assert abs((fast(ones) == 0).float().mean() - p_rounded) < 0.005

# %% [markdown]
# "The same maths" means: given the **same mask**, `nn.Dropout` with the rounded `p` computes
# exactly what `FastDropout` computes; only the way the mask is drawn differs. We read the mask
# `nn.Dropout` drew (the zeros of its output; `emb` has no zeros of its own) and apply the
# byte-dropout rule with it. In eval mode both are the identity.

# %%
torch.manual_seed(2)
reference_out = nn.Dropout(p_rounded).train()(emb)  # PyTorch's own mask and scaling
mask = reference_out != 0  # (B, T, C) the mask PyTorch drew
assert (emb != 0).all()
rebuilt = emb * mask * (256 / (256 - round(p_drop * 256)))  # FastDropout's rule, PyTorch's mask
diff = (rebuilt - reference_out).abs().max().item()
print(f"max |FastDropout rule - nn.Dropout| with the same mask: {diff:.1e}")
assert diff < 1e-6
assert torch.equal(fast.eval()(emb), emb) and torch.equal(nn.Dropout(p_drop).eval()(emb), emb)

# %% [markdown]
# Why bother? `FastDropout` is meant to be cheaper on a CPU, where random numbers are costly.
# Measure it: the ratio below comes from this process, on a tensor the size of one training
# batch's activations. It depends on your machine and on what else runs on it (on a busy
# machine with several threads the byte trick can lose). On a GPU `FastDropout` simply calls
# PyTorch's dropout.

# %%
import time

activations = torch.randn(utils.TrainConfig().batch_size, config.block_size, C)  # (B, T, C)
seconds = {}
for name, layer in (("nn.Dropout", nn.Dropout(p_drop)), ("FastDropout", fast.train())):
    layer(activations)  # warm-up
    start = time.perf_counter()
    for _ in range(20):
        layer(activations)
    seconds[name] = (time.perf_counter() - start) / 20
print(", ".join(f"{name} {s * 1e3:.2f} ms" for name, s in seconds.items()))
ratio = seconds["FastDropout"] / seconds["nn.Dropout"]
print(f"FastDropout took {ratio:.2f}x the time of nn.Dropout here: "
      f"{'faster' if ratio < 1 else 'not faster'} on this machine, "
      f"with {torch.get_num_threads()} threads")  # fmt: skip

# %% [markdown]
# ## 6. The residual block, pre-norm
#
# A block chains attention and MLP, each wrapped in two helpers:
#
# - A **residual connection** `x = x + f(x)`: each part only *adds* a correction to the vector
#   flowing through the model (the "residual stream"), instead of replacing it. The `+` passes
#   gradients straight through, so deep stacks still learn.
# - **Layer normalisation** rescales each position's vector to mean 0 and variance 1 (then
#   applies a learned scale and shift), which keeps the numbers in a range where training is
#   stable.

# %%
ln = nn.LayerNorm(C)
normed = ln(emb)  # (B, T, C)
for label, t in (("before", emb), ("after", normed)):
    mean, std = t.mean(-1), t.std(-1, correction=0)  # (B, T): one value per position
    print(f"{label:6} largest |mean| {mean.abs().max():.3f}, average std {std.mean():.3f}")
assert torch.allclose(normed.mean(-1), torch.zeros(1), atol=1e-5)

# %% [markdown]
# Where does the normalisation go? Two choices:
#
# | | one sub-layer `f` (attention or MLP) | used by |
# |---|---|---|
# | **post-norm** | `x = layernorm(x + f(x))` | the original Transformer (2017) |
# | **pre-norm** | `x = x + f(layernorm(x))` | GPT-2 and most models since; GPT-0.5M |
#
# - In **post-norm**, every block normalises the residual stream itself, so the path from the
#   input to the output goes through a LayerNorm per block. Deep post-norm models are touchy:
#   they usually need a careful learning-rate warm-up to train at all.
# - In **pre-norm**, only the *input* of `f` is normalised; the stream `x` flows from the
#   embeddings to the output through nothing but additions. Training is more stable.
# - Because the stream itself is never normalised, pre-norm models add one **final LayerNorm**
#   (`ln_f`) before the output head.
#
# The data flow through one pre-norm block: the residual stream runs straight through along the
# bottom; each branch reads a normalised copy of it and adds its result back.

# %%
import itertools

from matplotlib.patches import FancyBboxPatch

fig, ax = plt.subplots(figsize=(9, 2.6))
stream_y, branch_y = 0.0, 1.3


def draw_box(x, y, text, colour, w):
    ax.add_patch(FancyBboxPatch((x - w / 2, y - 0.3), w, 0.6, boxstyle="round,pad=0.05",
                                facecolor=colour, edgecolor="black"))  # fmt: skip
    ax.text(x, y, text, ha="center", va="center", fontsize=9)


def draw_path(points):
    """Straight segments through ``points``, with an arrow head at the last one."""
    for i, (start, end) in enumerate(itertools.pairwise(points)):
        style = "-|>" if i == len(points) - 2 else "-"  # arrow head on the last segment
        props = {"arrowstyle": style, "lw": 1.2, "shrinkA": 0, "shrinkB": 0}
        ax.annotate("", xy=end, xytext=start, arrowprops=props)


branches = [  # (fork, LayerNorm, sub-layer, plus) x-positions, labels, colour
    (0.8, 1.8, 3.5, 4.8, "LayerNorm\nln1", "attention\n(mixes positions)", "#c6dbef"),
    (5.6, 6.6, 8.3, 9.6, "LayerNorm\nln2", "MLP\n(per position)", "#fdd0a2"),
]
for fork, ln_x, f_x, plus, ln_name, f_name, colour in branches:
    draw_path([(fork, stream_y), (fork, branch_y), (ln_x - 0.6, branch_y)])
    draw_box(ln_x, branch_y, ln_name, "#e5e5e5", w=1.1)
    draw_path([(ln_x + 0.6, branch_y), (f_x - 0.9, branch_y)])
    draw_box(f_x, branch_y, f_name, colour, w=1.7)
    draw_path([(f_x + 0.9, branch_y), (plus, branch_y), (plus, stream_y + 0.17)])
    ax.add_patch(plt.Circle((plus, stream_y), 0.17, facecolor="white", edgecolor="black"))
    ax.text(plus, stream_y, "+", ha="center", va="center", fontsize=12)
draw_path([(-0.4, stream_y), (4.8 - 0.17, stream_y)])
draw_path([(4.8 + 0.17, stream_y), (9.6 - 0.17, stream_y)])
draw_path([(9.6 + 0.17, stream_y), (10.7, stream_y)])
ax.text(-0.5, stream_y, "x\n(B, T, C)", ha="right", va="center", fontsize=10)
ax.text(10.8, stream_y, "out\n(B, T, C)", ha="left", va="center", fontsize=10)
ax.text(2.4, stream_y - 0.3, "residual stream: only additions", ha="center", va="top",
        fontsize=8, color="dimgray", style="italic")  # fmt: skip
ax.text(4.8, stream_y - 0.3, "x + attn(ln1(x))", ha="center", va="top", fontsize=8)
ax.text(9.6, stream_y - 0.3, "x + mlp(ln2(x))", ha="center", va="top", fontsize=8)
ax.set(xlim=(-1.4, 11.9), ylim=(-0.7, 1.8))
ax.set_title("One pre-norm block: LayerNorm only on the branches", fontsize=11)
ax.set_aspect("equal")
ax.axis("off")
plt.tight_layout()
plt.show()

# %% [markdown]
# The same block in code:


# %%
class Block(nn.Module):
    """Pre-norm transformer block: x + attn(ln1(x)), then x + mlp(ln2(x))."""

    def __init__(self, config: utils.GPTConfig) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = MultiHeadAttention(config)
        self.ln2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))  # (B, T, C): gather from earlier positions
        x = x + self.mlp(self.ln2(x))  # (B, T, C): think about it, position by position
        return x


torch.manual_seed(0)
block = Block(config).eval()
reference_block = utils.Block(config).eval()
reference_block.load_state_dict(block.state_dict())
with torch.no_grad():
    diff = (block(emb) - reference_block(emb)[0]).abs().max().item()
print(f"{tuple(emb.shape)} -> {tuple(block(emb).shape)}; max |ours - utils.Block| = {diff:.2e}")
assert diff < 1e-5

# %% [markdown]
# The block's output has the same shape as its input, so blocks can be stacked: GPT-0.5M stacks
# `n_layer` of them.
#
# ## 7. The whole GPT
#
# Now we put everything together. The parameter names (`tok_emb`, `pos_emb`, `blocks`, `ln_f`,
# `head`) are the ones `utils.GPT` uses, so both models can load each other's weights.


# %%
class LessonGPT(nn.Module):
    """GPT-0.5M: embeddings, n_layer pre-norm blocks, final LayerNorm, tied output head."""

    def __init__(self, config: utils.GPTConfig) -> None:
        super().__init__()
        self.config = config
        self.tok_emb = nn.Embedding(config.vocab_size, config.n_embd)
        self.pos_emb = nn.Embedding(config.block_size, config.n_embd)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.head.weight = self.tok_emb.weight  # weight tying (§7.2)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        T = idx.size(1)
        pos = torch.arange(T, device=idx.device)
        x = self.drop(self.tok_emb(idx) + self.pos_emb(pos))  # (B, T, C)
        for block in self.blocks:
            x = block(x)  # (B, T, C)
        return self.head(self.ln_f(x))  # (B, T, vocab): one score per possible next character


# %% [markdown]
# ### 7.1 Proof 3: `LessonGPT` equals `utils.GPT`
#
# `utils.build_model(tokenizer)` builds the model that lessons 3 to 7 train and use. We copy its
# weights into our `LessonGPT`. `load_state_dict` is strict: it would fail if a single name or
# shape differed. Then both models, in eval mode (dropout off), must produce the same logits on
# the same batch.

# %%
torch.manual_seed(1337)
model = utils.build_model(tokenizer).eval()
lesson_model = LessonGPT(model.config).eval()
lesson_model.load_state_dict(model.state_dict())
with torch.no_grad():
    ours = lesson_model(xb)  # (B, T, vocab)
    theirs, _ = model(xb)  # (B, T, vocab)
diff = (ours - theirs).abs().max().item()
print(f"logits: {tuple(ours.shape)}; max |LessonGPT - utils.GPT| = {diff:.2e}")
assert diff < 1e-5

# %% [markdown]
# And the whole model is **causal**: changing the last character of a window must not change
# any prediction before it.

# %%
changed = xb.clone()
changed[:, -1] = (changed[:, -1] + 1) % tokenizer.vocab_size  # a different last character
with torch.no_grad():
    after = lesson_model(changed)
assert torch.allclose(after[:, :-1], ours[:, :-1], atol=1e-6)  # the past is untouched
assert not torch.allclose(after[:, -1], ours[:, -1])  # only the last position changed
print("causal: changing the last character changes only the last prediction")

# %% [markdown]
# ### 7.2 Weight tying
#
# The token embedding is a `(vocab, C)` table that turns a character into a vector. The output
# head is a `Linear(C, vocab)` whose weight is also a `(vocab, C)` table: it scores each
# character by the dot product of the final vector with that character's row. GPT-2 (and
# GPT-0.5M) use **one** table for both jobs:
#
# - a character that is read as vector `e` is predicted when the model's output points
#   towards `e`: input and output share one meaning per character;
# - it saves `vocab × C` parameters.

# %%
assert lesson_model.head.weight is lesson_model.tok_emb.weight
assert model.head.weight.data_ptr() == model.tok_emb.weight.data_ptr()
print(f"tied: one ({tokenizer.vocab_size} x {C}) table, {tokenizer.vocab_size * C:,} parameters")

# %% [markdown]
# ## 8. How many parameters, and where?
#
# `utils.parameters_by_module` counts the parameters of each part (the tied head is counted
# once, with `tok_emb`).

# %%
counts = utils.parameters_by_module(model)
total = sum(counts.values())
print(f"{'module':15} {'parameters':>10} {'share':>7}")
for name, n in counts.items():
    print(f"{name:15} {n:>10,} {n / total:>7.1%}")

# %% [markdown]
# The total, about half a million, gives GPT-0.5M its name:

# %%
# NBVAL_CHECK_OUTPUT
print(f"total: {total:,} parameters")

# %% [markdown]
# The count follows from the config. Per block: attention has `C × 3C + 3C` (qkv) plus
# `C × C + C` (proj); the MLP has `C × H + H` (fc) plus `H × C + C` (proj); each LayerNorm a scale
# and a shift of `C` numbers. We check the formula against both models.

# %%
V, H, L = config.vocab_size, config.mlp_hidden, config.n_layer
per_block = (4 * C * C + 4 * C) + (2 * C * H + H + C) + 2 * (2 * C)
formula = V * C + config.block_size * C + L * per_block + 2 * C
print(f"per block: {per_block:,}; whole model: {formula:,}")
assert formula == total == model.num_parameters()
assert sum(p.numel() for p in lesson_model.parameters()) == total
in_blocks = sum(n for name, n in counts.items() if ".attn" in name or ".mlp" in name)
print(f"attention + MLP of the {L} blocks: {in_blocks:,} = {in_blocks / total:.1%} of the model")
assert in_blocks / total > 0.8  # "almost everything", as the chart below shows

# %% [markdown]
# The same table as a chart: almost everything sits in the attention and MLP layers of the
# blocks; the embeddings and LayerNorms are small.

# %%
from matplotlib.patches import Patch

kinds = {"attn": "tab:blue", "mlp": "tab:orange", "emb": "tab:green", "ln": "tab:gray"}


def kind(name: str) -> str:
    return next(k for k in kinds if k in name)


names = list(counts)[::-1]  # first module at the top
fig, ax = plt.subplots(figsize=(7, 4.2))
bars = ax.barh(names, [counts[n] for n in names], color=[kinds[kind(n)] for n in names])
ax.bar_label(bars, labels=[f"{counts[n]:,}" for n in names], fontsize=7, padding=2)
ax.legend(handles=[Patch(color=colour, label=k) for k, colour in kinds.items()], loc="center right")
ax.set(xlabel="parameters", xlim=(0, 1.45 * max(counts.values())))
ax.set_title(f"GPT-0.5M: {total:,} parameters by module")
ax.xaxis.set_major_formatter(lambda value, _: f"{value:,.0f}")
ax.tick_params(axis="y", labelsize=8)
ax.grid(axis="x", alpha=0.3)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 9. The loss before training
#
# The model outputs **logits**: one score per character of the vocabulary at every position.
# The softmax turns them into probabilities, and the training loss is the **cross-entropy**:
# `-ln p(correct next character)`, averaged over all `B × T` positions.
#
# What loss should an untrained model have? `utils.GPT` starts with small random weights
# (standard deviation 0.02), so all logits are close to 0 and the softmax is close to
# **uniform**: every character gets probability `1 / vocab_size`. The loss is then
# `-ln(1 / vocab_size) = ln(vocab_size)`.

# %%
with torch.no_grad():
    logits, loss = model(xb, yb)  # a real batch from the book
V = tokenizer.vocab_size
print(f"untrained loss: {loss.item():.4f}")
print(f"ln(vocab size) = ln({V}) = {math.log(V):.4f}")
print(f"gap: {loss.item() - math.log(V):+.4f}")
assert abs(loss.item() - math.log(V)) < 0.1

# %% [markdown]
# ### 9.1 Where the small gap comes from
#
# The measured loss is a little **above** `ln(V)`. Write the cross-entropy at one position, with
# logits `z_1..z_V`, target `y` and mean logit `z̄`, as two terms:
#
# $$-\ln p_y = \underbrace{\ln \sum_j e^{z_j} - \bar z}_{\text{spread}}
# \;-\; \underbrace{(z_y - \bar z)}_{\text{target advantage}}$$
#
# - **spread:** equals `ln V` when all logits are equal, and is larger otherwise. If the logits
#   scatter randomly with standard deviation `σ`, then on average `e^{z_j - z̄} ≈ e^{σ²/2}` (the
#   mean of `e^{σε}` for a standard normal `ε`), so the spread is about `ln V + σ²/2`.
# - **target advantage:** how far the correct character's logit stands above the mean; an
#   untrained model knows nothing, so it is about 0.
#
# So we expect `loss ≈ ln V + σ²/2`. The cell checks the exact split, then the approximation:
# it must close most of the gap.

# %%
z = logits.float()  # (B, T, V)
mean_logit = z.mean(-1, keepdim=True)  # (B, T, 1)
spread = (torch.logsumexp(z, -1) - mean_logit[..., 0]).mean().item()
target_advantage = (z.gather(-1, yb[..., None]) - mean_logit).mean().item()
assert math.isclose(spread - target_advantage, loss.item(), abs_tol=1e-4)  # the split is exact

sigma = z.std(-1, correction=0).mean().item()  # typical spread of the logits at one position
approx = math.log(V) + sigma**2 / 2
gap, left = loss.item() - math.log(V), loss.item() - approx
print(f"logit std σ = {sigma:.3f}; spread {spread:.4f}, target advantage {target_advantage:+.4f}")
print(f"ln V + σ²/2 = {math.log(V):.4f} + {sigma**2 / 2:.4f} = {approx:.4f}")
print(f"gap to ln V: {gap:.4f}; left after adding σ²/2: {left:.4f} "
      f"({1 - abs(left) / abs(gap):.0%} of the gap explained)")  # fmt: skip
assert abs(left) < 0.5 * abs(gap)  # σ²/2 explains most of the gap

# %% [markdown]
# A simulation confirms the `σ²/2` rule on its own: random normal logits with the same `σ`,
# and a target picked at random.

# %%
gen = torch.Generator().manual_seed(0)
fake = sigma * torch.randn(100_000, V, generator=gen)  # (N, V) random logits
fake_targets = torch.randint(V, (100_000,), generator=gen)
simulated = F.cross_entropy(fake, fake_targets).item()
print(f"simulated loss - ln V = {simulated - math.log(V):.4f}   σ²/2 = {sigma**2 / 2:.4f}")
assert abs((simulated - math.log(V)) - sigma**2 / 2) < 0.25 * sigma**2 / 2

# %% [markdown]
# What is left is mostly one logit: **weight tying**. The input character's own embedding is
# part of the vector that the tied head scores, so at every position the character just read
# gets a logit above the rest, and the distribution is a little less flat than random logits
# of the same `σ`:

# %%
own_logit = (z.gather(-1, xb[..., None]) - mean_logit).mean().item()
print(f"the character just read: logit {own_logit:+.2f} above the mean on average")
assert own_logit > 0

# %% [markdown]
# The predicted distribution for one position, next to the uniform `1 / vocab_size`: nearly
# flat, except for the character just read (in orange; its numbers are printed below the
# plot). Training (lesson 3) will pile the probability on the right characters and push the
# loss far below this starting point. (Your exact numbers may differ slightly from the
# committed notebook: they depend on the random initialisation.)

# %%
probs = F.softmax(logits[0, -1], dim=-1)  # (vocab,)
just_read = xb[0, -1].item()
colours = ["tab:orange" if i == just_read else "tab:blue" for i in range(V)]
fig, ax = plt.subplots(figsize=(7, 3))
ax.bar(range(V), probs, color=colours, label="untrained model")
ax.axhline(1 / V, color="tab:red", linestyle="--", label="1 / vocab size")
ax.set_xticks(range(V), [utils.visible_char(ch) for ch in tokenizer.chars], fontsize=7)
ax.set(ylabel="probability", title="Next-character distribution before training")
ax.legend(loc="upper right")
plt.tight_layout()
plt.show()
print(f"just read: {utils.visible_char(tokenizer.chars[just_read])!r}, probability "
      f"{probs[just_read]:.3f}; the others {probs.min():.3f} to "
      f"{probs[torch.arange(V) != just_read].max():.3f}; uniform {1 / V:.3f}")  # fmt: skip

# %% [markdown]
# This starting value is a useful check for any new model: if the first training loss is far
# above `ln(vocab_size)`, the initialisation is broken (the model is confidently wrong before it
# has learned anything).
#
# ## Summary
#
# - Token and position embeddings turn `(B, T)` ids into `(B, T, C)` vectors; the position table
#   is what tells the model about order, and it limits the context to `block_size`.
# - One attention head: `softmax(q kᵀ / √d)` with `-inf` above the diagonal, times `v`. The mask
#   keeps every position from seeing the future. Our version equals
#   `F.scaled_dot_product_attention(..., is_causal=True)` and `utils.CausalSelfAttention`.
# - Multi-head attention runs `n_head` heads as one extra batch dimension and mixes them with
#   `proj`; the MLP then works on each position on its own.
# - A pre-norm block is `x + attn(ln1(x))`, then `x + mlp(ln2(x))`; a final `ln_f` and a head tied
#   to the token embedding turn the stream into logits.
# - Our `LessonGPT` loads the weights of `utils.build_model(...)` and gives the same logits; the
#   model has about half a million parameters, almost all in attention and MLP.
# - Untrained, the model guesses almost uniformly, so its loss starts near `ln(vocab_size)`;
#   the small excess is about `σ²/2` for logits of spread `σ`.
# - Dropout zeroes numbers with probability `p` in training (survivors scaled by `1/(1-p)`) and
#   does nothing in eval mode; `utils.FastDropout` is the same rule with a mask made of bytes.
#
# ## Exercises
#
# 1. **Remove the mask.** Call `F.scaled_dot_product_attention(q4, k4, v4)` without
#    `is_causal=True` and show that the output at position 0 now changes when you change the
#    *last* character. Why would such a model reach a very low training loss and still be useless
#    for generation?
# 2. **Untie the head.** How many parameters would GPT-0.5M have with a separate output head?
#    Build it: `LessonGPT` with the tying line removed.
# 3. **A bigger model.** Use the formula of §8 to predict the parameter count for
#    `n_layer=6, n_embd=192, mlp_hidden=384`, then check it with `utils.build_model`.

# %% [markdown]
# ## Solutions
#
# Each solution is a code cell that runs with the lesson (the tests execute it too). In Jupyter
# its code starts collapsed: click the cell to open it.
#
# **Solution 1.** Attention without the mask, before and after changing only the last position:

# %% jupyter={"source_hidden": true}
with torch.no_grad():
    changed_emb = emb.clone()
    changed_emb[:, -1] += 1.0  # change only the last position's vector
    before = F.scaled_dot_product_attention(q4, k4, v4)  # no mask
    after = F.scaled_dot_product_attention(*attn.heads(changed_emb))
    causal_before = F.scaled_dot_product_attention(q4, k4, v4, is_causal=True)
    causal_after = F.scaled_dot_product_attention(*attn.heads(changed_emb), is_causal=True)
leak = (after[:, :, 0] - before[:, :, 0]).abs().max().item()
no_leak = (causal_after[:, :, 0] - causal_before[:, :, 0]).abs().max().item()
print(f"position 0 moved by {leak:.2e} without the mask, {no_leak:.2e} with it")
assert leak > 1e-4 and no_leak < 1e-6

# %% [markdown]
# Without the mask, position `t` can read character `t + 1`, which is exactly its target. The
# model learns to copy it and the training loss drops towards 0. At generation time the next
# character does not exist yet, so there is nothing to copy and the output is garbage.
#
# **Solution 2.** The same model with its own output table:

# %% jupyter={"source_hidden": true}
class UntiedGPT(LessonGPT):
    """LessonGPT whose output head has its own (vocab, C) table."""

    def __init__(self, config: utils.GPTConfig) -> None:
        super().__init__(config)
        self.head = nn.Linear(config.n_embd, config.vocab_size, bias=False)


untied = UntiedGPT(config)
n_untied = sum(p.numel() for p in untied.parameters())
print(f"untied: {n_untied:,} parameters, {n_untied - total:,} more = {V} x {C}, "
      f"{(n_untied - total) / total:.1%} of the tied model")  # fmt: skip
assert n_untied - total == V * C
gpt2_saving = 50_257 * 768  # GPT-2 small: vocabulary x width
print(f"in GPT-2 small, tying saves {gpt2_saving:,} parameters")

# %% [markdown]
# The separate head adds one `(vocab, C)` table. With a vocabulary of a few dozen characters
# that is a small share of the model; in GPT-2, with 50,257 tokens of width 768, tying saves
# tens of millions (both printed above).
#
# **Solution 3.** The formula of §8 for a bigger model, checked against `utils`:

# %% jupyter={"source_hidden": true}
big = dict(n_layer=6, n_embd=192, mlp_hidden=384)
C2, H2, L2 = big["n_embd"], big["mlp_hidden"], big["n_layer"]
per_block_2 = (4 * C2 * C2 + 4 * C2) + (2 * C2 * H2 + H2 + C2) + 2 * (2 * C2)
predicted = (V + config.block_size) * C2 + L2 * per_block_2 + 2 * C2
actual = utils.build_model(tokenizer, **big).num_parameters()
print(f"{predicted:,} predicted, {actual:,} actual: {actual / total:.1f}x GPT-0.5M")
assert predicted == actual

# %% [markdown]
# Most parameters scale with `n_layer × C²`: 1.5× wider and 1.5× deeper gives
# 1.5² × 1.5 ≈ 3.4× the block parameters; the embeddings grow only 1.5×, so the whole model
# grows a little less (the ratio printed above).
