"""The chat router: topic × question understanding, the nearest honest answer, comparisons, the small intents,
the per-sequence accuracy answer, and no crash on odd text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.accuracy import accuracy_by_sequence
from bot.chat_context import ChatContext
from bot.knowledge import Question, Topic
from bot.loader import chat_router
from bot.settings import Settings

HELD_OUT = Path(__file__).with_name("data") / "intents_eval.json"
GATING = {"gating": {"fitted_on": "validation", "sequences": {
    "t1c": {"detector": {"sensitivity": 0.99, "specificity": 0.95}, "typer": {"accuracy": 0.961},
            "name_type": True, "trust_no_tumor": True},
    "flair": {"detector": {"sensitivity": 0.9, "specificity": None}, "typer": {"accuracy": None},
              "name_type": False, "trust_no_tumor": False}}}}


@pytest.fixture(scope="module")
def router():
    return chat_router()


@pytest.mark.parametrize("text,topic,question", [
    ("can you tell me what gliomas are", "glioma", "what_is"),
    ("my doctor said I have a glioblastoma, how long do I have", "glioblastoma", "prognosis"),
    ("mi hijo tiene un tumor, ¿qué hago?", "children", "after_result"),
    ("is a meningioma usually cancer?", "meningioma", "grade"),
    ("¿Cómo se trata un meningioma?", "meningioma", "treatment"),
    ("Is an MRI dangerous?", "mri", "safety"),
    ("what does contrast mean?", "mri", "contrast"),
    ("¿cuánto dura una resonancia?", "mri", "duration"),
    ("T1 vs T2", "mri", "sequences"),
    ("¿Qué es un glioblastoma?", "glioblastoma", "what_is"),
    ("tell me about meningioma", "meningioma", "what_is"),
    ("q es un gliomma", "glioma", "what_is"),
    ("sintomas de un tumor de hipofisis", "pituitary", "symptoms"),
    ("how accurate is this bot?", "bot", "accuracy"),
    ("what is the difference between a CT and an MRI?", "ct_vs_mri", "what_is"),
])
def test_the_issues_examples_get_their_own_cell(router, text, topic, question):
    reply = router.answer(text)
    assert (reply.topic, reply.question) == (topic, question), reply.intent
    assert reply.kind == "answer" and reply.links and reply.links[0].url.startswith("https://")


def test_answers_come_in_the_language_of_the_message(router):
    en = router.answer("tell me about meningioma")
    es = router.answer("háblame del meningioma")
    assert en.lang == "en" and "meningioma" in en.text.lower()
    assert es.lang == "es" and en.text != es.text


def test_a_topic_name_alone_gets_its_overview(router):
    for text in ("glioma?", "meningiomas", "PROLACTINOMA!!"):
        reply = router.answer(text)
        assert reply.kind == "answer" and reply.question == Question.WHAT_IS, text


def test_two_topics_get_a_comparison(router):
    reply = router.answer("difference between glioma and meningioma")
    assert reply.kind == "answer" and reply.topic == Topic.GLIOMA
    assert "GLIOMA" in reply.text and "MENINGIOMA" in reply.text


def test_a_cell_without_its_own_answer_gets_the_nearest_honest_one(router):
    cell = router.resolve(Topic.GLIOBLASTOMA, Question.LIVING)  # not a glioblastoma cell: its parent's
    assert cell is not None and cell.topic == Topic.GLIOMA
    reply = router.topic("glioblastoma.living", "en")
    assert "nearest" in reply.text and reply.kind == "answer"
    assert router.resolve(Topic.BOT, Question.SYMPTOMS).question == Question.WHAT_IS
    assert router.resolve(Topic.GLIOMA, Question.CONTRAST).topic == Topic.MRI


def test_answers_offer_the_next_questions_of_their_topic(router):
    reply = router.answer("what are the symptoms of a meningioma?")
    tags = [tag for tag, _ in reply.follow_ups]
    assert tags and all(t.startswith("meningioma.") for t in tags) and "meningioma.symptoms" not in tags


def test_the_small_intents_stay(router):
    assert router.answer("hola").intent == "greeting"
    assert router.answer("thank you so much!").intent == "thanks"
    assert router.answer("¿cómo te mando una imagen?").intent == "how_to_send"
    capabilities = router.answer("what can you do?")
    assert (capabilities.topic, capabilities.question) == (Topic.BOT, Question.WHAT_IS)


def test_held_out_small_intent_paraphrases(router):
    items = json.loads(HELD_OUT.read_text(encoding="utf-8"))["in_scope"]
    right = sum(router.answer(i["text"], lang=i["lang"]).intent == i["intent"] for i in items)
    assert right / len(items) >= 0.8, right / len(items)


def test_held_out_out_of_scope_messages_fall_back(router):
    items = json.loads(HELD_OUT.read_text(encoding="utf-8"))["out_of_scope"]
    replies = [router.answer(i["text"], lang=i.get("lang")) for i in items]
    assert sum(r.kind == "fallback" for r in replies) / len(replies) >= 0.9
    assert all(r.intent is None and r.text for r in replies if r.kind == "fallback")


def test_the_accuracy_answer_is_filled_from_the_manifest(router):
    reply = router.answer("how accurate are you?", lang="en")
    assert reply.question == Question.ACCURACY and "{" not in reply.text
    assert accuracy_by_sequence(router.manifest, "en") in reply.text


def test_accuracy_by_sequence_lists_each_sequence_with_its_figures():
    en = accuracy_by_sequence(GATING, "en").splitlines()
    assert len(en) == 2 and en[0].startswith("• T1 after contrast") and "99.0 %" in en[0] and "96.1 %" in en[0]
    assert "Here I name the type" in en[0] and "don't name" in en[1] and "n/a" in en[1]
    es = accuracy_by_sequence(GATING, "es")
    assert "T1 con contraste" in es and "99,0 %" in es and "FLAIR" in es
    assert "not available" in accuracy_by_sequence({"models": {}}, "en")


def test_ask_json_reports_topic_and_question(router, capsys):
    from argparse import Namespace

    from bot.commands.ask import run_ask

    run_ask(Namespace(text=["¿qué", "es", "un", "meningioma?"], lang=None, json=True), Settings())
    row = json.loads(capsys.readouterr().out)
    assert row["topic"] == "meningioma" and row["question"] == "what_is" and row["intent"] == "meningioma.what_is"


@pytest.mark.parametrize("text", ["", "   \n\t ", "😀😀😀", "\x00\x00", "؟؟؟"])
def test_empty_or_symbol_only_text_gets_a_polite_answer(router, text):
    reply = router.answer(text)
    assert reply.kind == "empty" and reply.text


def test_huge_emoji_and_markup_text_is_answered(router):
    assert router.answer("<b>hola</b> **que es un glioma** " + "a" * 10_000).topic == Topic.GLIOMA
    assert router.answer("🧠🧠 meningioma 😟?").topic == Topic.MENINGIOMA
    html = router.answer("<script>alert(1)</script> ¿qué es un meningioma?", lang="es")
    assert "<script>" not in html.text


def test_the_context_passed_in_is_not_changed(router):
    ctx = ChatContext()
    reply = router.answer("¿qué es un meningioma?", context=ctx)
    assert ctx == ChatContext() and reply.context.topic == Topic.MENINGIOMA


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_any_text_gets_an_answer_and_never_raises(router, text):
    reply = router.answer(text)
    assert reply.text and reply.lang in ("es", "en")


@pytest.mark.parametrize("text,intent", [
    ("which kinds of tumour are you able to detect?", "tumor_types_detected"),
    ("what tests are used to detect a brain tumour?", "brain_tumour.diagnosis"),
    ("how do I upload my MRI to you?", "how_to_send"),
    ("good evening bot", "greeting"),
    ("the report mentions a meningioma with mass effect, what does that mean?", "mri.report"),
])
def test_small_intents_and_the_report_survive_a_named_topic(router, text, intent):
    assert router.answer(text, lang="en").intent == intent


@pytest.mark.parametrize("text", ["what should I take for a cold?", "¿qué me pongo para la boda?"])
def test_a_scan_question_without_a_scan_word_or_context_falls_back(router, text):
    assert router.answer(text).kind == "fallback"
