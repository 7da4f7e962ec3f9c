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
# # Lesson 4 — Generation
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/your-username/GPT-0.5M/blob/main/notebooks/04_generation.ipynb)
#
# **What you will learn:** how the probabilities the trained model gives for the next
# character become text: greedy decoding, temperature, top-k and top-p sampling; the KV cache
# that makes generation fast, written out by hand; and what happens with long, empty or unusual
# prompts.
#
# - **Reads:** the base checkpoint written by lesson 3 (if it is missing, a short stand-in is
#   trained first, which takes a few minutes on a CPU).
# - **Writes:** nothing.
# - **Runtime:** a few minutes on a CPU, most of it in the timings of §8.4 and
#   solution 3.

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
import math
import time
from contextlib import contextmanager

import matplotlib.pyplot as plt
import torch

# %% [markdown]
# ## 1. The trained model
#
# `utils.load_or_pretrain` loads the checkpoint of lesson 3. In quick mode (used by the tests)
# that model has trained for only a few dozen steps, so all the text below is gibberish; the
# mechanics are the same.

# %%
corpus = utils.load_corpus()
model, tokenizer, state = utils.load_or_pretrain(corpus, device)
block_size = model.config.block_size
print(f"loaded a model trained for {state['step']} steps; vocabulary {tokenizer.vocab_size}")

# %% [markdown]
# ## 2. From logits to probabilities
#
# Give the model a prompt. At every position it returns one score (**logit**) per vocabulary
# character; the scores at the **last** position are about the character that comes next.
# Softmax turns them into probabilities:
#
# $$p_i = \frac{e^{z_i}}{\sum_j e^{z_j}}$$

# %%
PROMPT = "alice looked at the "

ids = tokenizer.encode(PROMPT)
x = torch.tensor([ids], device=device)  # (1, T)
with torch.no_grad():
    logits, _ = model(x)  # (1, T, vocab)
last = logits[0, -1].cpu()  # (vocab,) scores for the character after the prompt
probs = torch.softmax(last, dim=-1)  # (vocab,)

print(f"prompt: {PROMPT!r}, logits: {tuple(logits.shape)}, last position: {tuple(last.shape)}")
top = torch.topk(probs, 10)
for prob, i in zip(top.values, top.indices, strict=True):
    bar = "█" * round(60 * prob.item())
    print(f"  {utils.visible_char(tokenizer.chars[i]):>2}  {prob:6.3f}  {bar}")

assert math.isclose(probs.sum().item(), 1.0, rel_tol=1e-5)
assert torch.allclose(probs, utils.next_token_probs(last))  # the same in utils

# %% [markdown]
# ## 3. Greedy decoding
#
# The simplest rule: always take the most likely character (`argmax`), append it, and run the
# model again on the longer text. Written out by hand:

# %%
n_new = 60
greedy_ids = tokenizer.encode(PROMPT)
n_prompt = len(greedy_ids)
for _ in range(n_new):
    context = torch.tensor([greedy_ids[-block_size:]], device=device)  # (1, T) last block
    with torch.no_grad():
        logits, _ = model(context)  # (1, T, vocab)
    greedy_ids.append(int(logits[0, -1].argmax()))
by_hand = tokenizer.decode(greedy_ids[n_prompt:])
print(PROMPT + by_hand)

# %% [markdown]
# `utils.generate` with `temperature=0.0` is greedy decoding (as long as the text fits in the
# context window, its context handling is the same as ours; §9 covers the rest):

# %%
from_utils = utils.generate(model, tokenizer, PROMPT, n_new, temperature=0.0)
print(f"identical: {by_hand == from_utils}")
assert by_hand == from_utils

# %% [markdown]
# Greedy is deterministic: the same prompt always gives the same text. It also tends to get
# stuck in loops, because once a phrase is the likeliest continuation of itself it repeats
# forever. To get variety, we **sample** from the distribution instead, after reshaping it.

# %% [markdown]
# ## 4. Temperature
#
# Divide the logits by a temperature $\tau$ (tau; we keep $T$ for the context length) before
# the softmax:
#
# $$p_i(\tau) = \frac{e^{z_i / \tau}}{\sum_j e^{z_j / \tau}}$$
#
# - $\tau < 1$ sharpens the distribution (safer, more repetitive text);
# - $\tau = 1$ leaves it as the model learned it;
# - $\tau > 1$ flattens it (more surprising, more mistakes);
# - $\tau \to 0$ becomes greedy, so `utils` treats `temperature=0` as greedy.

# %%
temperatures = [0.5, 1.0, 1.5]
by_temperature = {tau: torch.softmax(last / tau, dim=-1) for tau in temperatures}  # (vocab,)

for tau, dist in by_temperature.items():
    assert torch.allclose(dist, utils.next_token_probs(last, temperature=tau))
    entropy = -(dist * dist.clamp_min(1e-12).log2()).sum().item()  # spread, in bits
    print(f"τ={tau}: top probability {dist.max():.3f}, entropy {entropy:.2f} bits")

greedy_probs = utils.next_token_probs(last, temperature=0.0)
assert greedy_probs.argmax() == last.argmax() and greedy_probs.max() == 1.0  # τ=0: one-hot

# %% [markdown]
# The 15 likeliest next characters (ranked at $\tau=1$) under the three temperatures:

# %%
rank = torch.argsort(by_temperature[1.0], descending=True)[:15]
labels = [utils.visible_char(tokenizer.chars[i]) for i in rank]
width = 0.27

fig, ax = plt.subplots(figsize=(8, 3.5))
for j, tau in enumerate(temperatures):
    heights = by_temperature[tau][rank].numpy()
    ax.bar([i + (j - 1) * width for i in range(len(rank))], heights, width, label=f"τ = {tau}")
ax.set_xticks(range(len(rank)), labels)
ax.set(xlabel=f"next character after {PROMPT!r}", ylabel="probability")
ax.set_title("Temperature reshapes the next-character distribution")
ax.grid(axis="y", alpha=0.3)
ax.legend()
plt.show()

# %% [markdown]
# Low temperature piles the probability onto the favourites; high temperature spreads it
# towards characters the model thinks unlikely. The order never changes, only the gaps (the
# cell checks both on this prompt).

# %%
entropies = [-(d * d.clamp_min(1e-12).log()).sum().item() for d in by_temperature.values()]
assert entropies == sorted(entropies)  # higher τ, flatter distribution
assert all(torch.equal(d.argsort(descending=True)[:5], rank[:5]) for d in by_temperature.values())

# %% [markdown]
# ## 5. Top-k sampling
#
# Even at $\tau=1$, the many unlikely characters together carry some probability, and one bad
# pick can derail a word. **Top-k** keeps only the $k$ likeliest characters and renormalises.
# Step by step, with $k = 10$:

# %%
k = 10
kth_value = torch.topk(last, k).values[-1]  # the k-th largest logit
masked = last.masked_fill(last < kth_value, float("-inf"))  # (vocab,) the rest: -inf
probs_k = torch.softmax(masked, dim=-1)  # e^-inf = 0, so they get probability 0

kept = probs_k > 0
print(f"kept {kept.sum().item()} characters, which had {probs[kept].sum():.3f} of the probability")
assert torch.allclose(probs_k[kept], probs[kept] / probs[kept].sum())  # same ratios, rescaled
assert torch.allclose(probs_k, utils.next_token_probs(last, temperature=1.0, top_k=k))

# %% [markdown]
# (If several logits tie with the k-th one, all of them are kept, so "top-k" can keep a few
# more than k. With real-valued logits that almost never happens.)
#
# Top-k's weakness: $k$ is fixed. When the model is sure (after `"rabbit-h"` comes `o`),
# 10 candidates are 9 too many; when many characters are plausible, 10 may be too few.

# %% [markdown]
# ## 6. Top-p (nucleus) sampling
#
# **Top-p** keeps the *smallest* set of likeliest characters whose probabilities add up to at
# least $p$. Step by step, with $p = 0.9$:
#
# 1. sort the characters by probability, largest first;
# 2. add up the probabilities as you go down the list (cumulative sum);
# 3. keep a character if the mass **before** it is still below $p$ (so the character that
#    crosses $p$ is kept too);
# 4. put the keep/drop decisions back in vocabulary order, mask, softmax.

# %%
p = 0.9
sorted_logits, order = torch.sort(last, descending=True)  # 1. (vocab,), (vocab,)
sorted_probs = torch.softmax(sorted_logits, dim=-1)
cumulative = sorted_probs.cumsum(dim=-1)  # 2.
mass_before = cumulative - sorted_probs
keep_sorted = mass_before < p  # 3.
n_kept = keep_sorted.sum().item()

print("rank char   prob  cumulative  kept")
for r in range(min(len(order), n_kept + 2)):
    if 5 <= r < n_kept - 2:  # skip the middle of a long list
        if r == 5:
            print("   ⋮")
        continue
    kept_here = "yes" if keep_sorted[r] else "no"
    char = utils.visible_char(tokenizer.chars[order[r]])
    print(f"{r + 1:>4} {char:>4} {sorted_probs[r]:6.3f} {cumulative[r]:10.3f}  {kept_here}")

# %% [markdown]
# Step 4, and the check against `utils.next_token_probs`:

# %%
keep = torch.zeros_like(keep_sorted).scatter(0, order, keep_sorted)  # 4. back to vocab order
probs_p = torch.softmax(last.masked_fill(~keep, float("-inf")), dim=-1)  # (vocab,)

print(f"top-p {p}: kept {n_kept} characters")
assert probs[keep].sum() >= p  # the kept set covers at least p...
assert probs[keep].sum() - probs[keep].min() < p  # ...and dropping its last member would not
assert torch.allclose(probs_p, utils.next_token_probs(last, temperature=1.0, top_p=p))

# %% [markdown]
# The same cut as a picture: bars are the sorted probabilities (kept in colour), the line is the
# running total, the dashed line is $p$.

# %%
n_show = min(len(order), max(20, n_kept + 5))
fig, ax = plt.subplots(figsize=(8, 3.5))
colours = ["tab:blue" if keep_sorted[r] else "lightgray" for r in range(n_show)]
ax.bar(range(n_show), sorted_probs[:n_show].numpy(), color=colours, label="probability")
ax.plot(
    range(n_show), cumulative[:n_show].numpy(), color="tab:orange", marker=".", label="cumulative"
)
ax.axhline(p, color="tab:red", linestyle="--", linewidth=1, label=f"p = {p}")
ax.set_xticks(range(n_show), [utils.visible_char(tokenizer.chars[i]) for i in order[:n_show]])
ax.set(xlabel="next character, most likely first", ylabel="probability", ylim=(0, 1.05))
ax.set_title(f"Top-p keeps {n_kept} characters after {PROMPT!r}")
ax.legend(loc="center right")
plt.show()

# %% [markdown]
# Unlike top-k, the nucleus **adapts** to the model's confidence. Count how many characters
# each rule keeps after a few prompts: top-k always keeps 10, top-p keeps few characters where
# the model is sure of the next one and many where it is not. Whether *this* model is sure
# after `"down the rabbit-"` (the book continues `hole`) is for the table to say; the sentence
# under it is computed from the counts.


# %%
def last_logits(prompt: str) -> torch.Tensor:
    """Logits (vocab,) of the character after ``prompt``."""
    with torch.no_grad():
        out, _ = model(torch.tensor([tokenizer.encode(prompt)[-block_size:]], device=device))
    return out[0, -1].cpu()


print(f"{'prompt':<28} {'top-k 10':>9} {'top-p 0.9':>10} {'top char':>9} {'its prob':>9}")
nucleus = {}  # prompt -> characters top-p keeps
for prompt in ["down the rabbit-", "the mock tur", "alice looked at the ", "she said “"]:
    z = last_logits(prompt)
    n_k = (utils.next_token_probs(z, top_k=10) > 0).sum().item()
    nucleus[prompt] = (utils.next_token_probs(z, top_p=0.9) > 0).sum().item()
    top_prob, top_id = torch.softmax(z, -1).max(-1)
    top_char = utils.visible_char(tokenizer.chars[top_id])
    print(f"{prompt!r:<28} {n_k:>9} {nucleus[prompt]:>10} {top_char!r:>9} {top_prob:>9.3f}")

surest, least_sure = min(nucleus, key=nucleus.get), max(nucleus, key=nucleus.get)
print(f"\ntop-p kept the fewest characters ({nucleus[surest]}) after {surest!r} "
      f"and the most ({nucleus[least_sure]}) after {least_sure!r}.")
rabbit = nucleus["down the rabbit-"]
if rabbit < 10:
    print(f"after 'down the rabbit-' it kept {rabbit}, fewer than top-k's 10: this model is "
          "fairly sure what comes next.")  # fmt: skip
else:
    print(f"after 'down the rabbit-' it kept {rabbit}, no fewer than top-k's 10: this model is "
          "not sure what comes next.")  # fmt: skip

# %% [markdown]
# ## 7. Samples side by side
#
# The same prompt, four decoding rules, each with the same fixed `seed` so the run is
# reproducible. (Quick mode: gibberish. Your text may also differ from the committed notebook
# on other hardware, since tiny numerical differences can change a sampled character.)

# %%
SEED = 42
settings = {
    "greedy": dict(temperature=0.0),
    "temperature 0.8": dict(temperature=0.8),
    "top-k 10": dict(temperature=1.0, top_k=10),
    "top-p 0.9": dict(temperature=1.0, top_p=0.9),
}
n_sample = utils.by_mode(full=200, quick=60)
samples = {
    name: utils.generate(model, tokenizer, PROMPT, n_sample, seed=SEED, **kwargs)
    for name, kwargs in settings.items()
}
for name, text in samples.items():
    print(f"── {name} " + "─" * (60 - len(name)))
    print(PROMPT + text)
    print()

# %% [markdown]
# A seed makes sampling repeatable: the same seed gives the same text.

# %%
again = utils.generate(model, tokenizer, PROMPT, n_sample, seed=SEED, **settings["top-p 0.9"])
assert again == samples["top-p 0.9"]

# %% [markdown]
# ## 8. The KV cache
#
# ### 8.1 What is cached, and why it is allowed
#
# Without a cache, every new character reruns the model over the whole context: for a context of
# $T$ characters, $T$ positions are recomputed to get one new prediction.
#
# Look at what attention needs. Position $t$ builds a query and attends over the **keys** and
# **values** of positions $0..t$. Because attention is **causal**, the hidden state at position
# $i$, in every layer, depends only on characters $0..i$. So once computed, the keys and values
# of past positions **never change** when new characters are appended.
#
# The KV cache stores them: for each layer, a key tensor and a value tensor of shape
# `(batch, heads, positions, head size)`. Each new step feeds **only the newest character**,
# computes its query, key and value, appends the key and value to the cache, and attends over
# all of them.

# %%
cache = []  # utils.GPT fills this list in place: one (keys, values) pair per layer
x = torch.tensor([tokenizer.encode(PROMPT)], device=device)  # (1, T)
with torch.no_grad():
    logits, _ = model(x, cache=cache)  # (1, T, vocab)

keys, values = cache[0]
print(f"{len(cache)} layers; layer 0 keys {tuple(keys.shape)}, values {tuple(values.shape)}")
n_numbers = sum(layer_k.numel() + layer_v.numel() for layer_k, layer_v in cache)
kib = n_numbers * keys.element_size() / 1024
print(f"cache for {x.size(1)} characters: {n_numbers:,} numbers ({kib:.0f} KiB)")

# %% [markdown]
# Now feed one more character, alone, with the cache. It must give the same prediction as
# rerunning the model on the whole text:

# %%
next_id = int(logits[0, -1].argmax())
with torch.no_grad():
    step_logits, _ = model(torch.tensor([[next_id]], device=device), cache=cache)  # (1, 1, vocab)
    full_logits, _ = model(torch.cat([x, torch.tensor([[next_id]], device=device)], dim=1))

difference = (step_logits[0, -1] - full_logits[0, -1]).abs().max().item()
print(f"cache now holds {cache[0][0].size(2)} positions; max |difference| = {difference:.2e}")
assert difference < 1e-4

# %% [markdown]
# ### 8.2 Inside attention: concatenate, then mask with an offset
#
# What does one attention layer do with its cache? For `T` new characters after `P` cached ones:
#
# 1. compute queries, keys and values of the **new** characters only, `(B, heads, T, hs)`;
# 2. **concatenate** the cached keys and values in front: `(B, heads, P + T, hs)`;
# 3. attend: new character `i` sits at position `P + i`, so it may look at every cached position
#    and at new characters `0..i`. The causal mask is the usual lower triangle, **shifted right by
#    `P`**: `tril(ones(T, P + T), diagonal=P)`. With one new character (the usual generation
#    step) the mask allows everything, and with an empty cache it is the ordinary causal mask.
#
# The picture: the cache keeps the past keys and values; the new character's query attends to
# all of them. The right half shows what the window slide of §9 does to the cache.

# %%
CACHED, NEW = "#d9d9d9", "#a1d99b"


def draw_cell(ax, x, y, text, colour, hatch=None):
    ax.add_patch(plt.Rectangle((x - 0.45, y - 0.4), 0.9, 0.8, facecolor=colour,
                               edgecolor="black", hatch=hatch, lw=0.8))  # fmt: skip
    ax.text(x, y, text, ha="center", va="center", fontsize=8)


fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.2), gridspec_kw={"width_ratios": [1, 1.25]})
n_past = 6  # a few cached positions, for the drawing
for i in range(n_past + 1):
    colour = NEW if i == n_past else CACHED
    draw_cell(ax1, i, 1.6, f"k{i}", colour)
    draw_cell(ax1, i, 0.6, f"v{i}", colour)
    ax1.annotate("", xy=(i, 2.0), xytext=(n_past, 3.0),
                 arrowprops={"arrowstyle": "->", "color": "tab:green", "lw": 0.9})  # fmt: skip
draw_cell(ax1, n_past, 3.4, f"q{n_past}", NEW)
ax1.text(-0.8, 1.6, "keys", ha="right", va="center", fontsize=9)
ax1.text(-0.8, 0.6, "values", ha="right", va="center", fontsize=9)
ax1.text(n_past + 0.6, 3.4, "query of the\nnew character", ha="left", va="center", fontsize=8)
ax1.annotate("", xy=(-0.45, -0.1), xytext=(n_past - 0.55, -0.1),
             arrowprops={"arrowstyle": "<->", "lw": 0.8})  # fmt: skip
ax1.text((n_past - 1) / 2, -0.4, "cache: kept from earlier steps", ha="center", va="top",
         fontsize=8)  # fmt: skip
ax1.text(n_past, -0.4, "new:\nthis step", ha="center", va="top", fontsize=8)
ax1.set(xlim=(-2.2, n_past + 2.6), ylim=(-1.2, 4.0))
ax1.set_title("One step: append k, v; the new query attends to all keys", fontsize=10)

drawn_block = 8  # block_size in this drawing
n_drop = drawn_block + 1 - drawn_block // 2  # the newest block // 2 are kept, the new one too
for i in range(drawn_block + 1):
    draw_cell(ax2, i, 2.4, "new" if i == drawn_block else str(i),
              NEW if i == drawn_block else CACHED)  # fmt: skip
    dropped = i < n_drop
    draw_cell(ax2, i, 0.6, "" if dropped else str(i - n_drop), "white" if dropped else NEW,
              hatch="///" if dropped else None)  # fmt: skip
ax2.text(-0.8, 2.4, "full", ha="right", va="center", fontsize=9)
ax2.text(-0.8, 0.6, "after\nthe slide", ha="right", va="center", fontsize=9)
ax2.text(drawn_block + 0.6, 2.4, f"does not fit\n(block_size = {drawn_block}\nin this drawing)",
         ha="left", va="center", fontsize=8)  # fmt: skip
ax2.text((n_drop - 1) / 2, -0.1, "oldest characters dropped", ha="center", va="top", fontsize=8)
ax2.text((n_drop + drawn_block) / 2, -0.1, "newest half fed again in one call:\n"
         "positions 0, 1, ...; a new cache", ha="center", va="top", fontsize=8)  # fmt: skip
ax2.annotate("", xy=((n_drop + drawn_block) / 2, 1.05), xytext=((n_drop + drawn_block) / 2, 1.95),
             arrowprops={"arrowstyle": "->", "lw": 1})  # fmt: skip
ax2.set(xlim=(-2.2, drawn_block + 3.2), ylim=(-1.2, 3.2))
ax2.set_title("The window slide: drop the oldest half, rebuild the cache", fontsize=10)
for ax in (ax1, ax2):
    ax.set_aspect("equal")
    ax.axis("off")
plt.tight_layout()
plt.show()

# %% [markdown]
# The offset mask for `P = 3` cached and `T = 4` new characters (1 = may look):

# %%
print(torch.ones(4, 3 + 4, dtype=torch.int64).tril(diagonal=3))

# %% [markdown]
# Written out by hand for one attention layer, with the weights of `utils.CausalSelfAttention`
# (its `qkv` and `proj` layers):


# %%
def cached_attention(layer: utils.CausalSelfAttention, x: torch.Tensor, cache=None):
    """Causal self-attention of new positions ``x`` (B, T, C) after ``cache`` = (keys, values)."""
    B, T, C = x.shape
    n_head = layer.n_head
    q, k, v = layer.qkv(x).split(C, dim=2)  # 3 x (B, T, C)
    q, k, v = (t.view(B, T, n_head, C // n_head).transpose(1, 2) for t in (q, k, v))  # 1.
    if cache is not None:  # 2. the past in front of the new
        k = torch.cat([cache[0], k], dim=2)  # (B, nh, P + T, hs)
        v = torch.cat([cache[1], v], dim=2)  # (B, nh, P + T, hs)
    past = k.size(2) - T
    scores = q @ k.transpose(-2, -1) / math.sqrt(C // n_head)  # (B, nh, T, P + T)
    mask = torch.ones(T, past + T, dtype=torch.bool, device=x.device).tril(diagonal=past)
    weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)  # 3.
    y = (weights @ v).transpose(1, 2).reshape(B, T, C)  # (B, T, C): heads side by side
    return layer.proj(y), (k, v)  # eval mode: no dropout


# %% [markdown]
# Proof against `utils.CausalSelfAttention` in its three cases: a prompt with an empty cache,
# one new character, and several new characters at once (the offset mask). Each output must
# also equal a plain causal pass over the whole text.

# %%
layer = model.blocks[0].attn  # the first layer's attention, with its trained weights
x_all = torch.randn(1, 12, model.config.n_embd, generator=torch.Generator().manual_seed(0))
x_all = x_all.to(device)  # (1, 12, C): stands in for 12 normalised positions
with torch.no_grad():
    whole, _ = layer(x_all)  # no cache: 12 positions at once
    ours_cache, theirs_cache = None, None
    for lo, hi in ((0, 5), (5, 6), (6, 12)):  # 5 (empty cache), 1, then 6 new positions
        ours_out, ours_cache = cached_attention(layer, x_all[:, lo:hi], ours_cache)
        theirs_out, theirs_cache = layer(x_all[:, lo:hi], theirs_cache)
        gap_utils = (ours_out - theirs_out).abs().max().item()
        gap_whole = (ours_out - whole[:, lo:hi]).abs().max().item()
        print(f"positions {lo:>2}..{hi - 1:<2} after {lo:>2} cached: "
              f"|ours - utils| {gap_utils:.1e}, |ours - no cache| {gap_whole:.1e}")  # fmt: skip
        assert gap_utils < 1e-5 and gap_whole < 1e-5

# %% [markdown]
# ### 8.3 The same text with and without the cache
#
# `utils.generate(..., use_cache=True)` uses the cache; `use_cache=False` reruns the full
# context each step. We start from a prompt of the book that nearly fills the context window
# and generate more characters than still fit, so the window slides (§9), and check that
# both give **exactly** the same text, greedy and sampled.
# We also record what the model is fed on every call; §9 looks at that record.


# %%
@contextmanager
def record_calls(model: torch.nn.Module):
    """Record (new tokens fed, tokens already in the cache) for every forward call of ``model``."""
    calls = []

    def hook(module, args, kwargs):
        cache = kwargs.get("cache")
        calls.append((args[0].size(1), cache[0][0].size(2) if cache else 0))

    handle = model.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        yield calls
    finally:
        handle.remove()


# %% [markdown]
# Greedy decoding, with and without the cache:

# %%
opening = corpus.book.index("Alice was beginning")
FULL_PROMPT = corpus.book[opening : opening + block_size - 10]  # nearly fills the window
n_long = utils.by_mode(full=300, quick=30)  # more than the 10 characters that still fit
with record_calls(model) as cached_calls:
    with_cache = utils.generate(model, tokenizer, FULL_PROMPT, n_long, temperature=0.0)
with record_calls(model) as uncached_calls:
    without = utils.generate(model, tokenizer, FULL_PROMPT, n_long, temperature=0.0,
                             use_cache=False)  # fmt: skip

print(f"{len(with_cache)} characters each; identical: {with_cache == without}")
assert with_cache == without and len(with_cache) == n_long
assert len(FULL_PROMPT) + n_long > block_size  # the window did slide

# %% [markdown]
# Seeded sampling: the same seed draws the same random numbers, and the logits agree to within
# rounding error (§8.1 and §8.2), so the same characters are picked.

# %%
sampling = dict(temperature=1.0, top_p=0.9, seed=7)
sampled_cached = utils.generate(model, tokenizer, FULL_PROMPT, n_long, use_cache=True, **sampling)
sampled_plain = utils.generate(model, tokenizer, FULL_PROMPT, n_long, use_cache=False, **sampling)
print(f"identical: {sampled_cached == sampled_plain}")
assert sampled_cached == sampled_plain

# %% [markdown]
# ### 8.4 How much faster?
#
# Time 500 new characters both ways with `time.perf_counter` (one short warm-up run first, so
# one-off start-up costs are not counted). This is a measurement: it varies from run to run
# and machine to machine, and quick mode generates fewer characters.

# %%
n_timed = utils.by_mode(full=500, quick=50)
utils.generate(model, tokenizer, PROMPT, 20, temperature=0.0)  # warm-up

speed = {}
for use_cache in (True, False):
    start = time.perf_counter()
    utils.generate(model, tokenizer, PROMPT, n_timed, temperature=0.0, use_cache=use_cache)
    speed[use_cache] = n_timed / (time.perf_counter() - start)

print(f"with cache:    {speed[True]:8.1f} characters/s")
print(f"without cache: {speed[False]:8.1f} characters/s")
print(f"speed-up:      {speed[True] / speed[False]:8.2f}x  ({n_timed} characters on {device})")

# %% [markdown]
# What limits the speed-up: this model is tiny and its context is short (`block_size`
# characters), so a good part of every step is fixed overhead (Python, launching many small
# operations) that the cache does not remove, and the cache is rebuilt every `block_size / 2`
# steps (§9). The saving grows with the context length: the cache turns up to $T$
# positions of work per step into 1 (exercise 3 measures a longer context).

# %% [markdown]
# ## 9. The context window
#
# ### 9.1 The policy
#
# The model has position embeddings for `block_size` positions only, so it can never look at
# more than `block_size` characters at once. `utils.generate_ids` handles this with one policy,
# used **both** with and without the cache:
#
# - a prompt longer than `block_size` is cropped to its **last** `block_size` characters;
# - when the context is full, the **oldest half** is dropped. With the cache, the cache is then
#   **rebuilt** from the remaining half in one call.
#
# Why not just drop the single oldest character each step? Positions are absolute: a cached key
# was computed with its position embedding ("I am position 100"). Sliding by one would shift
# every position, making every cached key stale and forcing a full rebuild on *every* step
# (which is what the no-cache path pays anyway). Dropping half at once pays for a rebuild only
# every `block_size / 2` steps.
#
# The loop, written out for greedy decoding with the cache (the picture in §8.2 shows
# the slide):


# %%
@torch.no_grad()
def greedy_with_cache(model: utils.GPT, ids: list[int], n_new: int) -> list[int]:
    """Greedy continuation of ``ids`` with the KV cache, keeping the context inside the block."""
    block = model.config.block_size
    tokens = list(ids)
    start = max(0, len(tokens) - block)  # a long prompt keeps its last block_size tokens
    cache, fed = [], start  # tokens[start:fed] are already in the cache
    for _ in range(n_new):
        if len(tokens) - start > block:  # the window is full: keep its newest half
            start = fed = len(tokens) - block // 2
            cache = []  # ...and rebuild the cache from it in the next call
        context = torch.tensor([tokens[fed:]], device=device)  # only what the cache lacks
        logits, _ = model(context, cache=cache)  # (1, new, vocab); the cache grows in place
        fed = len(tokens)
        tokens.append(int(logits[0, -1].argmax()))
    return tokens[len(ids) :]


start_ids = tokenizer.encode(FULL_PROMPT)  # nearly fills the window (§8.3)
ours_ids = greedy_with_cache(model, start_ids, n_long)
theirs_ids = utils.generate_ids(model, start_ids, n_long, temperature=0.0, use_cache=True)
print(f"{n_long} characters, window slides: {len(start_ids) + n_long > block_size}; "
      f"identical to utils.generate_ids: {ours_ids == theirs_ids}")  # fmt: skip
assert ours_ids == theirs_ids and len(start_ids) + n_long > block_size

# %% [markdown]
# The record from §8.3 shows the policy at work. Top: how many characters the model
# sees at each step (the same sawtooth with and without the cache). Bottom: how many
# characters are actually fed in each call with the cache: the prompt first, then 1, except at a
# rebuild.

# %%
seen_plain = [fed for fed, past in uncached_calls]  # no cache: fed = whole context
seen_cached = [fed + past for fed, past in cached_calls]  # cache: old positions + new ones
assert seen_plain == seen_cached  # the same policy, so the same contexts and the same text
assert max(seen_plain) <= block_size
assert all(fed in (1, block_size // 2) for fed, _ in cached_calls[1:])  # 1, or a rebuild

fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(8, 4.5), sharex=True)
ax1.plot(seen_plain, label="without cache")
ax1.plot(seen_cached, linestyle="--", label="with cache")
ax1.axhline(block_size, color="gray", linestyle=":", linewidth=1)
ax1.set(ylabel="context length", title="Characters the model sees per generated character")
ax1.legend(loc="lower right")
ax2.bar(range(len(cached_calls)), [fed for fed, _ in cached_calls], color="tab:green")
ax2.set(xlabel="generation step", ylabel="fed (cache)")
for ax in (ax1, ax2):
    ax.grid(alpha=0.3)
plt.tight_layout()
plt.show()

# %% [markdown]
# Both runs see identical contexts at every step, and the model is deterministic in `eval()`
# mode: that is why the texts of §8.3 are identical.
#
# ### 9.2 A prompt longer than the context
#
# A prompt of `block_size + 100` characters of the book does not fit. That works: the model uses
# the last `block_size` of them, so it writes exactly what it writes after those alone.

# %%
begin = corpus.book.index("Alice was beginning")
long_prompt = corpus.book[begin : begin + block_size + 100]
tail = long_prompt[-block_size:]

n_after = utils.by_mode(full=100, quick=40)
after_long = utils.generate(model, tokenizer, long_prompt, n_after, temperature=0.0)
after_tail = utils.generate(model, tokenizer, tail, n_after, temperature=0.0)
print(f"prompt of {len(long_prompt)} characters, the model sees the last {len(tail)}:")
print(f"...{tail!r}")
print(f"continuation: {after_long!r}")
assert after_long == after_tail

# %% [markdown]
# ### 9.3 An empty prompt
#
# An empty prompt has nothing to predict from, so `utils.generate` starts from a newline, as
# at the start of a paragraph:

# %%
n_empty = utils.by_mode(full=150, quick=40)
from_nothing = utils.generate(model, tokenizer, "", n_empty, temperature=0.8, seed=0)
print(repr(from_nothing))
assert from_nothing == utils.generate(model, tokenizer, "\n", n_empty, temperature=0.8, seed=0)

# %% [markdown]
# ### 9.4 Characters the model has never seen
#
# The model has one embedding per vocabulary character and nothing else. Upper case is fine,
# because the tokenizer lower-cases its input, but `&` and digits other than the few in the
# book have no embedding. Rather than silently mapping them to some other character, the
# tokenizer raises a `ValueError` that names them:

# %%
try:
    utils.generate(model, tokenizer, "Alice & the 7 dwarves", 50)
except ValueError as error:
    print(f"ValueError: {error}")
else:
    raise AssertionError("expected a ValueError for '&' and '7'")

# %% [markdown]
# Keyboard characters that *do* have a counterpart in the book are not errors: the tokenizer
# normalises a typed `'` to the book's `’` (lesson 1, §4.5), so both spellings are one prompt.

# %%
assert tokenizer.encode("alice's") == tokenizer.encode("alice’s")
print("alice's and alice’s both encode to", tokenizer.encode("alice's"))

# %% [markdown]
# ## 10. Stop strings
#
# Often we want text up to some marker, not a fixed number of characters: one paragraph, or
# (in lesson 5) one answer ending in `<end>`. With `stop="\n\n"`, generation stops as soon as the
# new text ends with a blank line, and the result is cut just before it.

# %%
n_max = utils.by_mode(full=500, quick=60)
paragraph = utils.generate(model, tokenizer, PROMPT, n_max, temperature=0.8, seed=1, stop="\n\n")
print(f"{len(paragraph)} characters:")
print(PROMPT + paragraph)
assert "\n\n" not in paragraph

# %% [markdown]
# It is the same text as without the stop string, only cut at the first blank line (in quick
# mode the model may never write one; then nothing is cut).

# %%
unstopped = utils.generate(model, tokenizer, PROMPT, n_max, temperature=0.8, seed=1)
cut = unstopped.find("\n\n")
assert paragraph == (unstopped[:cut] if cut >= 0 else unstopped)
print("stopped at character", cut if cut >= 0 else f"— (no blank line in {n_max} characters)")

# %% [markdown]
# ## Summary
#
# - The model's last-position logits, through a softmax, give the next-character distribution;
#   generation repeats "predict, pick, append".
# - Greedy takes the argmax (deterministic, loops easily). Temperature sharpens or flattens the
#   distribution; top-k keeps a fixed number of candidates; top-p keeps the smallest set that
#   covers probability $p$, so it adapts to the model's confidence.
# - The KV cache stores each layer's keys and values; causal attention guarantees they never
#   change, so feeding one character per step gives the same text, faster. Inside attention the
#   cached keys and values are concatenated in front of the new ones, and several new
#   characters at once need the causal mask shifted right by the cache length.
# - The context policy (crop long prompts, drop the oldest half when full) is shared by the
#   cached and uncached paths, which is why they agree exactly.
# - Empty prompts start from a newline; unknown characters raise a clear `ValueError`; `stop`
#   ends generation at a marker.
#
# ## Exercises
#
# 1. **Combine the filters.** `utils.next_token_probs(last, temperature=0.8, top_k=20, top_p=0.9)`
#    applies temperature, then top-k, then top-p. How many characters survive? Derive the result
#    by hand from §4–§6 and check it.
# 2. **Temperature and variety.** Generate 300 characters at temperatures 0.2, 0.5, 0.8, 1.0,
#    1.5 (same seed) and measure the share of distinct words among all words. Plot it against
#    temperature.
# 3. **Where the cache pays off.** Build an untrained model with twice the context,
#    `utils.build_model(tokenizer, block_size=2 * block_size)`, and time a few hundred characters
#    with and without the cache. How does the speed-up compare with §8.4?

# %% [markdown]
# ## Solutions
#
# Each solution is a code cell that runs with the lesson (the tests execute it too, with fewer
# characters). In Jupyter its code starts collapsed: click the cell to open it.
#
# **Solution 1.** The three filters by hand, in the order `utils` applies them:

# %% jupyter={"source_hidden": true}
z = last / 0.8  # temperature first
kth = torch.topk(z, 20).values[-1]
z = z.masked_fill(z < kth, float("-inf"))  # then top-k
sorted_z, order_z = torch.sort(z, descending=True)
sorted_p = sorted_z.softmax(-1)
keep_sorted_z = sorted_p.cumsum(-1) - sorted_p < 0.9  # then top-p, on what top-k left
keep_z = torch.zeros_like(keep_sorted_z).scatter(0, order_z, keep_sorted_z)
combined_by_hand = z.masked_fill(~keep_z, float("-inf")).softmax(-1)
combined = utils.next_token_probs(last, temperature=0.8, top_k=20, top_p=0.9)
assert torch.allclose(combined_by_hand, combined)
n_survive = (combined > 0).sum().item()
print(f"kept: {n_survive} characters (top-k alone keeps 20)")
assert n_survive <= 20

# %% [markdown]
# Top-p works on the distribution *after* top-k has renormalised it, so the nucleus is taken
# among the 20 survivors: at most 20 characters survive (the count is printed above).
#
# **Solution 2.** The share of distinct words at five temperatures, same seed:

# %% jupyter={"source_hidden": true}
taus = [0.2, 0.5, 0.8, 1.0, 1.5]
n_variety = utils.by_mode(full=300, quick=40)
variety = []
for tau in taus:
    words = utils.generate(model, tokenizer, PROMPT, n_variety, temperature=tau, seed=0).split()
    variety.append(len(set(words)) / max(1, len(words)))
fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(taus, variety, marker="o")
ax.set(xlabel="temperature τ", ylabel="distinct words / words", title="Temperature and variety")
ax.grid(alpha=0.3)
plt.tight_layout()
plt.show()
print(", ".join(f"τ={tau}: {share:.2f}" for tau, share in zip(taus, variety, strict=True)))
trend = "more" if variety[-1] > variety[0] else "not more"
print(f"lowest τ {variety[0]:.2f} vs highest τ {variety[-1]:.2f}: "
      f"{trend} variety at high temperature")  # fmt: skip

# %% [markdown]
# Low temperatures tend to repeat the same few words (close to greedy loops), and the share of
# distinct words tends to rise with temperature; at high temperature many of those "words" are
# misspelt inventions. The printed line says whether this run followed the trend (a short
# sample, and in quick mode an untrained model, can break it).
#
# **Solution 3.** An untrained model with twice the context, timed both ways:

# %% jupyter={"source_hidden": true}
wide = utils.build_model(tokenizer, block_size=2 * block_size).to(device).eval()
n_wide = utils.by_mode(full=400, quick=30)
wide_speed = {}
utils.generate(wide, tokenizer, PROMPT, 10, temperature=0.0)  # warm-up
for use_cache in (True, False):
    start = time.perf_counter()
    utils.generate(wide, tokenizer, PROMPT, n_wide, temperature=0.0, use_cache=use_cache)
    wide_speed[use_cache] = n_wide / (time.perf_counter() - start)
wide_ratio, ratio = wide_speed[True] / wide_speed[False], speed[True] / speed[False]
print(f"context {wide.config.block_size}: {wide_speed[True]:.0f} vs {wide_speed[False]:.0f} "
      f"characters/s, speed-up {wide_ratio:.2f}x")  # fmt: skip
print(f"context {block_size} (§8.4): speed-up {ratio:.2f}x")
print(f"the longer context gained {'more' if wide_ratio > ratio else 'no more'} from the cache"
      f" in this run ({n_wide} characters from a {len(PROMPT)}-character prompt)")

# %% [markdown]
# Without the cache, each step processes the whole context, which can now grow twice as long;
# with the cache each step still processes one position (plus a rebuild every
# `block_size / 2` steps). So the speed-up should grow with the context, the more so once the
# text is long enough to fill it; the printed lines show what this run measured (timings vary
# from run to run). The weights are random, so the text is nonsense, but the timing is what we
# want.
