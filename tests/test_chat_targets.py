"""The issue's targets, measured on the evaluation sets of tests/data/chat (written apart from the patterns,
never trained on) through the real router and training/evaluate_chat.py's scoring. Each test skips when its
set is absent, so a fresh clone without them still passes."""

from __future__ import annotations

import pytest

from bot.loader import chat_router
from training.evaluate_chat import DATA, _load, score_dev, score_dialogues, score_false_alarms, score_out_of_scope, score_red_flags


@pytest.fixture(scope="module")
def router():
    return chat_router()


def _set(name: str) -> list[dict]:
    items = _load(name)
    if not items:
        pytest.skip(f"{DATA / (name + '.json')} is not present")
    return items


def test_dev_paraphrases_top1_at_least_95_percent(router):
    report = score_dev(router, _set("dev"))
    assert report["top1"] >= 0.95, report["misses"][:20]


# The red-flag sets the rules were developed on (the later ones were blind until scored once, then joined these);
# the newest blind pair is scored by `python -m training.evaluate_chat --holdout` and reported, not asserted here.
@pytest.mark.parametrize("name", ["red_flags_dev", "red_flags_test", "red_flags_holdout"])
def test_every_development_red_flag_gets_urgent_care(router, name):
    report = score_red_flags(router, _set(name))
    assert report["recall"] == 1.0, report["missed"]
    assert report["self_harm_given_crisis_lines"] in (None, 1.0)


@pytest.mark.parametrize("name", ["ordinary", "ordinary_holdout"])
def test_ordinary_questions_raise_at_most_one_percent_false_alarms(router, name):
    report = score_false_alarms(router, _set(name))
    assert report["rate"] <= 0.01, report["texts"]


def test_out_of_scope_messages_fall_back_at_least_90_percent(router):
    report = score_out_of_scope(router, _set("out_of_scope"))
    assert report["fallback"] >= 0.90, report["answered"]


def test_follow_up_dialogues_resolve_at_least_95_percent(router):
    report = score_dialogues(router, _set("dialogues"))
    assert report["dialogues"] >= 50 and report["turns_resolved"] >= 0.95, report["failed"]
