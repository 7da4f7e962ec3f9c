"""Knowledge augmentation's statements: coverage, no leak of held-out questions, the shuffle."""

import hashlib
import json

import knowledge
import utils

QA = utils.load_qa()
TOKENIZER = utils.build_tokenizer(utils.load_alice(), QA)
STATEMENTS = knowledge.load_statements()
HELD_OUT_QUESTION = utils.qa_split(QA, "unseen")[0]


def test_every_train_and_unseen_fact_has_five_statements_and_none_leaks_a_held_out_question():
    assert knowledge.statement_problems(STATEMENTS, QA, TOKENIZER) == []
    facts = {r["fact"] for r in STATEMENTS}
    assert facts == {r["fact"] for r in QA if r["split"] in ("train", "unseen")}
    never_read = {r["fact"] for r in utils.qa_split(QA, "never_read")}
    assert not facts & never_read  # the control stays unread


def test_the_check_flags_a_copied_question_a_missing_answer_and_an_unread_fact():
    record = HELD_OUT_QUESTION
    copied = {"fact": record["fact"], "statement": f"{record['question']} {record['answer']}."}
    no_answer = {"fact": record["fact"], "statement": "Alice said nothing at all about it."}
    unread = {"fact": utils.qa_split(QA, "never_read")[0]["fact"], "statement": "Anything."}
    problems = knowledge.statement_problems([copied, no_answer, unread], QA, TOKENIZER, set())
    assert len(problems) == 3
    assert "run of 6 words" in problems[0]
    assert "does not state the answer" in problems[1]
    assert "not a train or unseen fact" in problems[2]


def test_statements_text_keeps_each_facts_statements_more_than_a_window_apart():
    gap = utils.GPTConfig.block_size + 1
    text = knowledge.statements_text(STATEMENTS, gap)
    lines = text.splitlines()
    assert sorted(lines) == sorted(r["statement"] for r in STATEMENTS)  # each exactly once
    fact_of = {r["statement"]: r["fact"] for r in STATEMENTS}
    last_end: dict[str, int] = {}
    offset = 0
    for line in lines:
        fact = fact_of[line]
        if fact in last_end:
            assert offset - last_end[fact] > gap, fact
        offset += len(line) + 1
        last_end[fact] = offset
    assert knowledge.statements_text(STATEMENTS, gap) == text  # the same shuffle every time


def test_the_recorded_arms_ran_on_todays_statements_and_qa_file():
    arms = json.loads(knowledge.OUT.read_text())
    assert set(arms) == set(knowledge.ARMS)
    digest = hashlib.sha256(knowledge.STATEMENTS_PATH.read_bytes()).hexdigest()[:16]
    qa_digest = hashlib.sha256(utils.QA_PATH.read_bytes()).hexdigest()[:16]
    for name, arm in arms.items():
        assert arm["qa_sha256"] == qa_digest, name
        assert arm["statements_sha256"] == (digest if knowledge.ARMS[name][0] else None), name
