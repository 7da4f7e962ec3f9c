"""Generation: KV cache equals no cache, sampling filters, stop strings, prompts of any length."""

import pytest
import torch
import utils
from helpers import TOKENIZER, tiny_batches, tiny_model


@pytest.fixture(scope="module")
def model():
    m = tiny_model(block_size=16)
    cfg = utils.TrainConfig(
        max_steps=40, batch_size=8, warmup_steps=5, eval_interval=40, eval_iters=1
    )
    utils.train(m, tiny_batches(), cfg, tokenizer=TOKENIZER, progress=False)
    return m.eval()


@pytest.mark.parametrize(
    "prompt", ["alice was", "", "the bank. alice was beginning to get very tired"]
)
def test_cached_and_uncached_greedy_give_identical_text(model, prompt):
    # 60 new tokens with a 16-token block: the context window slides several times.
    kwargs = dict(max_new_tokens=60, temperature=0.0)
    cached = utils.generate(model, TOKENIZER, prompt, use_cache=True, **kwargs)
    uncached = utils.generate(model, TOKENIZER, prompt, use_cache=False, **kwargs)
    assert cached == uncached and len(cached) == 60


def test_cached_and_uncached_sampling_agree_with_the_same_seed(model):
    kwargs = dict(max_new_tokens=50, temperature=1.0, top_p=0.9, seed=7)
    assert utils.generate(model, TOKENIZER, "alice", use_cache=True, **kwargs) == utils.generate(
        model, TOKENIZER, "alice", use_cache=False, **kwargs
    )


def test_top_k_one_is_greedy(model):
    greedy = utils.generate(model, TOKENIZER, "sister", 40, temperature=0.0)
    assert (
        utils.generate(model, TOKENIZER, "sister", 40, temperature=1.0, top_k=1, seed=3) == greedy
    )


def test_seed_makes_sampling_reproducible(model):
    a = utils.generate(model, TOKENIZER, "a", 40, seed=1)
    assert a == utils.generate(model, TOKENIZER, "a", 40, seed=1)
    assert a != utils.generate(model, TOKENIZER, "a", 40, seed=2)


def test_next_token_probs_filters():
    logits = torch.tensor([3.0, 2.0, 1.0, 0.0])
    assert torch.equal(utils.next_token_probs(logits, 0.0), torch.tensor([1.0, 0, 0, 0]))
    top2 = utils.next_token_probs(logits, 1.0, top_k=2)
    assert (top2[2:] == 0).all() and top2.sum().item() == pytest.approx(1.0)
    probs = logits.softmax(-1)  # 0.644, 0.237, 0.087, 0.032
    nucleus = utils.next_token_probs(logits, 1.0, top_p=0.8)  # needs the first two tokens
    assert (nucleus[:2] > 0).all() and (nucleus[2:] == 0).all()
    assert nucleus[0] / nucleus[1] == pytest.approx((probs[0] / probs[1]).item())
    assert (utils.next_token_probs(logits, 1.0, top_p=0.5)[1:] == 0).all()
    hot, cold = utils.next_token_probs(logits, 2.0), utils.next_token_probs(logits, 0.5)
    assert cold[0] > probs[0] > hot[0]
    with pytest.raises(ValueError):
        utils.next_token_probs(logits, 1.0, top_p=0.0)


def test_stop_string_cuts_the_text(model):
    full = utils.generate(model, TOKENIZER, "alice", 40, temperature=0.0)
    stop = full[10:12]
    cut = utils.generate(model, TOKENIZER, "alice", 40, temperature=0.0, stop=stop)
    assert cut == full[: full.index(stop)]


def test_prompt_longer_than_the_block_is_cropped_from_the_left(model):
    long_prompt = "the bank was very tired " * 3  # 72 characters, block is 16
    text = utils.generate(model, TOKENIZER, long_prompt, 20, temperature=0.0)
    tail = utils.generate(model, TOKENIZER, long_prompt[-16:], 20, temperature=0.0)
    assert text == tail


def test_unknown_prompt_characters_raise_the_tokenizer_error(model):
    with pytest.raises(ValueError, match="not in the vocabulary"):
        utils.generate(model, TOKENIZER, "alice 42 #", 5)


def test_rows_decoded_together_match_generate_ids_one_by_one(model):
    # Equal-length prompts, 40 new tokens with a 16-token block: the window slides in the batch.
    prompts = [TOKENIZER.encode(p) for p in ("alice was", "the bear.", "she is ok")]
    stop = TOKENIZER.encode("e")
    greedy = lambda logits: logits.argmax(-1, keepdim=True)
    together = utils.decode_rows(model, torch.tensor(prompts), 40, greedy, stop)
    for ids, (new, stopped) in zip(prompts, together, strict=True):
        alone = utils.generate_ids(model, ids, 40, temperature=0.0, stop_ids=stop)
        assert new == alone and stopped == (alone[-1:] == stop)
    unstopped = utils.decode_rows(model, torch.tensor(prompts), 40, greedy)
    for ids, (new, stopped) in zip(prompts, unstopped, strict=True):
        assert new == utils.generate_ids(model, ids, 40, temperature=0.0) and not stopped


def test_answers_to_many_questions_are_answer_one_by_one(model):
    questions = ["who was late?", "what did alice drink?", "who is dinah?", "why?", "who was sad?"]
    passages = [None] * len(questions)  # open-book: test_released.py (this vocabulary lacks "p")
    together = utils.answers(model, TOKENIZER, questions, passages, max_new_tokens=30, batch_size=2)
    for question, passage, (text, stopped) in zip(questions, passages, together, strict=True):
        assert text == utils.answer(model, TOKENIZER, question, passage, max_new_tokens=30)
        prompt = utils.qa_prompt(question, passage)
        full = utils.generate(model, TOKENIZER, prompt, 30, temperature=0.0)
        assert stopped == (utils.END_TAG in full)
    with pytest.raises(ValueError, match="passages must be one per question"):
        utils.answers(model, TOKENIZER, questions, passages[:2])
