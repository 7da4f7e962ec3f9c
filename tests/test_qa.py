"""Q&A: the dataset's integrity, the one prompt format, answer-only masking, metrics."""

import functools
import json
import math
import warnings
from collections import Counter

import pytest
import torch
import utils
from helpers import tiny_model

BOOK = utils.load_alice()
QA = utils.load_qa()
TOKENIZER = utils.build_tokenizer(BOOK, QA)
# never_read: evidence only held out; reversal: the held-out direction of a pair of facts
SPLITS = {"train", "paraphrase", "unseen", "never_read", "reversal"}


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
    for line, record in enumerate(QA, start=1):  # failures name the line, not the held-out text
        assert set(record) >= {"question", "answer", "chapter", "evidence", "split"}, line
        assert 0 < len(record["answer"]) <= 60, line
        assert record["split"] in SPLITS, line
    assert {r["chapter"] for r in QA} == set(range(1, 13))
    counts = Counter(r["split"] for r in QA)
    assert counts["paraphrase"] >= 200 and counts["unseen"] >= 30 and counts["never_read"] >= 10
    assert len({r["fact"] for r in utils.qa_split(QA, "train")}) >= 200


def test_every_evidence_quote_is_in_the_book():
    book = squash(BOOK)
    missing = [line for line, r in enumerate(QA, start=1) if squash(r["evidence"]) not in book]
    assert not missing, f"evidence not in the book on lines {missing[:10]}"


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
    assert not any(r["fact"] in train_facts for r in utils.qa_split(QA, "reversal"))


def test_every_train_fact_has_exactly_one_paraphrase():
    paraphrases = Counter(r["fact"] for r in utils.qa_split(QA, "paraphrase"))
    train_facts = {r["fact"] for r in utils.qa_split(QA, "train")}
    assert set(paraphrases) == train_facts and set(paraphrases.values()) == {1}


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


def reverse_pairs() -> set[tuple[str, str]]:
    """The pairs of facts that ask one fact in both directions, each as a sorted pair of ids."""
    return {tuple(sorted((r["fact"], r["reverse_of"]))) for r in QA if "reverse_of" in r}


def test_reverse_pairs_name_each_other_and_one_third_is_held_out_by_hash():
    """A fact and its reverse name each other; the third of the pairs with the lowest hash keeps
    only one direction in training (the fact with the lower hash), the other is ``reversal``."""
    partner = {}
    for record in QA:
        assert partner.setdefault(record["fact"], record.get("reverse_of")) == record.get(
            "reverse_of"
        ), record["fact"]  # every record of a fact names the same partner, or none
    pairs = reverse_pairs()
    assert all(partner[b] == a and partner[a] == b for a, b in pairs)
    ordered = sorted(pairs, key=lambda pair: utils._hash_share("|".join(pair)))
    held = ordered[: round(len(pairs) / 3)]
    assert len(held) >= 20
    splits = {}
    for record in QA:
        splits.setdefault(record["fact"], set()).add(record["split"])
    for pair in ordered:
        kept, reversed_ = sorted(pair, key=utils._hash_share)
        if pair in held:
            assert splits[kept] == {"train", "paraphrase"} and splits[reversed_] == {"reversal"}
        else:
            assert splits[kept] == splits[reversed_] == {"train", "paraphrase"}
    assert {r["fact"] for r in utils.qa_split(QA, "reversal")} == {max(p, key=utils._hash_share)
                                                                   for p in held}


def test_reversal_questions_are_not_reworded_train_questions():
    """Failures report counts only: no reversal question shares 80% of its words with one train
    question (a reversal asks the other way round, not the same question again)."""
    train = [r["question"] for r in utils.qa_split(QA, "train")]
    reversal = utils.qa_split(QA, "reversal")
    close = sum(utils.word_overlap(r["question"], train) >= 0.8 for r in reversal)
    assert reversal and not close, f"{close} of {len(reversal)} reversal questions are too close"


def test_dev_paraphrases_are_as_unlike_their_training_phrasings_as_held_out_ones():
    """Mean overlap of a dev phrasing with its fact's fitted phrasings is within 0.05 of that of
    a held-out paraphrase with its train phrasings; a phrasing picked by hash is not."""

    def mean_overlap(held: list[dict], trained: list[dict]) -> float:
        by_fact: dict[str, list[str]] = {}
        for r in trained:
            by_fact.setdefault(r["fact"], []).append(r["question"])
        return sum(utils.word_overlap(r["question"], by_fact[r["fact"]]) for r in held) / len(held)

    dev = utils.dev_split(QA)
    held_out = mean_overlap(utils.qa_split(QA, "paraphrase"), utils.qa_split(QA, "train"))
    chosen = mean_overlap(dev["dev_paraphrase"], dev["fit"])
    fitted = dev["fit"] + dev["dev_paraphrase"]
    by_hash = {}  # the old rule: the phrasing with the lowest hash
    for r in sorted(fitted, key=lambda r: utils._hash_share(r["question"]), reverse=True):
        by_hash[r["fact"]] = r
    hashed = mean_overlap(
        list(by_hash.values()), [r for r in fitted if by_hash[r["fact"]] is not r]
    )
    assert abs(chosen - held_out) <= 0.05 < hashed - held_out, (chosen, held_out, hashed)
    assert utils.word_overlap("Who was late?", ["Who is late?", "Why?"]) == 1.0
    assert utils.word_overlap("the rabbit ran", ["the cat sat"]) == 0.0
    assert utils.word_overlap("Who was late?", []) == 0.0


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


def test_book_fraction_mixes_whole_block_book_steps_into_training():
    corpus_splits = {
        "train": torch.arange(500) % TOKENIZER.vocab_size,
        "val": torch.arange(300) % 5,
    }
    rows = utils.encode_qa(utils.qa_split(QA, "train"), TOKENIZER, 128)
    get_batch = utils.qa_batches(rows, corpus_splits, 128, batch_size=8, book_fraction=0.25)
    generator, book_steps = torch.Generator().manual_seed(0), 0
    for _ in range(400):
        x, y = get_batch("train", generator)
        assert x.numel() == 8 * 128  # the same characters in every step
        if (y != -100).all():  # a book step: whole-block windows, graded everywhere
            assert x.shape == (8, 128) and (x[:, 1:] == y[:, :-1]).all()
            book_steps += 1
        else:
            assert (y == -100).any(dim=1).all()  # Q&A rows: prompt and padding masked
    assert abs(book_steps / 400 - 0.25) < 0.06
    for _ in range(50):
        _, yq = get_batch("qa", generator)
        assert (yq == -100).any(dim=1).all()  # qa: never book
    xv, yv = get_batch("val", generator)
    assert xv.shape == (8, 128) and (yv < 5).all()  # val: windows of the val text


def test_buckets_cut_only_padding_and_draw_every_row_equally_often():
    block = 128
    records = [
        {"question": "Who?", "answer": "the cat"},  # short: a bucket of quarter-block rows
        {"question": "What did the Queen shout at everyone? " * 2, "answer": "off with her head"},
    ]
    x_full, y_full = utils.encode_qa(records, TOKENIZER, block)
    lengths = utils.qa_lengths((x_full, y_full))
    assert lengths.tolist() == [int((y_full[i] != -100).nonzero().max()) + 1 for i in range(2)]
    get_batch = utils.qa_batches((x_full, y_full), {}, block, batch_size=4, book_fraction=0.0)
    generator, drawn = torch.Generator().manual_seed(0), torch.zeros(2)
    for _ in range(400):
        x, y = get_batch("qa", generator)
        row = int(len(x[0]) > block // 2)  # which record this bucket holds
        assert len(x) * x.shape[1] == 4 * block and x.shape[1] >= lengths[row]
        assert torch.equal(y, y_full[row, : x.shape[1]].expand_as(y))  # nothing graded was cut
        drawn[row] += len(x)
    assert abs(drawn[0] / drawn[1] - 1) < 0.15  # each record drawn about equally often


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


def test_share_stderr_counts_one_right_and_one_wrong_answer_extra():
    assert utils.share_stderr(9 / 10, 10) == pytest.approx(math.sqrt(10 / 12 * 2 / 12 / 10))
    assert utils.share_stderr(0.0, 120) > 0 and utils.share_stderr(1.0, 120) > 0  # never zero
    assert utils.share_stderr(0.5, 10_000) == pytest.approx(0.005, rel=1e-3)  # binomial, large n
    with pytest.raises(ValueError, match="n must be an integer >= 1"):
        utils.share_stderr(0.5, 0)
    gain, bar = utils.share_gap(0.6, 100, 0.5, 120)
    assert gain == pytest.approx(0.1)
    assert bar == pytest.approx(2 * math.hypot(utils.share_stderr(0.6, 100),
                                               utils.share_stderr(0.5, 120)))


# --- open book, retrieval, dev split, fine-tuning plan ---------------------------------------

CORPUS = utils.load_corpus()


def test_open_book_prompt_puts_the_passage_first_and_every_example_fits_the_block():
    prompt = utils.qa_prompt(" Who is  late? ", "the White\nRabbit  was late")
    assert prompt == "<p>the White Rabbit was late\n<q>Who is late?\n<a>"
    assert prompt.endswith(utils.qa_prompt("Who is late?"))  # closed-book is its tail
    book_index = utils.Retriever(CORPUS.book)
    records = utils.with_passages(QA, book_index)
    _, y = utils.encode_qa(records, TOKENIZER, 256)  # raises if one does not fit
    graded = [t for t in y[0].tolist() if t != -100]
    assert TOKENIZER.decode(graded) == TOKENIZER.normalize(utils.qa_completion(QA[0]["answer"]))


def test_windows_overlap_so_every_short_quote_is_whole_in_one():
    passages = utils.book_windows(CORPUS.book)
    assert max(map(len, passages)) <= utils.PASSAGE_CHARS
    joined = " ".join(CORPUS.book.split())
    for start in range(0, len(joined) - 60, 997):  # quotes of 60 characters all over the book
        quote = joined[start : start + 60]
        quote = quote[quote.find(" ") + 1 : quote.rfind(" ")]
        assert any(quote in p for p in passages), quote


def test_retriever_returns_the_passage_that_holds_a_quoted_sentence():
    index = utils.Retriever(CORPUS.book)
    quote = "Curiouser and curiouser"
    assert quote in index.search(f"Who cried “{quote}”?")
    assert index.search("zzz qqq") == index.passages[0]  # no word matches: the first passage
    scores = index.scores("pink eyes rabbit")
    best = max(scores.values())
    assert all("pink" in index.passages[i].lower() for i, s in scores.items() if s == best)


def test_training_examples_take_passages_from_the_training_text_only():
    train_text = utils.squash(CORPUS.train_text)
    plan = utils.FinetunePlan(mode="both")
    examples = utils.finetune_examples(CORPUS, plan)
    with_passage = [e for e in examples if "passage" in e]
    assert len(with_passage) == len(utils.qa_split(QA, "train"))
    assert all(utils.squash(e["passage"]) in train_text for e in with_passage)
    assert {e["question"] for e in examples} >= {r["question"] for r in utils.qa_split(QA, "train")}
    held_out = {r["question"] for r in QA if r["split"] != "train"}
    assert not any(e["question"] in held_out for e in examples)


def test_dev_split_is_carved_from_train_facts_only_and_deterministic():
    dev = utils.dev_split(QA)
    assert {k: {r["question"] for r in v} for k, v in dev.items()} == {
        k: {r["question"] for r in v} for k, v in utils.dev_split(list(reversed(QA))).items()
    }  # by hash, not by file order
    train = utils.qa_split(QA, "train")
    assert sorted(r["question"] for v in dev.values() for r in v) == sorted(
        r["question"] for r in train
    )
    fit_facts = {r["fact"] for r in dev["fit"]}
    assert dev["dev_unseen"] and not any(r["fact"] in fit_facts for r in dev["dev_unseen"])
    paraphrased = Counter(r["fact"] for r in dev["dev_paraphrase"])
    assert set(paraphrased) == fit_facts and set(paraphrased.values()) == {1}
    fit_plan = utils.finetune_examples(CORPUS, utils.FinetunePlan(mode="closed", dev=True))
    assert {e["question"] for e in fit_plan} == {r["question"] for r in dev["fit"]}


def test_a_changed_plan_is_never_resumed_silently(tmp_path):
    torch.manual_seed(0)
    config = utils.GPTConfig(
        vocab_size=TOKENIZER.vocab_size, n_embd=16, n_layer=1, n_head=2, mlp_hidden=32
    )
    base = utils.GPT(config)
    cfg = utils.TrainConfig(max_steps=2, batch_size=2, warmup_steps=1, eval_interval=1,
                            eval_iters=1)
    path = tmp_path / "finetuned.pt"
    plan = utils.FinetunePlan(mode="closed")
    utils.finetune(base, CORPUS, cfg, path, plan, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the same plan resumes without a word
        utils.finetune(base, CORPUS, cfg, path, plan, progress=False)
    changed = utils.FinetunePlan(mode="closed", book_fraction=0.25)
    with pytest.warns(UserWarning, match=r"book_fraction 0\.5 -> 0\.25"):
        utils.finetune(base, CORPUS, cfg, path, changed, progress=False)
    origin = json.loads(utils.load_checkpoint(path)["extra"]["origin"])
    assert origin["book_fraction"] == 0.25 and origin["base"] == utils.weights_fingerprint(base)
    with pytest.raises(ValueError, match="mode must be"):
        utils.finetune(base, CORPUS, cfg, path, utils.FinetunePlan(mode="book"), progress=False)


def test_evaluate_qa_open_book_reports_retrieval_recall():
    model = tiny_model_for(TOKENIZER)
    index = utils.Retriever(CORPUS.book)
    records = utils.qa_split(QA, "train")[:2]
    scores = utils.evaluate_qa(model, TOKENIZER, records, index)
    for record, row in zip(records, scores["rows"], strict=True):
        assert row["passage"] == index.search(record["question"])
        assert row["found"] == utils.evidence_found(record, row["passage"])
    assert scores["recall"] == sum(r["found"] for r in scores["rows"]) / 2
    assert "recall" not in utils.evaluate_qa(model, TOKENIZER, records)


def test_a_missing_checkpoint_gets_a_named_stand_in_and_a_foreign_vocabulary_is_refused(
    tmp_path, capsys
):
    real = tmp_path / "base.pt"
    short = utils.stand_in(real, 3, 20)
    assert short == tmp_path / "base_short.pt"
    assert "lesson 3 writes it" in capsys.readouterr().out
    other = utils.CharTokenizer.from_texts(["abc"])
    model = utils.GPT(utils.GPTConfig(**{**tiny_model().config.__dict__, "vocab_size": 3}))
    utils.save_checkpoint(real, model, other)
    with pytest.raises(ValueError, match="another vocabulary"):
        utils.load_checked(real, CORPUS, torch.device("cpu"))
