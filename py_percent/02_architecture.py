# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: -all
#     notebook_metadata_filter: kernelspec,jupytext,colab,accelerator
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
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
# **Reads:** the book and `data/alice_qa.jsonl` (for the vocabulary and real text). **Writes:**
# nothing. **Runtime:** well under a minute on a CPU; nothing is trained here.

# %% [markdown]
# ## 0. Setup
# The same first cell opens every lesson. It makes the shared helper module `utils.py` importable
# wherever this runs: Jupyter, `pytest --nbval`, Colab (it clones the repository first; Colab
# already has torch, matplotlib and tqdm, so nothing is installed), or
# `python py_percent/NN_name.py`.

# %%
import os
import subprocess
import sys
from pathlib import Path

# The repository's address, named once in pyproject.toml ([tool.gpt05m]) and copied here by
# `python tests/repository.py`. In a fork, change it to your fork's address (see the README).
REPO_URL = "https://github.com/your-username/GPT-0.5M"
if "google.colab" in sys.modules and not Path("utils.py").exists():
    clone = Path("/content/GPT-0.5M")
    if not clone.exists():
        print(f"cloning {REPO_URL}")
        no_prompt = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}  # fail fast, never ask a password
        cloned = subprocess.run(["git", "clone", "--depth=1", REPO_URL, str(clone)], env=no_prompt)
        if cloned.returncode != 0:
            raise RuntimeError(
                f"Could not clone {REPO_URL}. In a fork, set REPO_URL above to your fork's "
                "address, https://github.com/<your-username>/GPT-0.5M (to change it in every "
                "lesson and badge at once, run `python tests/repository.py <address>` in the "
                "fork and commit)."
            )
    os.chdir(clone / "notebooks")
for folder in (Path.cwd(), Path.cwd() / "notebooks", Path.cwd().parent / "notebooks"):
    if (folder / "utils.py").exists():
        sys.path.insert(0, str(folder))
        break
import utils

device = utils.pick_device()
print(f"device: {device} | quick mode: {utils.QUICK}")

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
# First the attention itself, as a function of q, k and v. It is section 3 written for any
# number of leading dimensions:


# %%
def causal_attention(q, k, v):
    """softmax(q kᵀ / √d + causal mask) v, for q, k, v of shape (..., T, d)."""
    T, d = q.shape[-2:]
    scores = q @ k.transpose(-2, -1) / math.sqrt(d)  # (..., T, T)
    mask = torch.tril(torch.ones(T, T, dtype=torch.bool, device=q.device))
    weights = F.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)  # (..., T, T)
    return weights @ v, weights  # (..., T, d), (..., T, T)


assert torch.allclose(causal_attention(q, k, v)[0], out)  # the same as section 3

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
# of `block_size` characters from the book, embedded with the tables of section 2.

# %%
get_batch = utils.book_batches(corpus.splits, config.block_size, batch_size=4)
xb, yb = get_batch("train", torch.Generator().manual_seed(0))  # (4, 128) each
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
        self.head.weight = self.tok_emb.weight  # weight tying (section 7.1)

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

# %% [markdown]
# The same table as a chart: almost everything sits in the attention and MLP layers of the four
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
#
# The logits are small but not exactly equal, and any spread makes the guess a little worse
# than perfectly uniform: for random logits with standard deviation `σ` the loss is about
# `ln(vocab_size) + σ²/2`. The cell prints both.

# %%
with torch.no_grad():
    logits, loss = model(xb, yb)  # a real batch from the book
expected = math.log(tokenizer.vocab_size)
print(f"logits: mean {logits.mean():.3f}, std {logits.std():.3f}")
print(f"untrained loss: {loss.item():.4f}")
print(f"ln(vocab size) = ln({tokenizer.vocab_size}) = {expected:.4f}")
print(f"ln(vocab size) + std²/2 = {expected + logits.std().item() ** 2 / 2:.4f}")
assert abs(loss.item() - expected) < 0.1

# %% [markdown]
# The predicted distribution for one position, next to the uniform `1 / vocab_size`: flat,
# as promised. Training (lesson 3) will pile the probability on the right characters and push
# the loss far below this starting point. (Your exact numbers may differ slightly from the
# committed notebook: they depend on the random initialisation.)

# %%
probs = F.softmax(logits[0, -1], dim=-1)  # (vocab,)
fig, ax = plt.subplots(figsize=(7, 3))
ax.bar(range(tokenizer.vocab_size), probs, color="tab:blue", label="untrained model")
ax.axhline(1 / tokenizer.vocab_size, color="tab:red", linestyle="--", label="1 / vocab size")
ax.set_xticks(
    range(tokenizer.vocab_size), [utils.visible_char(ch) for ch in tokenizer.chars], fontsize=7
)
ax.set(ylabel="probability", title="Next-character distribution before training")
ax.legend(loc="upper right")
plt.tight_layout()
plt.show()

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
# - Untrained, the model guesses uniformly, so its loss starts at `ln(vocab_size)`.
#
# ## Exercises
#
# 1. **Remove the mask.** Call `F.scaled_dot_product_attention(q4, k4, v4)` without
#    `is_causal=True` and show that the output at position 0 now changes when you change the
#    *last* character. Why would such a model reach a very low training loss and still be useless
#    for generation?
# 2. **Untie the head.** How many parameters would GPT-0.5M have with a separate output head?
#    Build it: `LessonGPT` with the tying line removed.
# 3. **A bigger model.** Use the formula of section 8 to predict the parameter count for
#    `n_layer=6, n_embd=192, mlp_hidden=384`, then check it with `utils.build_model`.
#
# ## Solutions

# %% [markdown]
# <details><summary>Solution 1</summary>
#
# ```python
# with torch.no_grad():
#     emb2 = emb.clone()
#     emb2[:, -1] += 1.0  # change only the last position's vector
#     q2, k2, v2 = attn.heads(emb2)
#     before = F.scaled_dot_product_attention(q4, k4, v4)  # no mask
#     after = F.scaled_dot_product_attention(q2, k2, v2)
# print((after[:, :, 0] - before[:, :, 0]).abs().max())  # > 0: position 0 saw the future
# ```
#
# Without the mask, position `t` can read character `t + 1`, which is exactly its target. The
# model learns to copy it and the training loss drops towards 0. At generation time the next
# character does not exist yet, so there is nothing to copy and the output is garbage.
#
# </details>

# %% [markdown]
# <details><summary>Solution 2</summary>
#
# ```python
# class UntiedGPT(LessonGPT):
#     def __init__(self, config):
#         super().__init__(config)
#         self.head = nn.Linear(config.n_embd, config.vocab_size, bias=False)  # its own table
#
# untied = UntiedGPT(config)
# n = sum(p.numel() for p in untied.parameters())
# print(n - total, "=", config.vocab_size * config.n_embd)
# ```
#
# The separate head adds one `(vocab, C)` table. With a vocabulary of only a few dozen characters
# that is a small share of the model; in GPT-2, with 50,257 tokens, tying saves tens of
# millions of parameters.
#
# </details>

# %% [markdown]
# <details><summary>Solution 3</summary>
#
# ```python
# big = dict(n_layer=6, n_embd=192, mlp_hidden=384)
# C2, H2, L2 = big["n_embd"], big["mlp_hidden"], big["n_layer"]
# per_block = (4 * C2 * C2 + 4 * C2) + (2 * C2 * H2 + H2 + C2) + 2 * (2 * C2)
# predicted = (V + config.block_size) * C2 + L2 * per_block + 2 * C2
# actual = utils.build_model(tokenizer, **big).num_parameters()
# print(f"{predicted:,} predicted, {actual:,} actual")
# assert predicted == actual
# ```
#
# Most parameters scale with `n_layer × C²`: 1.5× wider and 1.5× deeper is roughly 3.4× more.
#
# </details>
