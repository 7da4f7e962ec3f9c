"""Byte-pair encoding: merges from the training text, exact round trips, loud unknown characters."""

import itertools
import math

import pytest
import torch
import utils
from helpers import TEXT, TOKENIZER, tiny_model
from hypothesis import given
from hypothesis import strategies as st

BPE = utils.BPETokenizer.train(TEXT, TOKENIZER, num_merges=40)


def test_chunks_cover_the_text_and_never_span_two_words():
    text = "alice said,  ‘oh dear!’\n\nthe end"
    chunks = utils.split_chunks(text)
    assert "".join(chunks) == text
    assert all(" " not in chunk.strip(" ") for chunk in chunks if chunk.strip())


def test_merge_pair_replaces_left_to_right_without_overlap():
    assert utils.merge_pair([1, 1, 1, 2, 1, 1], (1, 1), 9) == [9, 1, 2, 9]


def test_first_merge_is_the_most_frequent_pair_and_tokens_are_longer():
    pairs = {}
    for chunk in utils.split_chunks(TEXT):
        ids = TOKENIZER.encode(chunk)
        for pair in itertools.pairwise(ids):
            pairs[pair] = pairs.get(pair, 0) + 1
    assert BPE.merges[0] == max(pairs, key=pairs.__getitem__)
    assert BPE.vocab_size == TOKENIZER.vocab_size + 40
    assert len(BPE.encode(TEXT)) < len(TOKENIZER.encode(TEXT)) / 2


@given(st.text(alphabet="".join(TOKENIZER.chars), max_size=200))
def test_encode_decode_round_trip(text):
    assert BPE.decode(BPE.encode(text)) == text


def test_round_trip_of_the_book_with_merges_from_its_training_split():
    book = utils.load_alice()
    chars = utils.build_tokenizer(book, utils.load_qa())
    train_text, val_text = utils.split_text(book)
    bpe = utils.BPETokenizer.train(train_text[:20_000], chars, num_merges=30)
    assert bpe.decode(bpe.encode(val_text)) == val_text.lower()


def test_unknown_characters_raise_the_character_tokenizers_error():
    with pytest.raises(ValueError) as bpe_error:
        BPE.encode("alice & 7 €")
    with pytest.raises(ValueError) as char_error:
        TOKENIZER.encode("alice & 7 €")
    assert str(bpe_error.value) == str(char_error.value)
    assert "'€'" in str(bpe_error.value)


def test_bits_per_character_counts_characters_not_tokens():
    text = TEXT[:300]
    model = tiny_model(block_size=32)
    ids = torch.tensor(TOKENIZER.encode(text))
    expected = utils.evaluate_text(model, ids) / math.log(2)  # one token per character
    assert utils.bits_per_character(model, TOKENIZER, text) == pytest.approx(expected)
    bpe_model = utils.GPT(utils.GPTConfig(**{**vars(model.config), "vocab_size": BPE.vocab_size}))
    bpe_ids = BPE.encode(text)
    nats = utils.evaluate_text(bpe_model, torch.tensor(bpe_ids)) * (len(bpe_ids) - 1)
    predicted = len(text) - len(BPE.decode(bpe_ids[:1]))
    assert utils.bits_per_character(bpe_model, BPE, text) == pytest.approx(
        nats / predicted / math.log(2)
    )
