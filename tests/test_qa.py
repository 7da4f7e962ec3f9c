"""Q&A: the dataset's integrity, the one prompt format, answer-only masking, metrics."""

from collections import Counter

import pytest
import torch
import utils
from helpers import tiny_model

BOOK = utils.load_alice()
QA = utils.load_qa()
TOKENIZER = utils.build_tokenizer(BOOK, QA)


def squash(text: str) -> str:
    """The loader's normalisation (lower case), with line breaks and runs of spaces folded."""
    return " ".join(text.lower().split())


def test_dataset_size_fields_and_chapters():
    assert len(QA) >= 250
    for record in QA:
        assert set(record) >= {"question", "answer", "chapter", "evidence", "split"}
        assert 0 < len(record["answer"]) <= 60, record
        assert record["split"] in {"train", "paraphrase", "unseen"}
    assert {r["chapter"] for r in QA} == set(range(1, 13))
    counts = Counter(r["split"] for r in QA)
    assert counts["paraphrase"] >= 60 and counts["unseen"] >= 30


def test_every_evidence_quote_is_in_the_book():
    book = squash(BOOK)
    missing = [r["evidence"] for r in QA if squash(r["evidence"]) not in book]
    assert not missing, missing[:5]


def test_no_duplicate_questions_and_held_out_questions_are_new():
    questions = Counter(squash(r["question"]) for r in QA)
    assert questions.most_common(1)[0][1] == 1
    train = {squash(r["question"]) for r in utils.qa_split(QA, "train")}
    assert not any(squash(r["question"]) in train for r in utils.qa_split(QA, "paraphrase"))
    train_facts = {r["fact"] for r in utils.qa_split(QA, "train")}
    assert all(r["fact"] in train_facts for r in utils.qa_split(QA, "paraphrase"))
    assert not any(r["fact"] in train_facts for r in utils.qa_split(QA, "unseen"))


def test_qa_uses_only_the_books_characters():
    extra = set("".join(r["question"] + r["answer"] for r in QA).lower()) - set(BOOK.lower())
    assert not extra, extra
    utils.encode_qa(QA, TOKENIZER, 128)  # encodes every example and checks it fits the block


def test_prompt_format_is_defined_once_and_has_an_end_marker():
    prompt = utils.qa_prompt("  Who  is late? ")
    assert prompt == f"{utils.QUESTION_TAG}Who is late?\n{utils.ANSWER_TAG}"
    assert utils.qa_completion("the rabbit ") == "the rabbit" + utils.END_TAG


def test_answer_only_mask_leaves_exactly_the_answer_and_end_marker():
    records = utils.qa_split(QA, "train")[:3]
    x, y = utils.encode_qa(records, TOKENIZER, 128)
    for row, record in enumerate(records):
        graded = [t for t in y[row].tolist() if t != -100]
        assert TOKENIZER.decode(graded) == TOKENIZER.normalize(
            utils.qa_completion(record["answer"])
        )
        text = TOKENIZER.normalize(
            utils.qa_prompt(record["question"]) + utils.qa_completion(record["answer"])
        )
        assert TOKENIZER.decode(x[row, : len(text) - 1].tolist()) == text[:-1]
    _, y_full = utils.encode_qa(records, TOKENIZER, 128, mask_question=False)
    assert (y_full != -100).sum() > (y != -100).sum()


def test_masked_loss_ignores_the_question():
    records = utils.qa_split(QA, "train")[:1]
    x, y = utils.encode_qa(records, TOKENIZER, 128)
    model = utils.build_model(TOKENIZER).eval()
    _, loss = model(x, y)
    # Change the question's characters: the logits on the answer change, but the targets the
    # loss grades (answer only) are the same positions; a fully masked question contributes 0.
    n_prompt = len(utils.qa_prompt(records[0]["question"]))
    logits, _ = model(x)
    answer_positions = (y[0] != -100).nonzero().squeeze(1)
    assert answer_positions.min().item() == n_prompt - 1
    manual = torch.nn.functional.cross_entropy(logits[0, answer_positions], y[0, answer_positions])
    assert torch.allclose(loss, manual, atol=1e-6)


def test_book_fraction_mixes_book_rows_into_training_batches():
    corpus_splits = {
        "train": torch.arange(500) % TOKENIZER.vocab_size,
        "val": torch.arange(300) % 5,
    }
    rows = utils.encode_qa(utils.qa_split(QA, "train"), TOKENIZER, 128)
    get_batch = utils.qa_batches(rows, corpus_splits, 128, batch_size=8, book_fraction=0.25)
    x, y = get_batch("train", torch.Generator().manual_seed(0))
    assert x.shape == (8, 128)
    assert (y[:6] == -100).any(dim=1).all()  # Q&A rows are masked
    assert (y[6:] != -100).all()  # book rows are graded everywhere
    _, yq = get_batch("qa", torch.Generator().manual_seed(0))
    assert (yq == -100).any(dim=1).all()


def test_answer_returns_only_the_text_before_the_end_marker():
    records = [{"question": "Who was late?", "answer": "the white rabbit"}]
    torch.manual_seed(0)
    model = tiny_model_for(TOKENIZER)
    rows = utils.encode_qa(records, TOKENIZER, 64)
    cfg = utils.TrainConfig(
        max_steps=150, batch_size=4, lr=3e-3, warmup_steps=10, eval_interval=150, eval_iters=1
    )
    get_batch = utils.qa_batches(rows, {}, 64, batch_size=4, book_fraction=0.0)
    utils.train(model, get_batch, cfg, tokenizer=TOKENIZER, eval_splits=("qa",), progress=False)
    assert utils.answer(model, TOKENIZER, "Who was late?") == "the white rabbit"
    scores = utils.evaluate_qa(model, TOKENIZER, records)
    assert scores["exact_match"] == 1.0 and scores["f1"] == 1.0


def tiny_model_for(tokenizer):
    model = tiny_model(block_size=64)
    return utils.GPT(
        utils.GPTConfig(**{**model.config.__dict__, "vocab_size": tokenizer.vocab_size})
    )


@pytest.mark.parametrize(
    ("prediction", "gold", "em", "f1"),
    [
        ("The White Rabbit.", "white rabbit", 1.0, 1.0),
        ("a watch", "the watch", 1.0, 1.0),
        ("the Queen’s croquet-ground", "queens croquetground", 1.0, 1.0),
        ("white cat", "white rabbit", 0.0, 0.5),
        ("", "rabbit", 0.0, 0.0),
        ("rabbit hole deep", "rabbit", 0.0, 0.5),
    ],
)
def test_exact_match_and_f1(prediction, gold, em, f1):
    assert utils.exact_match(prediction, gold) == em
    assert utils.f1_score(prediction, gold) == pytest.approx(f1)
