"""Q&A: the dataset's integrity, the one prompt format, answer-only masking, metrics."""

import functools
from collections import Counter

import pytest
import torch
import utils
from helpers import tiny_model

BOOK = utils.load_alice()
QA = utils.load_qa()
TOKENIZER = utils.build_tokenizer(BOOK, QA)
SPLITS = {"train", "paraphrase", "unseen", "never_read"}  # never_read: evidence only held out


def squash(text: str) -> str:
    """The loader's normalisation (lower case), with line breaks and runs of spaces folded."""
    return " ".join(text.lower().split())


def occurrences(needle: str, haystack: str) -> list[tuple[int, int]]:
    """Every (start, end) span of ``needle`` in ``haystack``, overlapping ones included."""
    spans, start = [], haystack.find(needle)
    while start != -1:
        spans.append((start, start + len(needle)))
        start = haystack.find(needle, start + 1)
    return spans


def read_in_pretraining(evidence: str, book: str = BOOK) -> bool:
    """True if some occurrence of ``evidence`` lies entirely in the training 90% of ``book``.

    Both texts are squashed; the squashed training text is a prefix of the squashed book, so an
    occurrence is inside it exactly when it ends at or before that prefix's length.
    """
    squashed_book, training_length = squashed_with_training_length(book)
    spans = occurrences(squash(evidence), squashed_book)
    assert spans, f"evidence not found in the book: {evidence!r}"
    return any(end <= training_length for _, end in spans)


@functools.cache
def squashed_with_training_length(book: str) -> tuple[str, int]:
    """The squashed book and the length of its squashed training part (computed once)."""
    train_text, _ = utils.split_text(book)
    return squash(book), len(squash(train_text))


def test_dataset_size_fields_and_chapters():
    assert len(QA) >= 250
    for record in QA:
        assert set(record) >= {"question", "answer", "chapter", "evidence", "split"}
        assert 0 < len(record["answer"]) <= 60, record
        assert record["split"] in SPLITS, record
    assert {r["chapter"] for r in QA} == set(range(1, 13))
    counts = Counter(r["split"] for r in QA)
    assert counts["paraphrase"] >= 60 and counts["unseen"] >= 30 and counts["never_read"] >= 10


def test_every_evidence_quote_is_in_the_book():
    book = squash(BOOK)
    missing = [r["evidence"] for r in QA if squash(r["evidence"]) not in book]
    assert not missing, missing[:5]


def bare(question: str) -> str:
    """A question reduced to its words: lower case, no punctuation, whitespace folded."""
    kept = "".join(ch for ch in question.lower() if ch.isalnum() or ch.isspace())
    return " ".join(kept.split())


def test_no_duplicate_questions_and_held_out_questions_are_new():
    """Failures name line numbers only: the held-out questions stay unread."""
    first_line: dict[str, int] = {}
    repeats = []
    for line, record in enumerate(QA, start=1):
        key = bare(record["question"])
        if key in first_line:
            repeats.append((first_line[key], line))
        first_line.setdefault(key, line)
    assert not repeats, f"{len(repeats)} questions repeat an earlier one (lines): {repeats}"
    train = {bare(r["question"]) for r in utils.qa_split(QA, "train")}
    leaks = [
        line
        for line, r in enumerate(QA, start=1)
        if r["split"] != "train" and bare(r["question"]) in train
    ]
    assert not leaks, f"{len(leaks)} held-out questions equal a train question (lines): {leaks}"


def test_held_out_facts_are_never_train_facts():
    train_facts = {r["fact"] for r in utils.qa_split(QA, "train")}
    assert all(r["fact"] in train_facts for r in utils.qa_split(QA, "paraphrase"))
    assert not any(r["fact"] in train_facts for r in utils.qa_split(QA, "unseen"))
    assert not any(r["fact"] in train_facts for r in utils.qa_split(QA, "never_read"))


def test_a_fact_keeps_one_answer_evidence_and_chapter():
    by_fact = {}
    for record in QA:
        key = (record["answer"], record["evidence"], record["chapter"])
        assert by_fact.setdefault(record["fact"], key) == key, record["fact"]


def test_every_train_fact_is_asked_at_least_eight_ways():
    """Knowledge augmentation: several phrasings of each fact let a model extract it."""
    phrasings = Counter(r["fact"] for r in utils.qa_split(QA, "train"))
    few = {fact: n for fact, n in phrasings.items() if n < 8}
    assert phrasings and not few, few


def test_trained_and_held_out_question_facts_were_read_in_pretraining():
    """train, paraphrase and unseen quote the book's training 90%, so the model read them."""
    outside = [
        (i, r["split"], r["fact"])
        for i, r in enumerate(QA, start=1)
        if r["split"] != "never_read" and not read_in_pretraining(r["evidence"])
    ]
    assert not outside, f"line, split, fact of evidence outside the training text: {outside}"


def test_never_read_facts_quote_only_the_held_out_text():
    never_read = utils.qa_split(QA, "never_read")
    assert never_read
    inside = [r["fact"] for r in never_read if read_in_pretraining(r["evidence"])]
    assert not inside, f"never_read facts whose evidence is in the training text: {inside}"


def test_read_in_pretraining_looks_at_every_occurrence():
    train_text, held_out = utils.split_text(BOOK)
    tail = held_out.split()[-6:]  # the book's last words: only in the held-out text
    assert not read_in_pretraining(" ".join(tail))
    head = train_text.split()[:6]
    assert read_in_pretraining(" ".join(head))
    # a phrase that occurs in both parts counts as read: one occurrence in training suffices
    book = "the cat sat. " * 9 + "the dog ran. the cat sat."
    assert read_in_pretraining("The  CAT sat.", book)
    assert not read_in_pretraining("the dog ran.", book)
    assert occurrences("aa", "aaa") == [(0, 2), (1, 3)]


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
