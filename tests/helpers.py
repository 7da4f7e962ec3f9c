"""Tiny models and data shared by the unit tests (fast on a CPU)."""

import torch
import utils

TEXT = "alice was beginning to get very tired of sitting by her sister on the bank. " * 20
TOKENIZER = utils.CharTokenizer.from_texts(
    [TEXT, utils.QUESTION_TAG + utils.ANSWER_TAG + utils.END_TAG + "\n?"]
)


def tiny_model(dropout: float = 0.0, block_size: int = 16, seed: int = 0) -> utils.GPT:
    torch.manual_seed(seed)
    config = utils.GPTConfig(
        vocab_size=TOKENIZER.vocab_size, block_size=block_size, n_embd=32, n_layer=2, n_head=4,
        mlp_hidden=64, dropout=dropout,
    )
    return utils.GPT(config)


def tiny_batches(block_size: int = 16, batch_size: int = 4) -> utils.BatchFn:
    data = torch.tensor(TOKENIZER.encode(TEXT))
    cut = int(0.9 * len(data))
    return utils.book_batches({"train": data[:cut], "val": data[cut:]}, block_size, batch_size)
