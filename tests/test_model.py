"""Model: size of the default GPT, loss at initialisation, masking of targets, length check."""

import math

import pytest
import torch
import torch.nn.functional as F
import utils
from helpers import tiny_model

TOKENIZER = utils.build_tokenizer(utils.load_alice(), utils.load_qa())


def test_default_model_has_half_a_million_parameters():
    model = utils.build_model(TOKENIZER)
    n = model.num_parameters()
    assert 500_000 <= n <= 600_000
    assert sum(utils.parameters_by_module(model).values()) == n
    assert model.head.weight is model.tok_emb.weight  # tied


def test_untrained_loss_is_close_to_ln_vocab():
    torch.manual_seed(0)
    model = utils.build_model(TOKENIZER).eval()
    idx = torch.randint(TOKENIZER.vocab_size, (8, 128))
    _, loss = model(idx, torch.randint(TOKENIZER.vocab_size, (8, 128)))
    assert abs(loss.item() - math.log(TOKENIZER.vocab_size)) < 0.1


def test_targets_minus_100_are_ignored():
    model = tiny_model().eval()
    idx = torch.randint(model.config.vocab_size, (2, 10))
    targets = torch.randint(model.config.vocab_size, (2, 10))
    logits, _ = model(idx)
    masked = targets.clone()
    masked[:, :6] = -100
    _, loss = model(idx, masked)
    expected = F.cross_entropy(
        logits[:, 6:].reshape(-1, logits.size(-1)), targets[:, 6:].reshape(-1)
    )
    assert torch.allclose(loss, expected, atol=1e-6)


def test_causality_future_tokens_do_not_change_the_past():
    model = tiny_model().eval()
    idx = torch.randint(model.config.vocab_size, (1, 12))
    changed = idx.clone()
    changed[0, 8:] = (changed[0, 8:] + 1) % model.config.vocab_size
    a, _ = model(idx)
    b, _ = model(changed)
    assert torch.allclose(a[0, :8], b[0, :8], atol=1e-6)
    assert not torch.allclose(a[0, 8:], b[0, 8:])


def test_input_longer_than_block_is_a_clear_error():
    model = tiny_model(block_size=16)
    with pytest.raises(ValueError, match="longer than the block size 16"):
        model(torch.zeros(1, 17, dtype=torch.long))


def test_flops_per_token_matches_a_hand_count():
    config = utils.GPTConfig(vocab_size=10, block_size=4, n_embd=8, n_layer=1, mlp_hidden=16)
    per_layer = 2 * (3 * 64 + 64 + 2 * 8 * 16) + 4 * 4 * 8
    assert utils.flops_per_token(config, with_backward=False) == per_layer + 2 * 8 * 10
    assert utils.flops_per_token(config) == 3 * (per_layer + 160)


@pytest.mark.parametrize("n", [17, 18, 40, 33])
def test_evaluate_text_grades_every_character_once(n):
    model = tiny_model(block_size=16).eval()
    data = torch.randint(model.config.vocab_size, (n,))
    total = 0.0
    for start in range(0, n - 1, 16):  # reference: one window at a time
        x, y = data[start : start + 16], data[start + 1 : start + 17]
        logits, _ = model(x[: len(y)][None])
        total += F.cross_entropy(logits[0], y, reduction="sum").item()
    assert utils.evaluate_text(model, data, batch_size=2) == pytest.approx(
        total / (n - 1), rel=1e-5
    )


def test_attention_maps_are_causal_rows_that_reproduce_forward():
    model = tiny_model(block_size=16).eval()
    generator = torch.Generator().manual_seed(0)
    idx = torch.randint(model.config.vocab_size, (2, 12), generator=generator)
    inputs, before_proj = [], []  # what each attention layer receives, and feeds to proj
    hooks = []
    for block in model.blocks:
        hooks.append(block.attn.register_forward_pre_hook(lambda m, a: inputs.append(a[0])))
        hooks.append(
            block.attn.proj.register_forward_pre_hook(lambda m, a: before_proj.append(a[0]))
        )
    with torch.no_grad():
        model(idx)
    for hook in hooks:
        hook.remove()
    maps = utils.attention_maps(model, idx)
    assert len(maps) == len(model.blocks)
    B, T = idx.shape
    n_head = model.config.n_head
    for block, weights, x, y in zip(model.blocks, maps, inputs, before_proj, strict=True):
        assert weights.shape == (B, n_head, T, T)
        assert torch.allclose(weights.sum(-1), torch.ones(B, n_head, T))  # rows sum to 1
        assert (weights.triu(diagonal=1) == 0).all()  # causal: nothing above the diagonal
        C = x.size(-1)
        v = block.attn.qkv(x).split(C, dim=2)[2].view(B, T, n_head, C // n_head).transpose(1, 2)
        assert torch.allclose((weights @ v).transpose(1, 2).reshape(B, T, C), y, atol=1e-6)
