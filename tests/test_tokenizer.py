"""Tokenizer: one vocabulary from book + Q&A, loud errors on unknown characters."""

import pytest
import utils
from hypothesis import given
from hypothesis import strategies as st

BOOK = utils.load_alice()
QA = utils.load_qa()
TOKENIZER = utils.build_tokenizer(BOOK, QA)


def test_vocabulary_covers_book_qa_and_tags_lower_cased():
    chars = set(TOKENIZER.chars)
    assert set(BOOK.lower()) <= chars
    assert set(utils.QUESTION_TAG + utils.ANSWER_TAG + utils.END_TAG) <= chars
    assert not any(ch.isupper() for ch in chars)
    assert TOKENIZER.encode("Alice") == TOKENIZER.encode("alice")


def test_unknown_characters_raise_and_are_named():
    with pytest.raises(ValueError) as error:
        TOKENIZER.encode("alice & the 7 dwarves €")
    message = str(error.value)
    for ch in "&7€":
        assert repr(ch) in message
    assert "'a'" not in message  # only the unknown ones are named


def test_straight_apostrophe_gets_a_hint():
    with pytest.raises(ValueError, match="’"):
        TOKENIZER.encode("alice's cat")


def test_no_character_is_silently_mapped_to_zero():
    ids = TOKENIZER.encode("abc")
    assert ids == [TOKENIZER.stoi[c] for c in "abc"]
    assert len(set(TOKENIZER.chars)) == TOKENIZER.vocab_size


@given(st.text(alphabet=TOKENIZER.chars, max_size=200))
def test_decode_inverts_encode(text):
    assert TOKENIZER.decode(TOKENIZER.encode(text)) == text


def test_round_trip_through_plain_dict():
    data = TOKENIZER.to_dict()
    assert isinstance(data["chars"], str) and isinstance(data["lowercase"], bool)
    assert utils.CharTokenizer.from_dict(data) == TOKENIZER


def test_case_sensitive_tokenizer_keeps_case():
    tok = utils.CharTokenizer.from_texts(["aA"], lowercase=False)
    assert tok.vocab_size == 2 and tok.decode(tok.encode("Aa")) == "Aa"
