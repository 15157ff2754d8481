"""Language per message: a message clearly in one language is answered in it, whatever Telegram's locale;
short or ambiguous messages follow the locale; the chosen method beats the function-word counter."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.loader import chat_router
from inference.text import detect_language

LANGUAGE_SET = Path(__file__).with_name("data") / "chat" / "language.json"


@pytest.fixture(scope="module")
def router():
    return chat_router()


@pytest.mark.parametrize("text,lang", [
    ("tell me about meningioma", "en"), ("what is a glioma", "en"), ("is it serious?", "en"), ("thanks a lot", "en"),
    ("¿qué es un glioblastoma?", "es"), ("que es un glioma sin acentos", "es"), ("y como se trata", "es"),
    ("muchas gracias", "es"), ("pituitary adenoma", "en"), ("adenoma de hipofisis", "es"),
])
def test_short_messages_are_answered_in_their_own_language(router, text, lang):
    assert router.language_of(text) == lang
    assert router.answer(text).lang == lang


def test_a_message_clearly_in_the_other_language_beats_the_telegram_locale(router):
    assert router.language_of("tell me about meningioma", "es-ES") == "en"
    assert router.language_of("¿qué síntomas da un meningioma?", "en-GB") == "es"
    assert detect_language("what is a glioma", "es") == "en"


def test_an_ambiguous_message_follows_the_locale(router):
    assert router.language_of("glioma?", "en") == "en"
    assert router.language_of("glioma?", "es") == "es"
    assert router.language_of("ok", "en-US") == "en"


def test_with_no_letters_spanish_is_the_default(router):
    assert router.language_of("😀 1234") == "es"


def test_mixed_spanish_and_english_gets_one_language_and_an_answer(router):
    reply = router.answer("hola, what is a meningioma exactamente?")
    assert reply.lang in ("es", "en") and reply.topic == "meningioma"


def test_language_accuracy_target_on_short_messages(router):
    if not LANGUAGE_SET.exists():
        pytest.skip("tests/data/chat/language.json is not present")
    items = json.loads(LANGUAGE_SET.read_text(encoding="utf-8"))
    per_lang = {lang: [i for i in items if i["lang"] == lang] for lang in ("es", "en")}
    assert all(len(v) >= 200 for v in per_lang.values())
    right = sum(router.language_of(i["text"]) == i["lang"] for i in items)
    counter = sum(detect_language(i["text"]) == i["lang"] for i in items)
    assert right / len(items) >= 0.98, right / len(items)
    assert right >= counter  # the chosen method is not worse than the plain function-word counter


def test_a_third_language_with_one_look_alike_word_follows_the_locale(router):
    text = "Was ist ein Hirntumor und wie wird er behandelt?"  # "was" is an English word too
    assert router.language_of(text, "es") == "es" and router.language_of(text, "en") == "en"
