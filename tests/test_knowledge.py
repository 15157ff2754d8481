"""The knowledge base is complete, sourced, linked to allowed HTTPS domains, and separate from the eval set."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bot.knowledge import LANGS, load_knowledge
from inference.text import fold

EVAL = Path(__file__).with_name("data") / "intents_eval.json"
REQUIRED_TOPICS = {
    "greeting", "goodbye", "thanks", "creator", "switch_language", "capabilities", "how_to_send",
    "tumor_types_detected", "result_meaning", "how_ai_works", "accuracy", "not_diagnosis", "glioma_what",
    "glioma_symptoms", "meningioma_what", "meningioma_benign", "pituitary_what", "pituitary_symptoms",
    "symptoms_general", "causes_risk", "benign_vs_malignant", "treatments", "prognosis", "mri_what",
    "privacy_data", "delete_data", "anxiety", "emergency", "out_of_scope",
}


@pytest.fixture(scope="module")
def kb():
    return load_knowledge()


def test_every_required_topic_exists_with_12_patterns_per_language(kb):
    assert REQUIRED_TOPICS <= set(kb.intents)
    for intent in kb.intents.values():
        for lang in LANGS:
            assert len(intent.patterns.get(lang, ())) >= 12, (intent.tag, lang)
            assert intent.responses.get(lang), (intent.tag, lang)


def test_content_answers_name_their_sources_and_carry_one_or_two_links(kb):
    for intent in kb.intents.values():
        if not intent.content:
            continue
        assert intent.sources and all(s in kb.sources for s in intent.sources), intent.tag
        for lang in LANGS:
            assert 1 <= len(intent.links.get(lang, ())) <= 2, (intent.tag, lang)


def test_every_link_is_https_on_the_allow_list(kb):
    assert kb.allowed_link_domains
    urls = [link.url for it in kb.intents.values() for links in it.links.values() for link in links]
    urls += [s["url"] for s in kb.sources.values() if s.get("url")]
    for url in urls:
        assert kb.link_allowed(url), url
        assert not re.search(r"\s", url)


def test_the_allow_list_rejects_lookalike_hosts(kb):
    domain = kb.allowed_link_domains[0]
    assert kb.link_allowed(f"https://{domain}/page")
    assert not kb.link_allowed(f"http://{domain}/page")
    assert not kb.link_allowed(f"https://{domain}.evil.example/page")
    assert not kb.link_allowed(f"https://evil{domain}/page")


def test_follow_ups_point_to_existing_topics(kb):
    for intent in kb.intents.values():
        assert set(intent.follow_ups) <= set(kb.intents), intent.tag


def test_accuracy_answers_quote_placeholders_not_typed_numbers(kb):
    for lang in LANGS:
        for text in kb.intents["accuracy"].responses[lang]:
            assert "{typer_accuracy}" in text
            assert not re.search(r"\d+([.,]\d+)?\s?%", text)


def test_held_out_paraphrases_never_appear_among_training_patterns(kb):
    patterns = {fold(p) for it in kb.intents.values() for ps in it.patterns.values() for p in ps}
    data = json.loads(EVAL.read_text(encoding="utf-8"))
    for section in ("in_scope", "out_of_scope", "red_flags", "not_red_flags"):
        for item in data[section]:
            assert fold(item["text"]) not in patterns, item["text"]
    per_topic = {}
    for item in data["in_scope"]:
        per_topic[(item["intent"], item["lang"])] = per_topic.get((item["intent"], item["lang"]), 0) + 1
    for tag in kb.intents:
        for lang in LANGS:
            assert per_topic.get((tag, lang), 0) >= 3, (tag, lang)
