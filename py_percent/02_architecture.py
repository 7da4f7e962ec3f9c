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
# **What you will learn:** every part of GPT-0.5M, built from small tensors: embeddings, the
# softmax, causal self-attention by hand, multi-head attention, the MLP, dropout, the pre-norm
# block and the whole model; the softmax, attention, MLP, block and model each **proven** equal
# to PyTorch's or `utils.py`'s (dropout's rule too, given the same random mask).
#
# - **Reads:** the book and `data/alice_qa.jsonl` (for the vocabulary and real text).
# - **Writes:** nothing.
# - **Runtime:** nothing is trained; §5.2 times training steps of two dropout variants.

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
# This lesson keeps every tensor on the **CPU**, whatever `device` says: the tensors are tiny, and
# some GPU operations compute with fewer digits, which would blur our exact comparisons. We load
# lesson 1's corpus and the imports:

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
# GPT-0.5M turns a window of `T` character ids into `T` rows of **logits**: one score per
# vocabulary character, for the character that comes next.
#
# ```
# ids (B, T)
#  → token embedding + position embedding          (B, T, C)
#  → n_layer × block:  x = x + attention(layernorm(x))
#                      x = x + mlp(layernorm(x))   (B, T, C)
#  → final layernorm → linear head                 (B, T, vocab)   logits
# ```

# %% [markdown]
# - `B`: the batch size (windows at once);
# - `T`: the characters in a window;
# - `C`: the width of every vector inside the model.
#
# Each step is a later section: attention §3–4, the MLP §5, layernorm §6, the head §7.
# All sizes live in one config object. The default one:

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
# `nn.Embedding(vocab_size, C)` is a table with one learnable row of `C` numbers per character
# (learnable numbers are the model's **parameters**: training adjusts them). An id looks up its
# row, so the same character always gets the same vector.

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
# Attention (§3) has no built-in idea of **order**: it sees the characters before a position as a
# set, so in one attention layer the last character of "dog" and of "odg" would get the same
# result.
# So a second table adds one learned vector per **position** `0 .. block_size-1`. It also caps
# the context at `block_size` characters.

# %%
pos_emb = nn.Embedding(config.block_size, C)
pos = pos_emb(torch.arange(T))  # (T, C)
x = tok + pos  # (B, T, C): broadcasting adds the same positions to every row of the batch
print(f"pos table: {tuple(pos_emb.weight.shape)}  pos: {tuple(pos.shape)}  x: {tuple(x.shape)}")
assert not torch.equal(x[0, first_a], x[0, second_a])  # same letter, different place

# %% [markdown]
# ## 3. One attention head, by hand
#
# Attention lets each position gather information from earlier ones. Each position makes three
# vectors from its own `x` (hence **self**-attention), with three **linear layers** (each computes
# `x @ W + b`: a learned matrix `W` and, unless `bias=False`, a bias `b`):
#
# - a **query** `q`: "what am I looking for?"
# - a **key** `k`: "what do I contain?"
# - a **value** `v`: "what do I hand over if you pick me?"

# %% [markdown]
# GPT-0.5M splits `C` into `n_head` **heads**: attentions side by side, each with its own queries,
# keys and values (§4). One head works in `head_size = C / n_head` dimensions:

# %%
head_size = C // config.n_head
torch.manual_seed(0)
query = nn.Linear(C, head_size, bias=False)
key = nn.Linear(C, head_size, bias=False)
value = nn.Linear(C, head_size, bias=False)
q, k, v = query(x), key(x), value(x)  # (B, T, hs) each
print(f"head_size = {head_size}; q, k, v: {tuple(q.shape)}")

# %% [markdown]
# Position `t` scores every position `s` by the dot product `q[t] · k[s]`, turns the scores into
# weights with a **softmax**, and sums the values `v[s]` with those weights.
#
# ### 3.1 Softmax: scores to weights
#
# The softmax turns any vector of scores `z` into positive weights that sum to 1:
#
# $$\mathrm{softmax}(z)_i = \frac{e^{z_i}}{\sum_j e^{z_j}}$$

# %%
z = torch.tensor([2.0, 1.0, 0.0, -1.0])
by_hand = z.exp() / z.exp().sum()
print(f"softmax({z.tolist()}) = {by_hand.numpy().round(3)}, sum {by_hand.sum():.1f}")
assert torch.allclose(by_hand, F.softmax(z, dim=-1))

# %% [markdown]
# A larger score gets a larger weight. Multiply the same scores by 10, and almost all the weight
# lands on one entry: the softmax **saturates** to nearly **one-hot** (all weight on one entry).

# %%
print(f"softmax(10 z) = {F.softmax(10 * z, dim=-1).numpy().round(3)}")

# %% [markdown]
# ### 3.2 Scores, scaled by √head_size
#
# `q @ kᵀ` computes all `T × T` dot products at once. The **variance** of random numbers is their
# mean squared distance from their mean; its square root, the **standard deviation** (std), is
# their typical spread. A dot product of `d` random numbers of variance 1 has variance `d`: such
# large scores saturate the softmax, and a near one-hot choice barely changes when the weights
# change a little, which leaves training little to learn from.
# Dividing by `√d` brings the spread back to about 1:

# %%
torch.manual_seed(0)
a, b = torch.randn(10_000, head_size), torch.randn(10_000, head_size)
raw = (a * b).sum(dim=-1)  # 10,000 dot products of random vectors
print(f"std of raw dot products: {raw.std():.2f}  (√{head_size} = {math.sqrt(head_size):.2f})")
print(f"std after dividing by √{head_size}: {(raw / math.sqrt(head_size)).std():.2f}")

# %% [markdown]
# The scores of our head on the sentence: one row per position `t`, one column per `s`.

# %%
scores = q @ k.transpose(-2, -1) / math.sqrt(head_size)  # (B, T, T)
print(f"scores: {tuple(scores.shape)}")

# %% [markdown]
# ### 3.3 The causal mask
#
# The model predicts character `t + 1` from characters `0 .. t` only. If position `t` could look
# at `t + 1`, it would simply copy the answer. So every score **above the diagonal** becomes
# `-inf`: `e^-inf = 0`, and the future gets exactly zero weight.

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
# Left, the mask: row `t` (the position that looks) may use the columns `s ≤ t` (dark). Right, our
# head's weights: **untrained**, so only the shape matters, each row spreading a weight of 1 over
# the characters up to itself.


# %%
labels = [utils.visible_char(ch) for ch in sentence]


def show_matrix(ax, matrix, title, cmap="viridis"):
    """Draw a (T, T) matrix with the sentence's characters on both axes."""
    image = ax.imshow(matrix, cmap=cmap, vmin=0, vmax=1)
    ax.set_title(title, fontsize=10)
    ax.set_xticks(range(len(labels)), labels, fontsize=6)
    ax.set_yticks(range(len(labels)), labels, fontsize=6)
    ax.set(xlabel="looked at (s)", ylabel="looking (t)")
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
# **Multi-head** attention runs `n_head` heads side by side, each with its own queries, keys and
# values, and concatenates their outputs back to width `C`. Two tricks:
#
# - one `Linear(C, 3C)`, `qkv`, computes queries, keys and values of **all** heads at once;
# - a reshape to `(B, n_head, T, head_size)` makes the heads one more batch dimension.

# %% [markdown]
# First the attention itself: §3 written for any number of leading dimensions.


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
# Now the module (a PyTorch `nn.Module`: a layer object that holds its parameters). Its two
# linear layers are named `qkv` and `proj` as in `utils.py`, so the two can exchange weights.
# `proj` mixes the concatenated heads.


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
attn = MultiHeadAttention(config).eval()  # eval(): dropout (§5.1) off, so outputs compare
print(f"{tuple(x.shape)} -> {tuple(attn(x).shape)}")

# %% [markdown]
# Each head has its own weights, so each draws its own (still random) pattern on the sentence.

# %%
with torch.no_grad():
    _, head_weights = causal_attention(*attn.heads(x))  # (B, nh, T, T)
rows = math.ceil(config.n_head / 2)
fig, axes = plt.subplots(rows, 2, figsize=(8, 4 * rows), squeeze=False)
for h, ax in zip(range(config.n_head), axes.flat, strict=False):
    show_matrix(ax, head_weights[0, h], f"head {h} (untrained)")
plt.tight_layout()
plt.show()

# %% [markdown]
# ### 4.1 Proof 1: our attention equals PyTorch's
#
# PyTorch's built-in `F.scaled_dot_product_attention(q, k, v, is_causal=True)` must agree with
# ours, on 4 random windows of `block_size` characters embedded as in §2.

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
# `utils.CausalSelfAttention` is the model's attention: the built-in, plus lesson 4's KV cache (a
# store of past keys and values, so that generating does not recompute them). We copy our weights
# into it (same names) and compare outputs.

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
# Attention moves information **between** positions. The MLP (multi-layer perceptron, also called
# a position-wise **feed-forward network**) works on **each position alone**: widen to
# `mlp_hidden` numbers, apply a non-linearity, project back to `C`. Without the non-linearity it
# would be one linear map.


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
# The non-linearity is **GELU**, as in **GPT-2** (an OpenAI model whose layout ours follows):
# a smooth version of ReLU (0 for negative inputs, the input itself otherwise) that lets a little
# signal through below 0.

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
# Every module above ends in `self.dropout` (and `LessonGPT`, §7, has one on the embeddings).
# Dropout is a **regulariser**: it makes learning the training text by heart harder.

# %% [markdown]
# - `train()` mode: each number becomes 0 with probability `p`; the survivors are multiplied by
#   `1 / (1 - p)`, so each number keeps its **expected value** (its average over many random draws);
# - `eval()` mode: the identity (numbers pass unchanged), so the forward pass (running the model)
#   is deterministic: the same input always gives the same logits.

# %% [markdown]
# Each training step thus trains a randomly thinned network, so no single number can carry a
# memorised detail alone. Our rate is `config.dropout`. On a long vector of ones:

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
# ### 5.2 A faster dropout? An experiment
#
# `nn.Dropout` draws one random float per number. A cheaper idea: draw random **bytes**. One
# random 64-bit integer gives 8 bytes, 8 uniform numbers in 0..255.

# %% [markdown]
# A byte below `threshold = round(p × 256)` drops its number:
#
# - the drop rate is `threshold / 256`: `p` rounded to a multiple of 1/256;
# - survivors are scaled by `256 / (256 - threshold)`, `nn.Dropout`'s rule for that `p`.

# %% [markdown]
# Written out, as a module that can stand in for `nn.Dropout` (in eval mode both pass numbers
# through unchanged):


# %%
def byte_dropout(x: torch.Tensor, p: float) -> torch.Tensor:
    """Training-mode dropout of ``x`` with a mask made of random bytes."""
    threshold = round(p * 256)  # a byte below this drops its number
    n = x.numel()
    draws = torch.randint(-(2**63), 2**63 - 1, ((n + 7) // 8,), dtype=torch.int64)  # 8 bytes each
    random_bytes = draws.view(torch.uint8)[:n].view(x.shape)  # uniform in 0..255
    keep = random_bytes >= threshold  # (x.shape) True = survives
    return x * keep * (256 / (256 - threshold))  # survivors scaled by 1 / (1 - rounded p)


class FastDropout(nn.Module):
    """``byte_dropout`` in training mode, the identity in eval mode."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return byte_dropout(x, self.p) if self.training and self.p > 0 else x


fast = FastDropout(p_drop).train()
p_rounded = round(p_drop * 256) / 256
print(f"p = {p_drop} becomes {round(p_drop * 256)}/256 = {p_rounded:.4f}")
print(f"dropped by FastDropout: {(fast(ones) == 0).float().mean():.4f} of {len(ones):,} numbers")
assert abs((fast(ones) == 0).float().mean() - p_rounded) < 0.005

# %% [markdown]
# Given the **same mask**, `nn.Dropout` with the rounded `p` computes exactly what `FastDropout`
# does. We read the mask `nn.Dropout` drew (the zeros of its output; `emb` has none of its own)
# and apply the byte rule with it. In eval mode both are the identity.

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
# Is it worth a custom module? The project's rule: use `FastDropout` only if it saves at least
# 10% of a **training step** on a CPU, beyond the noise of the timing (lesson 3: run the model,
# compute how each weight should change, update the weights). Otherwise the standard
# `nn.Dropout`, which `utils.GPT` uses.
#
# To measure it, a copy of the default model with every `nn.Dropout` swapped for `FastDropout`:

# %%
import copy


def with_fast_dropout(model: nn.Module) -> nn.Module:
    """A copy of ``model`` in which every nn.Dropout is a FastDropout of the same p."""
    twin = copy.deepcopy(model)
    for module in list(twin.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, nn.Dropout):
                setattr(module, name, FastDropout(child.p))
    return twin


torch.manual_seed(0)
variants = {"nn.Dropout": utils.build_model(tokenizer).train()}
variants["FastDropout"] = with_fast_dropout(variants["nn.Dropout"])
assert not any(isinstance(m, nn.Dropout) for m in variants["FastDropout"].modules())

# %% [markdown]
# One timed step is a forward pass (run the model), a backward pass (compute how each weight should
# change) and the update by the optimizers (the rules that apply those changes, lesson 3), all on
# a batch of the training recipe's size, with 2 CPU threads:

# %%
import statistics
import time

train_cfg = utils.PRETRAIN  # lesson 3's recipe
xs, ys = utils.book_batches(corpus.splits, config.block_size, train_cfg.batch_size)(
    "train", torch.Generator().manual_seed(0)
)  # (batch_size, block_size) each
cpu = torch.device("cpu")
optimizers = {name: utils.make_optimizer(m, train_cfg, cpu) for name, m in variants.items()}


def seconds_per_step(name: str, n_steps: int) -> float:
    """Mean wall-clock seconds of ``n_steps`` training steps of one variant."""
    model = variants[name]
    start = time.perf_counter()
    for _ in range(n_steps):
        _, loss = model(xs, ys)
        for optimizer in optimizers[name]:
            optimizer.zero_grad(set_to_none=True)
        loss.backward()
        for optimizer in optimizers[name]:
            optimizer.step()
    return (time.perf_counter() - start) / n_steps


print(f"batch {tuple(xs.shape)}")

# %% [markdown]
# Other programs make timings noisy, so the two variants **alternate** in rounds (the order flips
# every round). The saving printed is the median (middle value) of the per-round savings. The
# noise is half their interquartile range (the width of their middle half); a saving within it
# is no measurable difference.

# %%
n_rounds, n_steps = utils.by_mode(full=24, quick=2), utils.by_mode(full=3, quick=1)
threads = torch.get_num_threads()
torch.set_num_threads(2)
try:
    for name in variants:
        seconds_per_step(name, 1)  # one untimed step first
    timed = {name: [] for name in variants}
    for r in range(n_rounds):
        for name in list(variants)[:: 1 if r % 2 == 0 else -1]:  # alternate the order
            timed[name].append(seconds_per_step(name, n_steps))
finally:
    torch.set_num_threads(threads)
per_round = [1 - f / p for f, p in zip(timed["FastDropout"], timed["nn.Dropout"], strict=True)]
q1, _, q3 = statistics.quantiles(per_round, n=4) if n_rounds > 1 else (0.0, 0.0, 0.0)
saving, noise = statistics.median(per_round), (q3 - q1) / 2
for name, seconds in timed.items():
    print(f"{name:12} median {statistics.median(seconds) * 1e3:6.1f} ms per step")
print(f"FastDropout saves {saving:+.1%} of a step (noise ±{noise:.1%}, {n_rounds} rounds)")

# %% [markdown]
# The verdict: FastDropout earns its place only if its saving, minus the noise, still reaches 10%.
# `utils.GPT` uses `nn.Dropout`: most committed runs of this cell (git history) did not clear that
# bar, though their savings sit near 10%. The noise counts rounds within one run, not how a shared
# machine's speed drifts between runs, so one run's verdict (this one too) can differ.

# %%
if abs(saving) <= noise:
    verdict = "no measurable difference: nn.Dropout"
elif saving - noise >= 0.10:
    verdict = "at least 10% of a step beyond this run's noise: FastDropout would pay in this run"
elif saving + noise < 0.10:
    verdict = "under 10% of a step beyond this run's noise: nn.Dropout"
else:
    verdict = "a real saving, not shown to reach 10% of a step: nn.Dropout"
print(f"FastDropout saves {saving:.1%} ± {noise:.1%}: {verdict}")

# %% [markdown]
# ## 6. The residual block, pre-norm
#
# A block chains attention and the MLP, each wrapped in two helpers. The first is a **residual
# connection** `x = x + f(x)`: each part only *adds* a correction to the vector flowing through
# the model, the **residual stream**.

# %% [markdown]
# The second is **layer normalisation**: it rescales each position's vector to mean 0 and variance
# 1, then applies a learned scale and shift, keeping the numbers in a steady range.

# %%
ln = nn.LayerNorm(C)
normed = ln(emb)  # (B, T, C)
for label, t in (("before", emb), ("after", normed)):
    mean, std = t.mean(-1), t.std(-1, correction=0)  # (B, T): one value per position
    print(f"{label:6} largest |mean| {mean.abs().max():.3f}, average std {std.mean():.3f}")
assert torch.allclose(normed.mean(-1), torch.zeros(1), atol=1e-5)

# %% [markdown]
# A stack of such blocks (attention, then an MLP, each added to the residual stream) is a
# **Transformer**, the design every GPT uses. Where does the normalisation go? Two choices:
#
# | | one sub-layer `f` (attention or MLP) | used by |
# |---|---|---|
# | **post-norm** | `x = layernorm(x + f(x))` | the first Transformer (Vaswani et al.) |
# | **pre-norm** | `x = x + f(layernorm(x))` | GPT-2 and most models since; GPT-0.5M |

# %% [markdown]
# - **Post-norm** normalises the stream itself, after each sub-layer; deep post-norm models are
#   known to need a slow start (a "warm-up", lesson 3).
# - **Pre-norm** normalises only the *input* of `f`: the stream flows from embeddings to output
#   through additions alone.
# - So pre-norm needs one **final LayerNorm** (`ln_f`) before the output head.

# %% [markdown]
# One pre-norm block: the residual stream runs along the bottom; each branch reads a normalised
# copy and adds its result back.

# %%
from IPython.display import Image

Image(filename=str(utils.REPO_ROOT / "notebooks/figures/prenorm_block.png"))

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
# The output has the shape of the input, so blocks stack: GPT-0.5M stacks `n_layer` of them.
#
# ## 7. The whole GPT
#
# Everything together. The parameter names (`tok_emb`, `pos_emb`, `blocks`, `ln_f`, `head`) are
# those of `utils.GPT`, so the two models can load each other's weights.


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
# `utils.build_model(tokenizer)` builds the model of lessons 3 to 7. We copy its weights into
# `LessonGPT` (`load_state_dict` fails if a name or shape differs); in eval mode both must give
# the same logits.

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
# The whole model is **causal**: changing the last character of a window must not change any
# prediction before it.

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
# The token embedding is a `(vocab, C)` table. The output head, a `Linear(C, vocab)`, holds one
# too: it scores each character by a dot product with that character's row. GPT-2 and GPT-0.5M use
# **one** table for both jobs, which saves `vocab × C` parameters.

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
# The total, rounded to half a million, gives GPT-0.5M its name:

# %%
# NBVAL_CHECK_OUTPUT
print(f"total: {total:,} parameters")

# %% [markdown]
# The count follows from the config (`H` = `mlp_hidden`). Per block:
#
# - attention: `C × 3C + 3C` (qkv) plus `C × C + C` (proj);
# - MLP: `C × H + H` (fc) plus `H × C + C` (proj);
# - each LayerNorm: a scale and a shift of `C` numbers.

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
# The same table as a chart: almost everything sits in the blocks' attention and MLP layers.

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
# The softmax (§3.1) turns the logits into probabilities. The training loss is the
# **cross-entropy**: `-ln p(correct next character)`, averaged over all `B × T` positions.

# %% [markdown]
# `utils.GPT` starts from small random weights (GPT-2's recipe): standard deviation 0.02, and
# less for the `proj` layers that add to the residual stream, `0.02 / √(2 · n_layer)`.

# %%
residual_std = 0.02 / math.sqrt(2 * config.n_layer)
print(f"0.02 / √(2 · {config.n_layer}) = {residual_std:.4f}")
for name in ("blocks.0.attn.qkv.weight", "blocks.0.mlp.fc.weight", "blocks.0.attn.proj.weight"):
    print(f"{name:26} std {model.get_parameter(name).std():.4f}")
assert abs(model.get_parameter("blocks.0.mlp.proj.weight").std() - residual_std) < 1e-3

# %% [markdown]
# With such weights the logits stay small, so the softmax is close to **uniform** (most
# characters near `1 / V`, `V` = `vocab_size`) and the loss near `-ln(1 / V) = ln V`. §9.1
# measures how far from uniform it really is.

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
# The loss is a little **above** `ln V`. Split the cross-entropy at one position (logits
# `z_1..z_V`, target `y`, mean logit `z̄`) into two terms:
#
# $$-\ln p_y = \underbrace{\ln \sum_j e^{z_j} - \bar z}_{\text{spread}}
# \;-\; \underbrace{(z_y - \bar z)}_{\text{target advantage}}$$

# %% [markdown]
# - **spread:** `ln V` when all logits are equal, larger otherwise. For logits scattered with
#   standard deviation `σ`, the mean of `e^{z_j - z̄}` is about `e^{σ²/2}`, so the spread is about
#   `ln V + σ²/2`.
# - **target advantage:** how far the correct logit stands above the mean; about 0 untrained.
#
# So we expect `loss ≈ ln V + σ²/2`. The cell checks the exact split, then the approximation.

# %%
z = logits.float()  # (B, T, V)
mean_logit = z.mean(-1, keepdim=True)  # (B, T, 1)
spread = (torch.logsumexp(z, -1) - mean_logit[..., 0]).mean().item()
target_advantage = (z.gather(-1, yb[..., None]) - mean_logit).mean().item()
assert math.isclose(spread - target_advantage, loss.item(), abs_tol=1e-4)  # the split is exact

sigma = z.std(-1, correction=0).mean().item()  # typical spread of the logits at one position
approx = math.log(V) + sigma**2 / 2
gap, left = loss.item() - math.log(V), loss.item() - approx
explained = 1 - abs(left) / abs(gap)
print(f"logit std σ = {sigma:.3f}; spread {spread:.4f}, target advantage {target_advantage:+.4f}")
print(f"ln V + σ²/2 = {math.log(V):.4f} + {sigma**2 / 2:.4f} = {approx:.4f}")
print(f"gap to ln V: {gap:.4f}; left after adding σ²/2: {left:.4f} ({explained:.0%} explained)")
assert abs(left) < 0.5 * abs(gap)  # σ²/2 explains most of the gap

# %% [markdown]
# A simulation checks the `σ²/2` rule alone: random normal logits with the same `σ`, and random
# targets.

# %%
gen = torch.Generator().manual_seed(0)
fake = sigma * torch.randn(100_000, V, generator=gen)  # (N, V) random logits
fake_targets = torch.randint(V, (100_000,), generator=gen)
simulated = F.cross_entropy(fake, fake_targets).item() - math.log(V)
print(f"simulated loss - ln V = {simulated:.4f}   σ²/2 = {sigma**2 / 2:.4f}")
assert abs(simulated - sigma**2 / 2) < 0.25 * sigma**2 / 2

# %% [markdown]
# The real gap beside the simulated one, with its standard error over the batch's windows (the
# typical error of a mean: the windows' standard deviation over √(number of windows)).
# One logit stands out: the character just read sits above the mean. With weight tying, its own
# embedding is part of the vector the head scores (a likely cause; not measured here):

# %%
own_logit = (z.gather(-1, xb[..., None]) - mean_logit).mean().item()
per_window = F.cross_entropy(z.transpose(1, 2), yb, reduction="none").mean(1)  # (B,)
stderr = (per_window.std() / len(per_window) ** 0.5).item()
print(f"gap: real {gap:.4f} ± {stderr:.4f}, random logits {simulated:.4f}")
print(f"the real gap is larger by more than two standard errors ({len(per_window)} windows)"
      if gap - simulated > 2 * stderr
      else "no measurable difference between the real and the simulated gap")
print(f"the character just read: logit {own_logit:+.2f} above the mean on average")
assert own_logit > 0

# %% [markdown]
# Four windows give only a rough standard error: read that verdict as a hint, not a test.
#
# One position's predicted distribution beside the uniform `1 / V`, the character just read in
# orange (its numbers under the plot). Training (lesson 3) moves the probability to the right
# characters.

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
others = probs[torch.arange(V) != just_read]
print(f"just read: {utils.visible_char(tokenizer.chars[just_read])!r}, p = {probs[just_read]:.3f}")
print(f"the others: {others.min():.3f} to {others.max():.3f}; uniform {1 / V:.3f}")

# %% [markdown]
# A useful check for any new model: a first training loss far above `ln V` means a broken
# initialisation (the starting weights: confidently wrong before learning anything).

# %% [markdown]
# ## Summary
#
# - Embeddings turn `(B, T)` ids into `(B, T, C)` vectors; positions give order.
# - Softmax turns scores into weights summing to 1; large scores saturate it.
# - One head: `softmax(q kᵀ / √d + mask) v`. Attention mixes positions; the MLP works on each
#   alone.
# - Dropout acts in training only. A pre-norm block: `x + attn(ln1(x))`, `x + mlp(ln2(x))`.
# - `LessonGPT` equals `utils.GPT`; untrained, its loss starts a little above `ln V`.

# %% [markdown]
# ## Exercises
#
# 1. **Remove the mask.** Call `F.scaled_dot_product_attention(q4, k4, v4)` without
#    `is_causal=True`: show that position 0's output now changes when the *last* position's
#    vector changes. Why would such a model reach a very low training loss, yet be useless for
#    generation?
# 2. **Untie the head.** How many parameters would GPT-0.5M have with its own output table? Build
#    it: `LessonGPT` without the tying line.
# 3. **A bigger model.** Predict with §8's formula the parameter count for `n_layer=6, n_embd=192,
#    mlp_hidden=384`; check it with `utils.build_model`.

# %% [markdown]
# ## Solutions
#
# Each solution is a code cell that runs with the lesson; in Jupyter its code starts collapsed
# (click to open it).
#
# **Solution 1.** Attention without the mask, before and after changing the last position:

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
# Without the mask, position `t` can read character `t + 1`, its own target: a model trained so
# could learn to copy it, and its training loss could fall towards 0. When generating, the next
# character does not exist yet: nothing to copy.
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
extra = n_untied - total
print(f"untied: {n_untied:,} parameters, {extra:,} more = {V} x {C}, {extra / total:.1%} more")
assert extra == V * C
gpt2_vocab, gpt2_width = 50_257, 768  # GPT-2 small
print(f"GPT-2 small, {gpt2_vocab:,} tokens x {gpt2_width}: tying saves {gpt2_vocab * gpt2_width:,}")

# %% [markdown]
# The separate head adds one `(vocab, C)` table: small here, with a few dozen characters; tens
# of millions of parameters in GPT-2 (both printed above).
#
# **Solution 3.** §8's formula for a bigger model, checked against `utils`:

# %% jupyter={"source_hidden": true}
big = dict(n_layer=6, n_embd=192, mlp_hidden=384)
C2, H2, L2 = big["n_embd"], big["mlp_hidden"], big["n_layer"]
per_block_2 = (4 * C2 * C2 + 4 * C2) + (2 * C2 * H2 + H2 + C2) + 2 * (2 * C2)
predicted = (V + config.block_size) * C2 + L2 * per_block_2 + 2 * C2
actual = utils.build_model(tokenizer, **big).num_parameters()
print(f"{predicted:,} predicted, {actual:,} actual: {actual / total:.1f}x GPT-0.5M")
assert predicted == actual
block_growth = L2 * per_block_2 / (L * per_block)
print(f"blocks grow {block_growth:.2f}x, embeddings {C2 / C:.2f}x")

# %% [markdown]
# Block parameters grow with `n_layer × C²`, the embeddings only with `C`. So the whole model
# grows less than its blocks (the ratios printed above).
