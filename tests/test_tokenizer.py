"""Tokenizer: one vocabulary from book + Q&A, loud errors on unknown characters."""

import pytest
import torch
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


@pytest.mark.parametrize(
    ("typed", "book"),
    [
        ("What is the name of Alice's cat?", "What is the name of Alice’s cat?"),
        ('"Off with her head!" the Queen shouted.', "“Off with her head!” the Queen shouted."),
        ("she said, 'poison' -- or not", "she said, ‘poison’—or not"),
        ("a White Rabbit – with pink eyes…", "a White Rabbit—with pink eyes..."),
        ("down\tthe rabbit-hole\r\nand\u00a0out", "down the rabbit-hole\nand out"),
    ],
)
def test_keyboard_text_encodes_like_the_books_characters(typed, book):
    assert TOKENIZER.encode(typed) == TOKENIZER.encode(book)
    assert TOKENIZER.normalize(typed) == book.lower()


def test_normalisation_leaves_the_book_and_the_qa_file_unchanged():
    assert TOKENIZER.normalize(BOOK) == BOOK.lower()
    for record in QA:
        assert TOKENIZER.normalize(record["question"]) == record["question"].lower()


def test_characters_without_a_counterpart_still_raise():
    with pytest.raises(ValueError) as error:
        TOKENIZER.encode("alice's cat & 7 dwarves")
    assert "'&'" in str(error.value) and "'7'" in str(error.value)
    assert "\"'\"" not in str(error.value)  # the apostrophe was normalised, not refused


def test_a_question_typed_with_ascii_quotes_gets_the_same_answer():
    torch.manual_seed(0)
    config = utils.GPTConfig(
        vocab_size=TOKENIZER.vocab_size, block_size=96, n_embd=32, n_layer=1, n_head=2,
        mlp_hidden=32,
    )
    model = utils.GPT(config).eval()
    typed = 'What did Alice\'s sister say -- "wake up"?'
    curly = "What did Alice’s sister say—“wake up”?"
    assert utils.answer(model, TOKENIZER, typed, max_new_tokens=12) == utils.answer(
        model, TOKENIZER, curly, max_new_tokens=12
    )


def test_no_character_is_silently_mapped_to_zero():
    ids = TOKENIZER.encode("abc")
    assert ids == [TOKENIZER.stoi[c] for c in "abc"]
    assert len(set(TOKENIZER.chars)) == TOKENIZER.vocab_size


@given(st.text(alphabet="".join(TOKENIZER.chars) + "'\"–…\t", max_size=200))
def test_decode_inverts_encode_up_to_normalisation(text):
    normal = TOKENIZER.normalize(text)
    assert TOKENIZER.decode(TOKENIZER.encode(text)) == normal
    assert TOKENIZER.normalize(normal) == normal  # normalising twice changes nothing


def test_round_trip_through_plain_dict():
    data = TOKENIZER.to_dict()
    assert isinstance(data["chars"], str) and isinstance(data["lowercase"], bool)
    assert utils.CharTokenizer.from_dict(data) == TOKENIZER


def test_case_sensitive_tokenizer_keeps_case():
    tok = utils.CharTokenizer.from_texts(["aA"], lowercase=False)
    assert tok.vocab_size == 2 and tok.decode(tok.encode("Aa")) == "Aa"
