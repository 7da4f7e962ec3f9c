"""Bad input: every public helper a lesson or a reader calls refuses it with a clear error that
names the argument, the value it got and what is allowed, and loses nothing."""

import json

import pytest
import torch
import utils
from helpers import TOKENIZER, tiny_model


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [
        ("dropout", 1.0, "< 1"),
        ("dropout", -0.1, ">= 0"),
        ("dropout", float("nan"), "finite"),
        ("n_layer", 0, ">= 1"),
        ("block_size", 2.5, "integer"),
        ("vocab_size", True, "integer"),
        ("n_head", 3, "divisible"),
    ],
)
def test_gpt_config_refuses_bad_values(field, value, allowed):
    with pytest.raises(ValueError, match=field) as error:
        utils.GPTConfig(**{field: value})
    assert allowed in str(error.value) and str(value) in str(error.value)


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [
        ("eval_interval", 0, ">= 1"),
        ("max_steps", -5, ">= 1"),
        ("eval_iters", 0, ">= 1"),
        ("warmup_steps", 5000, "<= 3000"),
        ("lr", 0.0, "> 0"),
        ("lr", float("inf"), "finite"),
        ("min_lr", 0.01, "<= 0.002"),
        ("beta2", 1.0, "< 1"),
        ("grad_clip", 0, "> 0"),
        ("grad_clip", float("nan"), "> 0"),
        ("batch_size", 0, ">= 1"),
    ],
)
def test_train_config_refuses_bad_values(field, value, allowed):
    with pytest.raises(ValueError, match=field) as error:
        utils.TrainConfig(**{field: value})
    assert allowed in str(error.value) and str(value) in str(error.value)


def test_good_configs_still_build():
    assert utils.GPTConfig(dropout=0.0).dropout == 0.0
    assert utils.TrainConfig(warmup_steps=0, min_lr=0.0).warmup_steps == 0
    assert utils.TrainConfig(grad_clip=float("inf")).grad_clip == float("inf")  # no clipping


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"top_k": 0}, "top_k"),
        ({"top_k": -1}, "top_k"),
        ({"top_k": 2.5}, "top_k"),
        ({"temperature": float("nan")}, "temperature"),
        ({"temperature": float("inf")}, "temperature"),
        ({"temperature": -1.0}, "temperature"),
        ({"top_p": 0.0}, "top_p"),
        ({"top_p": 1.5}, "top_p"),
    ],
)
def test_sampling_arguments_are_checked(kwargs, named):
    logits = torch.tensor([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=named):
        utils.next_token_probs(logits, **{"temperature": 1.0, **kwargs})
    with pytest.raises(ValueError, match=named):  # before any work is done
        utils.generate(tiny_model(), TOKENIZER, "alice", 5, **kwargs)


@pytest.mark.parametrize("max_new_tokens", [-1, 2.0])
def test_max_new_tokens_must_be_a_count(max_new_tokens):
    expected = rf"max_new_tokens must be an integer >= 0, got {max_new_tokens}"
    with pytest.raises(ValueError, match=expected):
        utils.generate(tiny_model(), TOKENIZER, "alice", max_new_tokens)
    assert utils.generate(tiny_model(), TOKENIZER, "alice", 0) == ""


@pytest.mark.parametrize("bad_id", [-1, TOKENIZER.vocab_size])
def test_token_ids_outside_the_vocabulary(bad_id):
    model = tiny_model()
    with pytest.raises(ValueError, match=rf"0\.\.{TOKENIZER.vocab_size - 1}.*{bad_id}"):
        model(torch.tensor([[1, 2, bad_id]]))
    with pytest.raises(ValueError, match=rf"decode got id {bad_id}, outside the vocabulary"):
        TOKENIZER.decode([1, bad_id])


@pytest.mark.parametrize(
    ("data", "named"),
    [
        ({"chars": "abc"}, "keys"),
        ({"chars": "abc", "lowercase": True, "extra": 1}, "keys"),
        ("abc", "keys"),
        ({"chars": ["a", "b"], "lowercase": True}, "chars"),
        ({"chars": "", "lowercase": True}, "chars"),
        ({"chars": "aab", "lowercase": True}, "distinct"),
        ({"chars": "ab", "lowercase": "yes"}, "lowercase"),
    ],
)
def test_damaged_tokenizer_dict(data, named):
    with pytest.raises(ValueError, match=named):
        utils.CharTokenizer.from_dict(data)


GOOD_RECORD = {
    "question": "Who was late?", "answer": "the White Rabbit", "chapter": 1,
    "evidence": "the Rabbit", "split": "train", "fact": "late",
}


@pytest.mark.parametrize(
    ("bad_line", "expected"),
    [
        ('{"question": "Who?", "answer": ', "line 3: not valid JSON"),
        ("[1, 2]", "line 3: expected a JSON object, got list"),
        (json.dumps({k: v for k, v in GOOD_RECORD.items() if k != "evidence"}),
         "line 3: missing 'evidence' (required: question, answer, chapter"),
    ],
)
def test_qa_file_errors_name_file_line_and_field(tmp_path, bad_line, expected):
    path = tmp_path / "my_qa.jsonl"
    path.write_text(f"{json.dumps(GOOD_RECORD)}\n\n{bad_line}\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"my_qa\.jsonl") as error:
        utils.load_qa(path)
    assert expected in str(error.value)
    path.write_text(json.dumps(GOOD_RECORD) + "\n", encoding="utf-8")
    assert utils.load_qa(path) == [GOOD_RECORD]


BOOK_LIKE = "Alice’s Adventures in Wonderland\n\n" + "Alice was very tired.\n" * 6000
NOT_BOOKS = {
    "empty": (b"", "is empty"),
    "whitespace": (b"  \n\n ", "is empty"),
    "latin-1": ("Alice’s Adventures — café".encode("cp1252"), "is not UTF-8"),
    "html": (b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title>", "web page"),
    "other book": (("Pride and Prejudice\n" + "It is a truth.\n" * 9000).encode(), "title"),
    "cut short": (BOOK_LIKE[:5000].encode(), "characters"),
}


@pytest.fixture
def no_book_override(monkeypatch):
    monkeypatch.delenv(utils.BOOK_ENV, raising=False)


@pytest.mark.parametrize("kind", NOT_BOOKS)
def test_a_cache_that_is_not_the_book_is_refused(tmp_path, no_book_override, kind):
    content, problem = NOT_BOOKS[kind]
    cache = tmp_path / "alice.txt"
    cache.write_bytes(content)
    with pytest.raises(ValueError, match=problem) as error:
        utils.load_alice(cache, fetch=pytest.fail)
    assert "alice.txt" in str(error.value) and "Delete it" in str(error.value)
    assert cache.read_bytes() == content  # nothing is overwritten or lost


@pytest.mark.parametrize("kind", NOT_BOOKS)
def test_a_book_file_in_the_environment_that_is_not_the_book_is_refused(
    tmp_path, monkeypatch, kind
):
    content, problem = NOT_BOOKS[kind]
    path = tmp_path / "book.txt"
    path.write_bytes(content)
    monkeypatch.setenv(utils.BOOK_ENV, str(path))
    with pytest.raises(ValueError, match=problem) as error:
        utils.load_corpus()  # nothing downstream ever sees the text
    assert "book.txt" in str(error.value) and f"${utils.BOOK_ENV}" in str(error.value)


def test_a_book_like_file_is_accepted(tmp_path, monkeypatch):
    path = tmp_path / "book.txt"
    path.write_text(BOOK_LIKE, encoding="utf-8")
    monkeypatch.setenv(utils.BOOK_ENV, str(path))
    assert utils.load_alice() == BOOK_LIKE


def saved_checkpoint(path, step=3):
    model = tiny_model()
    optimizers = utils.make_optimizer(model, utils.TrainConfig(), torch.device("cpu"))
    utils.save_checkpoint(path, model, TOKENIZER, optimizers=optimizers, step=step)


@pytest.mark.parametrize("key", ["model", "rng", "tokenizer"])
def test_a_checkpoint_with_a_missing_key_is_a_clear_error(tmp_path, key):
    path = tmp_path / "run.pt"
    saved_checkpoint(path)
    state = torch.load(path, weights_only=True)
    del state[key]
    torch.save(state, path)
    with pytest.raises(ValueError, match=rf"run\.pt: missing '{key}'.*delete it"):
        utils.load_model(path)


def test_a_checkpoint_with_a_missing_model_config_key_is_a_clear_error(tmp_path):
    path = tmp_path / "run.pt"
    saved_checkpoint(path)
    state = torch.load(path, weights_only=True)
    del state["model_config"]["n_head"]
    torch.save(state, path)
    with pytest.raises(ValueError, match="model_config has keys"):
        utils.load_model(path)


@pytest.mark.parametrize("failure", [OSError("No space left on device"), KeyboardInterrupt()])
def test_a_failed_checkpoint_write_keeps_the_old_one_and_no_temporary_file(
    tmp_path, monkeypatch, failure
):
    path = tmp_path / "run.pt"
    saved_checkpoint(path, step=3)
    before = path.read_bytes()

    def save_half_then_fail(obj, file):
        file.write(b"half a checkpoint")
        raise failure

    monkeypatch.setattr(torch, "save", save_half_then_fail)
    with pytest.raises(type(failure)):
        saved_checkpoint(path, step=4)
    assert list(tmp_path.iterdir()) == [path]  # the temporary file is gone
    assert path.read_bytes() == before
    monkeypatch.undo()
    assert utils.load_checkpoint(path)["step"] == 3


@pytest.mark.parametrize("n", [0, 1])
def test_evaluation_data_too_short_to_grade(n):
    with pytest.raises(ValueError, match=rf"at least 2 tokens.*got {n}"):
        utils.evaluate_text(tiny_model(), torch.zeros(n, dtype=torch.long))


def test_evaluate_qa_refuses_an_empty_split():
    with pytest.raises(ValueError, match="records is empty"):
        utils.evaluate_qa(None, None, [])


CHARS = utils.CharTokenizer.from_texts(["abc de"])
RECORD = {"question": "Who was late?", "answer": "the rabbit", "evidence": "the rabbit"}


@pytest.mark.parametrize(
    ("call", "error", "named"),
    [
        (lambda: TOKENIZER.encode(12345), TypeError, "text must be a string, got 12345"),
        (lambda: TOKENIZER.decode("abc"), TypeError, "ids must be a sequence of integer"),
        (lambda: TOKENIZER.decode(7), TypeError, "ids must be"),
        (lambda: utils.encode_qa([{"question": "Who?"}], TOKENIZER, 64), ValueError,
         r"records\[0\]: missing 'answer'"),
        (lambda: utils.encode_qa(["Who?"], TOKENIZER, 64), TypeError, r"records\[0\] must be"),
        (lambda: utils.BPETokenizer.train(123, CHARS, 5), TypeError, "text must be a string"),
        (lambda: utils.BPETokenizer.train("abc", CHARS, -1), ValueError, "num_merges must be"),
        (lambda: utils.BPETokenizer.train("abc", "abc", 2), TypeError, "chars must be a Char"),
        (lambda: utils.BPETokenizer(CHARS, [(0, 99)]), ValueError, r"merges\[0\] must be two"),
        (lambda: utils.BPETokenizer(CHARS, [(0,)]), ValueError, r"merges\[0\] must be two"),
        (lambda: utils.BPETokenizer(CHARS, []).encode(None), TypeError, "text must be"),
        (lambda: utils.BPETokenizer(CHARS, []).decode([0, 42]), ValueError, "ids must be ids"),
        (lambda: utils.BPETokenizer(CHARS, []).decode([-1]), ValueError, r"ids must be.*\[-1\]"),
        (lambda: utils.merge_pair([1, 2], (1,), 9), ValueError, "pair must be two token ids"),
        (lambda: utils.merge_pair("12", (1, 2), 9), TypeError, "ids must be a sequence"),
        (lambda: utils.merge_pair([1, 2], (1, 2), "9"), TypeError, "new_id must be an integer"),
        (lambda: utils.split_chunks(None), TypeError, "text must be a string"),
        (lambda: utils.Retriever(""), ValueError, "text must be a non-empty string"),
        (lambda: utils.Retriever(["a book"]), TypeError, "text must be a string"),
        (lambda: utils.Retriever("a book", k1=-1), ValueError, "k1 must be"),
        (lambda: utils.Retriever("a book", b=2), ValueError, "b must be a number from 0 to 1"),
        (lambda: utils.Retriever("a book").search(None), TypeError, "question must be a string"),
        (lambda: utils.book_windows("a book", stride=0), ValueError, "stride must be an integer"),
        (lambda: utils.book_windows("a book", width=0), ValueError, "width must be an integer"),
        (lambda: utils.evidence_found({"question": "?"}, "text"), ValueError,
         "record: missing 'evidence'"),
        (lambda: utils.evidence_found(RECORD, None), TypeError, "passage must be a string"),
        (lambda: utils.FinetunePlan(mode="closd"), ValueError,
         "FinetunePlan.mode must be 'closed', 'open' or 'both', got 'closd'"),
        (lambda: utils.FinetunePlan(book_fraction=1.5), ValueError, "book_fraction must be"),
        (lambda: utils.FinetunePlan(dev="yes"), ValueError, "dev must be True or False"),
        (lambda: utils.qa_prompt(None), TypeError, "question must be a string"),
        (lambda: utils.qa_prompt("Who?", 3), TypeError, "passage must be None or a string"),
        (lambda: utils.answer(tiny_model(), TOKENIZER, 42), TypeError, "question must be"),
        (lambda: utils.answer(tiny_model(), TOKENIZER, "who?", max_new_tokens=-1), ValueError,
         "max_new_tokens must be an integer >= 0, got -1"),
        (lambda: utils.answers(tiny_model(), TOKENIZER, ["who?"], batch_size=0), ValueError,
         "batch_size must be an integer >= 1, got 0"),
        (lambda: utils.qa_split([RECORD], "test"), ValueError,
         "split must be one of train, paraphrase, unseen, never_read, reversal, got 'test'"),
        (lambda: utils.generate(tiny_model(), TOKENIZER, None), TypeError, "prompt must be"),
        (lambda: utils.generate(tiny_model(), TOKENIZER, "a", stop=""), TypeError, "stop must"),
        (lambda: utils.generate(tiny_model(), TOKENIZER, "a", seed=1.5), ValueError, "seed must"),
        (lambda: utils.generate_ids(tiny_model(), [], 3), ValueError, "ids is empty"),
        (lambda: utils.generate_ids(tiny_model(), "alice", 3), TypeError, "ids must be"),
        (lambda: utils.generate_ids(tiny_model(), [1], 3, stop_ids=[1.5]), TypeError, "stop_ids"),
        (lambda: utils.evaluate_qa(tiny_model(), TOKENIZER, [{"question": "Who?"}]), ValueError,
         r"records\[0\]: missing 'answer'"),
        (lambda: utils.evaluate_qa(tiny_model(), TOKENIZER, [RECORD], retriever="bm25"),
         TypeError, "retriever must be None or a utils.Retriever"),
    ],
)
def test_public_helpers_name_the_bad_argument(call, error, named):
    with pytest.raises(error, match=named):
        call()


def test_a_qa_file_with_an_unknown_split_names_line_and_split(tmp_path):
    path = tmp_path / "qa.jsonl"
    path.write_text(json.dumps({**GOOD_RECORD, "split": "tset"}) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"line 1: 'split' must be one of train, .*'tset'"):
        utils.load_qa(path)


def test_a_checkpoint_cut_in_half_names_the_file(tmp_path):
    path = tmp_path / "base.pt"
    utils.save_checkpoint(path, tiny_model(), TOKENIZER)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ValueError, match=r"base\.pt is not a readable checkpoint.*truncated"):
        utils.load_checkpoint(path)
    with pytest.raises(ValueError, match=r"base\.pt is not a readable checkpoint"):
        utils.load_model(path)
