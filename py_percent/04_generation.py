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
# **What you will learn:** how the trained model's next-character probabilities become text
# (greedy, temperature, top-k, top-p); the KV cache, written out by hand, and how much faster it
# generates; long, empty and unusual prompts; and what the trained attention heads look at.
#
# - **Reads:** lesson 3's checkpoint, else the released weights, else a short stand-in it trains.
# - **Writes:** nothing, unless it trains a stand-in (`base_short.pt` beside the checkpoint).
# - **Runtime:** no training when lesson 3's checkpoint or the released weights are there.

# %% [markdown]
# ## 0. Setup
# This first cell makes the shared module `utils.py` importable (in Colab it clones the
# repository first) and prints the device and whether quick mode (a shortened run, for the
# tests; see the README) is on.

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
# The other imports of this lesson.

# %%
import math
import statistics
import time
from contextlib import contextmanager
from itertools import pairwise

import matplotlib.pyplot as plt
import torch

# %% [markdown]
# ## 1. The trained model
#
# `utils.load_or_pretrain` loads lesson 3's checkpoint (else the released weights). If lesson 3
# ran in quick mode, its model has trained two dozen steps; a stand-in a few hundred (20 in quick
# mode): their text is poor, but the mechanics are the same.

# %%
corpus = utils.load_corpus()
model, tokenizer, state = utils.load_or_pretrain(corpus, device)
block_size = model.config.block_size
print(f"loaded a model trained for {state['step']} steps; vocabulary {tokenizer.vocab_size}")

# %% [markdown]
# ## 2. From logits to probabilities
#
# At every position the model returns one score (**logit**) per vocabulary character; those at the
# **last** position are about the next character. The softmax of lesson 2 §3.1, $p_i = e^{z_i} /
# \sum_j e^{z_j}$, turns them into probabilities.

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
# The simplest rule: take the most likely character (`argmax`), append it, run the model again
# on the longer text. By hand:

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
# `utils.generate` with `temperature=0.0` (temperature: §4; 0 means the argmax) is greedy
# decoding. While the text fits in the context window the model sees the same context as in
# ours (with the cache it is fed only the newest character, §8; §9 covers the rest):

# %%
from_utils = utils.generate(model, tokenizer, PROMPT, n_new, temperature=0.0)
print(f"identical: {by_hand == from_utils}")
assert by_hand == from_utils

# %% [markdown]
# Greedy is deterministic: one prompt, one text. It also tends to repeat itself (§7 shows it):
# once a phrase is the likeliest continuation of itself, it comes back again and again. For
# variety we **sample** from the distribution, after reshaping it.

# %% [markdown]
# ## 4. Temperature
#
# Divide the logits by a temperature $\tau$ (tau; $T$ is the context length here, as in lesson
# 2; §8.2 reuses it) before the softmax:
#
# $$p_i(\tau) = \frac{e^{z_i / \tau}}{\sum_j e^{z_j / \tau}}$$

# %% [markdown]
# - $\tau < 1$ sharpens the distribution (safer, more repetitive text);
# - $\tau = 1$ leaves it as the model learned it;
# - $\tau > 1$ flattens it (more surprising, more mistakes);
# - $\tau \to 0$ is greedy, so `utils` treats `temperature=0` as greedy.
#
# The **entropy** $-\sum_i p_i \log_2 p_i$ measures the spread in bits: 0 when one character is
# certain, $\log_2 V$ when all $V$ (51, the vocabulary) are equally likely.

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
# Low temperature piles the probability onto the favourites; high temperature spreads it out.
# The order stays, only the gaps change (the next cell checks the order of the top five; its
# entropy uses the natural log, nats, which keeps the same order as bits).

# %%
entropies = [-(d * d.clamp_min(1e-12).log()).sum().item() for d in by_temperature.values()]
assert entropies == sorted(entropies)  # higher τ, flatter distribution
assert all(torch.equal(d.argsort(descending=True)[:5], rank[:5]) for d in by_temperature.values())

# %% [markdown]
# ## 5. Top-k sampling
#
# Even at $\tau=1$ the many unlikely characters together carry some probability, and one bad pick
# can derail a word. **Top-k** keeps the $k$ likeliest characters and renormalises. With $k = 10$:

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
# - Logits that tie with the k-th are all kept, so top-k can keep a few more than $k$.
# - Its weakness: $k$ is fixed. Where one character is almost certain, 10 candidates are 9 too
#   many; where many are plausible, 10 may be too few.

# %% [markdown]
# ## 6. Top-p (nucleus) sampling
#
# **Top-p** keeps the *smallest* set of likeliest characters whose probabilities add up to at
# least $p$. With $p = 0.9$:

# %% [markdown]
# 1. sort the characters by probability, largest first;
# 2. add up the probabilities down the list (cumulative sum);
# 3. keep a character if the mass **before** it is below $p$ (so the one that crosses $p$ is kept
#    too);
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
# Top-p **adapts** to the model's confidence: few characters where it is sure, many where it is
# not. The table counts what each rule keeps after a few prompts (the book continues `"down the
# rabbit-"` with `hole`); the sentences under it are computed from the counts. The last line
# sets the model's `h` beside how often `h` follows any hyphen in the training text.


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
print(f"\ntop-p kept the fewest ({nucleus[surest]}) after {surest!r}", end="")
print(f" and the most ({nucleus[least_sure]}) after {least_sure!r}.")
rabbit = nucleus["down the rabbit-"]
more = "fewer than" if rabbit < 10 else "more than" if rabbit > 10 else "as many as"
print(f"after 'down the rabbit-' it kept {rabbit}, {more} top-k's 10.")
probs = torch.softmax(last_logits("down the rabbit-"), -1)
p_h = probs[tokenizer.stoi["h"]].item()
h_rank = int((probs > p_h).sum()) + 1
text = corpus.train_text.lower()
after_hyphen = [b for a, b in pairwise(text) if a == "-"]
count = after_hyphen.count("h") / len(after_hyphen)
bar = 2 * utils.share_stderr(count, len(after_hyphen))  # two standard errors of the share
verdict = ("higher: it knows more than hyphens" if p_h > count + bar else
           "lower" if p_h < count - bar else "no measurable difference")
print(f"the book's 'h' (of 'hole') gets {p_h:.3f} (rank {h_rank}); 'h' follows "
      f"{count:.3f} of the training text's {len(after_hyphen)} hyphens (±{bar:.3f}): {verdict}.")

# %% [markdown]
# ## 7. Samples side by side
#
# One prompt, four decoding rules, one fixed `seed`. On other hardware the text may differ from
# the committed notebook: a tiny numerical difference can change a sampled character.

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
# Without a cache, every new character reruns the model over the whole context: $T$ positions
# recomputed for one prediction.
#
# - Position $t$ attends over the **keys** and **values** of positions $0..t$.
# - Attention is **causal**: position $i$, in every layer, depends on characters $0..i$ only.
# - So past keys and values **never change** when characters are appended.

# %% [markdown]
# The **KV cache** keeps them: per layer, keys and values of shape
# `(batch, heads, positions, head size)`. Each step feeds **only the newest character**, appends
# its key and value, and attends over all of them.

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
# Now one more character, fed alone with the cache. It must predict what a rerun on the whole
# text predicts:

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
# The new character's query attends to all cached keys (left). The right half shows what §9's
# window slide does to the cache.

# %%
from IPython.display import Image

Image(filename=str(utils.REPO_ROOT / "notebooks/figures/kv_cache.png"))

# %% [markdown]
# Here `T` counts the new characters only. For `T` new characters after `P` cached ones, one
# attention layer:
#
# 1. computes queries, keys and values of the **new** characters only, `(B, heads, T, hs)`;
# 2. **concatenates** the cached keys and values in front: `(B, heads, P + T, hs)`;
# 3. attends: new character `i` sits at position `P + i`, so it may look at every cached position
#    and at new characters `0..i`.

# %% [markdown]
# So the causal mask is the usual lower triangle **shifted right by `P`**:
# `tril(ones(T, P + T), diagonal=P)`. One new character (the usual step) may look at
# everything; with an empty cache it is the ordinary causal mask.

# %% [markdown]
# The offset mask for `P = 3` cached and `T = 4` new characters (1 = may look):

# %%
print(torch.ones(4, 3 + 4, dtype=torch.int64).tril(diagonal=3))

# %% [markdown]
# By hand for one attention layer, with the `qkv` and `proj` weights of a
# `utils.CausalSelfAttention`:


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
# Proof against `utils.CausalSelfAttention` in three cases: a prompt (empty cache), one new
# character, several at once (the offset mask). Each must also equal one causal pass over all.

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
        where = f"positions {lo:>2}..{hi - 1:<2} after {lo:>2} cached"
        print(f"{where}: |ours - utils| {gap_utils:.1e}, |ours - no cache| {gap_whole:.1e}")
        assert gap_utils < 1e-5 and gap_whole < 1e-5

# %% [markdown]
# ### 8.3 The same text with and without the cache
#
# `use_cache=False` reruns the whole context each step. From a book prompt that nearly fills the
# window we generate more than fits, so the window slides (§9). Both ways must give **exactly**
# the same text.


# %% [markdown]
# A recorder of what the model is fed on every call (§9 uses the record):

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
    greedy = dict(temperature=0.0)
    without = utils.generate(model, tokenizer, FULL_PROMPT, n_long, **greedy, use_cache=False)

print(f"{len(with_cache)} characters each; identical: {with_cache == without}")
assert with_cache == without and len(with_cache) == n_long
assert len(FULL_PROMPT) + n_long > block_size  # the window did slide

# %% [markdown]
# Seeded sampling: the same seed draws the same random numbers, and the logits agree to within
# rounding error (§8.1); a tiny difference could still flip a draw (§7), so we check that the same
# characters are picked.

# %%
sampling = dict(temperature=1.0, top_p=0.9, seed=7)
sampled_cached = utils.generate(model, tokenizer, FULL_PROMPT, n_long, use_cache=True, **sampling)
sampled_plain = utils.generate(model, tokenizer, FULL_PROMPT, n_long, use_cache=False, **sampling)
print(f"identical: {sampled_cached == sampled_plain}")
assert sampled_cached == sampled_plain

# %% [markdown]
# ### 8.4 How much faster?
#
# 500 new characters both ways (quick mode: fewer), after a short warm-up run (with the cache)
# that absorbs one-off start-up costs, in three rounds (quick mode: one) that alternate the
# order. The range over rounds shows how much the timing varies. The speed-up is the median of
# the rounds' ratios, not the ratio of the two medians.

# %%
def timed_speeds(net: utils.GPT, n_new: int, rounds: int) -> dict[bool, list[float]]:
    """Characters/s of greedy generation with and without the cache, one entry per round."""
    utils.generate(net, tokenizer, PROMPT, 20, temperature=0.0)  # warm-up
    speeds = {True: [], False: []}
    for r in range(rounds):
        for use_cache in (True, False) if r % 2 == 0 else (False, True):
            start = time.perf_counter()
            utils.generate(net, tokenizer, PROMPT, n_new, temperature=0.0, use_cache=use_cache)
            speeds[use_cache].append(n_new / (time.perf_counter() - start))
    return speeds


n_timed, n_rounds = utils.by_mode(full=500, quick=50), utils.by_mode(full=3, quick=1)
speeds = timed_speeds(model, n_timed, n_rounds)
speed = {k: statistics.median(v) for k, v in speeds.items()}
ratios = [a / b for a, b in zip(speeds[True], speeds[False], strict=True)]
print(f"with cache:    {speed[True]:8.1f} characters/s (median of {n_rounds} rounds)")
print(f"without cache: {speed[False]:8.1f} characters/s")
print(f"speed-up:      {statistics.median(ratios):8.2f}x (median of the rounds' ratios), rounds "
      f"{min(ratios):.2f}x to {max(ratios):.2f}x  ({n_timed} characters on {device})")

# %% [markdown]
# Why not more? The cache turns up to a whole context's positions of work per step into 1, but:
#
# - the model is tiny, so fixed costs per call (Python, many small operations) remain: a
#   one-character call is far from 256 times cheaper than a whole-context one;
# - the cache is also rebuilt about every `block_size / 2` steps (§9), a small cost here.
#
# The ratio also depends on the machine and run: lesson 7 §4 shows the benchmark's. Exercise 3
# measures a longer context.

# %% [markdown]
# ## 9. The context window
#
# ### 9.1 The policy
#
# The model has position embeddings for `block_size` positions only. `utils.generate_ids` has one
# policy, **both** with and without the cache:
#
# - a prompt longer than `block_size` is cropped to its **last** `block_size` characters;
# - a full context drops its **oldest half**; the cache is then **rebuilt** from the rest.

# %% [markdown]
# Why not drop just the oldest character each step? Positions are absolute: a cached key holds its
# position embedding ("I am position 100"). Sliding by one shifts every position and would rebuild
# the whole cache every step; dropping half rebuilds it about once every `block_size / 2` steps.

# %% [markdown]
# The loop, by hand, for greedy decoding with the cache (§8.2's picture shows the slide):


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
slides = len(start_ids) + n_long > block_size
print(f"{n_long} characters, window slides: {slides}; identical: {ours_ids == theirs_ids}")
assert ours_ids == theirs_ids and len(start_ids) + n_long > block_size

# %% [markdown]
# The record from §8.3 shows the policy. Top: the characters the model sees at each step (the same
# sawtooth with and without the cache). Bottom: the characters fed in each call with the cache:
# the prompt, then 1, except at a rebuild.

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
# Both runs start from the same prompt and keep contexts of the same length (the assert). At each
# step their logits differ only by rounding (§8.1), too little to change a greedy choice here, so
# both add the same character and again hold the same text: hence the identical texts of §8.3.

# %% [markdown]
# ### 9.2 A prompt longer than the context
#
# A book prompt of `block_size + 100` characters does not fit. The model uses its last
# `block_size` characters, so it writes exactly what it writes after those alone.

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
# The model has one embedding per vocabulary character. Capitals are fine (the tokenizer
# lower-cases), but `&` and most digits have none, so the tokenizer raises a `ValueError` that
# names them:

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
# Often we want text up to a marker: one paragraph, or (lesson 5) an answer ending in `<end>`.
# With `stop="\n\n"`, generation stops once the new text ends with a blank line, and the result is
# cut just before it.

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
# ## 11. Inside the trained model: what the heads look at
#
# Lesson 2 drew the heads of an untrained model. Now the trained ones, on a line of the book.
# `utils.attention_maps(model, idx)` returns every layer's attention weights, `(B, n_head, T, T)`.

# %%
LINE = "“Then it doesn’t matter which way you go,” said the Cat."
assert LINE in corpus.book
line_ids = torch.tensor([tokenizer.encode(LINE)], device=device)  # (1, T)
model.eval()
maps = [weights[0].cpu() for weights in utils.attention_maps(model, line_ids)]  # (nh, T, T) each
text = tokenizer.decode(line_ids[0].tolist())  # the line as the model reads it: lower-cased
print(f"{text!r}: {len(text)} characters")
print(f"{len(maps)} layers of {tuple(maps[0].shape)}: (heads, looking t, looked at s)")
assert all(torch.allclose(w.sum(-1), torch.ones(w.shape[:2])) for w in maps)  # rows sum to 1

# %% [markdown]
# One panel per head: row `t` is the character looking, column `s` the one looked at. (A test
# checks that these match the weights the forward pass uses, to rounding.)


# %%
def show_heads(layer: int) -> None:
    """Heat maps of every head of one layer on ``text``, its characters on both axes."""
    ticks = [utils.visible_char(ch) for ch in text]
    n_head = maps[layer].size(0)
    rows = math.ceil(n_head / 2)
    _, axes = plt.subplots(rows, 2, figsize=(10, 5 * rows), squeeze=False)
    for h, ax in zip(range(n_head), axes.flat, strict=False):
        ax.imshow(maps[layer][h], cmap="viridis", vmin=0, vmax=1)
        ax.set_xticks(range(len(text)), ticks, fontsize=6)
        ax.set_yticks(range(len(text)), ticks, fontsize=6)
        ax.set(title=f"layer {layer} head {h}", xlabel="looked at (s)", ylabel="looking (t)")
    plt.tight_layout()
    plt.show()


show_heads(0)

# %% [markdown]
# The last layer:

# %%
show_heads(len(maps) - 1)

# %% [markdown]
# What does a head do? Three patterns, each naming for a looking position `t` one position `s` it
# might look at:
#
# - **previous character**: `s = t - 1`;
# - **word start**: the first character of the current word (after the last space before `t`);
# - **opening quote**: the `“` of the quote that `t` is inside (on this line position 0, so
#   it cannot be told from a head that looks at the first character).

# %% [markdown]
# A head's **share** for a pattern is its average weight on that `s`, over the rows where the
# pattern applies. The last two count only when `s ≤ t - 2`, to differ from the previous
# character. The **uniform** baseline spreads each row evenly: `1 / (t + 1)`.

# %%
pairs = {"previous character": [], "word start": [], "opening quote": []}  # (t, s) each
for t in range(1, len(text)):
    pairs["previous character"].append((t, t - 1))
    word_start = text.rfind(" ", 0, t) + 1
    if word_start <= t - 2:
        pairs["word start"].append((t, word_start))
    opening = text.rfind("“", 0, t)
    if opening > text.rfind("”", 0, t) and opening <= t - 2:
        pairs["opening quote"].append((t, opening))



def mean_weight(weights: torch.Tensor, ts: list[tuple[int, int]]) -> float:
    """Average of weights[t, s] over the (t, s) pairs: a head's share for one pattern."""
    return sum(weights[t, s].item() for t, s in ts) / len(ts)


T_line = len(text)
even = torch.ones(T_line, T_line).tril() / torch.arange(1, T_line + 1)[:, None]  # 1 / (t + 1)
uniform = {name: mean_weight(even, ts) for name, ts in pairs.items()}
share = {}  # (layer, head) -> {pattern: share}
for layer in range(len(maps)):  # every layer, every head
    for h in range(maps[layer].size(0)):
        share[layer, h] = {name: mean_weight(maps[layer][h], ts) for name, ts in pairs.items()}
print(f"{'':14}" + "".join(f"{name:>20}" for name in pairs))
for (layer, h), row in share.items():
    print(f"layer {layer} head {h}" + "".join(f"{row[name]:>20.2f}" for name in pairs))
print(f"{'uniform':14}" + "".join(f"{uniform[name]:>20.2f}" for name in pairs))
print(f"{'rows':14}" + "".join(f"{len(ts):>20}" for ts in pairs.values()))

# %% [markdown]
# The rule, fixed in advance and not derived from any measured noise, names a head only if it
# puts at least half its weight on the pattern's position (share ≥ 0.5), and at least 3 times the
# uniform share, on this one line:

# %%
for name in pairs:
    (layer, h), best = max(((key, row[name]) for key, row in share.items()), key=lambda kv: kv[1])
    found = f"layer {layer} head {h}: share {best:.2f}, uniform {uniform[name]:.2f}"
    if best >= 0.5 and best >= 3 * uniform[name]:
        print(f"{name}: {found}")
    else:
        print(f"{name}: no head does this clearly (the closest, {found})")

# %% [markdown]
# One line is a small sample: a head named here may do other things on other text. Exercise 4
# tries another line; Solution 4 measures each pattern's best head there and asks whether §11's
# verdicts lie farther from the 0.5 rule than the share moves between the two lines.

# %% [markdown]
# ## Summary
#
# - Generation repeats "predict, pick, append".
# - Greedy takes the argmax; temperature sharpens or flattens; top-k keeps `k` candidates; top-p
#   the smallest set covering $p$.
# - The KV cache keeps each layer's keys and values: one character per step, the same text.
# - One context policy (crop, drop the oldest half) serves both paths.
# - `utils.attention_maps` shows what the trained heads look at.

# %% [markdown]
# ## Exercises
#
# 1. **Combine the filters.** `utils.next_token_probs(last, temperature=0.8, top_k=20, top_p=0.9)`
#    applies temperature, then top-k, then top-p. How many characters survive? Derive it from
#    §4–§6 and check.
# 2. **Temperature and variety.** Generate 300 characters at temperatures 0.2, 0.5, 0.8, 1.0, 1.5
#    (the same seeds at every temperature); plot the share of distinct words among all words.
# 3. **Where the cache pays off.** Time a few hundred characters with and without the cache on an
#    untrained model with twice the context, `utils.build_model(tokenizer, block_size=2 *
#    block_size)`. How does the speed-up compare with §8.4?
# 4. **Another line.** Measure the share of §11's best head for each pattern on another line of
#    the book with a quote. Does it keep its share?

# %% [markdown]
# ## Solutions
#
# Each solution is a code cell that runs with the lesson; in Jupyter its code starts collapsed
# (click to open it).
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
n_top_k = (utils.next_token_probs(last, temperature=0.8, top_k=20) > 0).sum().item()
print(f"kept: {n_survive} characters (top-k alone keeps {n_top_k})")
assert n_survive <= n_top_k

# %% [markdown]
# Top-p works on the distribution *after* top-k has renormalised it, so the nucleus is taken
# among top-k's survivors: never more than top-k keeps (both counts are printed above).
#
# **Solution 2.** The share of distinct words at five temperatures, three seeds each (quick
# mode: two); the bars show their range:

# %% jupyter={"source_hidden": true}
taus = [0.2, 0.5, 0.8, 1.0, 1.5]
n_variety, seeds = utils.by_mode(full=300, quick=40), range(utils.by_mode(full=3, quick=2))
shares = {tau: [] for tau in taus}
for tau in taus:
    for seed in seeds:
        text_tau = utils.generate(model, tokenizer, PROMPT, n_variety, temperature=tau, seed=seed)
        shares[tau].append(len(set(text_tau.split())) / max(1, len(text_tau.split())))
variety = [statistics.mean(shares[tau]) for tau in taus]
low = [v - min(shares[tau]) for tau, v in zip(taus, variety, strict=True)]
high = [max(shares[tau]) - v for tau, v in zip(taus, variety, strict=True)]
fig, ax = plt.subplots(figsize=(5, 3))
ax.errorbar(taus, variety, yerr=[low, high], marker="o", capsize=3)
ax.set(xlabel="temperature τ", ylabel="distinct words / words", title="Temperature and variety")
ax.grid(alpha=0.3)
plt.tight_layout()
plt.show()
print(", ".join(f"τ={tau}: {share:.2f}" for tau, share in zip(taus, variety, strict=True)))
spread = max(max(shares[t]) - min(shares[t]) for t in taus)  # the seeds' noise, largest
difference = variety[-1] - variety[0]
verdict = "more variety at high τ" if difference > spread else "no measurable difference"
print(f"lowest τ {variety[0]:.2f} vs highest τ {variety[-1]:.2f} (seed range up to {spread:.2f}): "
      f"{verdict}")

# %% [markdown]
# Low temperatures tend to repeat a few words (close to greedy loops). The printed line compares
# only the two ends of the range against the largest seed spread; neighbouring temperatures, such as
# 0.8 and 1.0, can swap places within it.
#
# **Solution 3.** An untrained model with twice the context, timed as in §8.4 (same characters,
# same rounds):

# %% jupyter={"source_hidden": true}
wide = utils.build_model(tokenizer, block_size=2 * block_size).to(device).eval()
wide_speeds = timed_speeds(wide, n_timed, n_rounds)
wide_ratios = [a / b for a, b in zip(wide_speeds[True], wide_speeds[False], strict=True)]
for name, rs in ((f"context {wide.config.block_size}", wide_ratios),
                 (f"context {block_size} (§8.4)", ratios)):
    print(f"{name}: speed-up {statistics.median(rs):.2f}x, rounds {min(rs):.2f}x to {max(rs):.2f}x")
apart = min(wide_ratios) > max(ratios) or max(wide_ratios) < min(ratios)
print(f"the ranges do not overlap ({n_rounds} rounds each, timed apart): a hint of a larger "
      "speed-up, not a tested difference" if apart else
      "the ranges overlap: no measurable difference")

# %% [markdown]
# Without the cache a step processes the whole context so far, which may now grow twice as long;
# with it, one position. So the speed-up should grow with the context, once the text is longer
# than the shorter context; the last printed line says what this run suggests.
#
# **Solution 4.** §11's three patterns on another line, for the heads with §11's highest shares:

# %% jupyter={"source_hidden": true}
OTHER = "“I don’t know what you mean,” said Alice."
assert OTHER in corpus.book
other_ids = torch.tensor([tokenizer.encode(OTHER)], device=device)
other_maps = [w[0].cpu() for w in utils.attention_maps(model, other_ids)]
other = tokenizer.decode(other_ids[0].tolist())
other_pairs = {"previous character": [(t, t - 1) for t in range(1, len(other))]}
other_pairs["word start"] = [(t, other.rfind(" ", 0, t) + 1) for t in range(1, len(other))
                             if other.rfind(" ", 0, t) + 1 <= t - 2]
other_pairs["opening quote"] = [(t, 0) for t in range(2, other.index("”") + 1)]  # “ at 0
shifts, margins = {}, {}  # per pattern: the share's move between lines, its distance from 0.5
for name, ts in other_pairs.items():
    (layer, h), _ = max(((key, row[name]) for key, row in share.items()), key=lambda kv: kv[1])
    again = mean_weight(other_maps[layer][h], ts)
    first = share[(layer, h)][name]
    shifts[name], margins[name] = abs(again - first), abs(first - 0.5)
    print(f"{name}: layer {layer} head {h} has share {first:.2f} on §11's line, {again:.2f} "
          "on this one")
largest = max(shifts.values())
firm = [name for name in other_pairs if margins[name] > largest]
print(f"largest shift {largest:.2f}; §11's verdicts farther than that from the 0.5 rule: "
      f"{len(firm)} of {len(other_pairs)}" + (f" ({', '.join(firm)})" if firm else ""))

# %% [markdown]
# Both lines open with `“`, so the quote pattern here cannot tell the quote from position 0. The
# last line compares how far each share on §11's line sits from the 0.5 rule with the largest
# shift between the two lines: a verdict farther from the rule than that is not overturned by a
# second line (for each pattern's best head only; two lines are still a small sample).
