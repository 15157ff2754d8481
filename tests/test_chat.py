"""The chat router: emergencies first, measured accuracy, honest fallback, and no crash on odd text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from bot.commands.ask import build_router
from bot.settings import Settings
from inference.text import detect_language

EVAL = Path(__file__).with_name("data") / "intents_eval.json"


@pytest.fixture(scope="module")
def router():
    return build_router(Settings().models_dir)


@pytest.fixture(scope="module")
def eval_set():
    return json.loads(EVAL.read_text(encoding="utf-8"))


def test_every_red_flag_is_routed_to_urgent_care(router, eval_set):
    missed = [item["text"] for item in eval_set["red_flags"] if router.answer(item["text"], lang=item["lang"]).kind != "emergency"]
    assert not missed


def test_emergency_answers_give_the_right_number(router):
    es = router.answer("mi padre está teniendo una convulsión ahora mismo", lang="es")
    en = router.answer("I have the worst headache of my life, it started suddenly", lang="en")
    assert es.kind == en.kind == "emergency"
    assert "112" in es.text and "911" in en.text


def test_informational_questions_about_symptoms_are_not_emergencies(router, eval_set):
    alarms = [item["text"] for item in eval_set["not_red_flags"] if router.answer(item["text"], lang=item["lang"]).kind == "emergency"]
    assert len(alarms) <= len(eval_set["not_red_flags"]) // 10, alarms


def test_held_out_paraphrases_reach_the_on_topic_target(router, eval_set):
    items = eval_set["in_scope"]
    correct = sum(router.answer(i["text"], lang=i["lang"]).intent in (i["intent"], None if i["intent"] == "out_of_scope" else "-")
                  for i in items)
    assert correct / len(items) >= 0.95, f"{correct}/{len(items)}"


def test_out_of_scope_questions_fall_back_honestly(router, eval_set):
    replies = [router.answer(i["text"], lang=i.get("lang")) for i in eval_set["out_of_scope"]]
    share = sum(r.intent is None for r in replies) / len(replies)
    assert share >= 0.90
    fallback = next(r for r in replies if r.intent is None)
    assert fallback.kind == "fallback" and fallback.text


def test_the_accuracy_answer_quotes_the_manifest_figures(router):
    manifest = json.loads((Settings().models_dir / "manifest.json").read_text())
    accuracy = manifest["models"]["typer"]["metrics"]["accuracy"]
    reply = router.answer("how accurate is this bot?", lang="en")
    assert reply.intent == "accuracy"
    assert f"{accuracy * 100:.1f} %" in reply.text
    assert "{" not in reply.text


def test_language_comes_from_telegram_first_then_from_the_text():
    assert detect_language("what is a glioma", "es-ES") == "es"
    assert detect_language("what is a glioma") == "en"
    assert detect_language("que es un glioma sin acentos") == "es"


def test_typos_and_missing_accents_are_understood(router):
    assert router.answer("q es un gliomma", lang="es").intent == "glioma_what"
    assert router.answer("sintomas de un tumor de hipofisis", lang="es").intent == "pituitary_symptoms"


@pytest.mark.parametrize("text", ["", "   \n\t ", "😀😀😀", "\x00\x00", "؟؟؟"])
def test_empty_or_symbol_only_text_gets_a_polite_answer(router, text):
    reply = router.answer(text)
    assert reply.kind == "empty" and reply.text


def test_huge_and_markup_text_is_handled(router):
    reply = router.answer("<b>hola</b> **que es un glioma** " + "a" * 10_000)
    assert reply.text
    html = router.answer("<script>alert(1)</script> ¿qué es un meningioma?", lang="es")
    assert "<script>" not in html.text


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_any_text_gets_an_answer_and_never_raises(router, text):
    reply = router.answer(text)
    assert reply.text and reply.lang in ("es", "en")
