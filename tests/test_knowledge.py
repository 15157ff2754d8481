"""The knowledge base: every topic file valid and complete, sourced, linked to allowed HTTPS domains; the small
intents and question phrasings in place; no evaluation text among the patterns."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bot.knowledge import LANGS, QUESTIONS_FILE, TAXONOMY_FILE, TOPICS_DIR, Question, Taxonomy, Topic, TopicFile, load_knowledge
from bot.messages import CATALOGUE_FILES, _catalogue
from inference.text import fold

DATA = Path(__file__).with_name("data")
CHAT_SETS = ("dev", "red_flags_dev", "red_flags_test", "ordinary", "out_of_scope", "language", "dialogues")
KEPT_INTENTS = {"greeting", "goodbye", "thanks", "creator", "switch_language", "capabilities", "how_to_send",
                "tumor_types_detected", "result_meaning", "how_ai_works", "delete_data", "anxiety", "emergency",
                "crisis", "out_of_scope"}


@pytest.fixture(scope="module")
def kb():
    return load_knowledge()


@pytest.fixture(scope="module")
def taxonomy() -> Taxonomy:
    return Taxonomy.model_validate_json(TAXONOMY_FILE.read_text(encoding="utf-8"))


def topic_files() -> list[Path]:
    return sorted(TOPICS_DIR.glob("*.json"))


def test_the_enums_are_the_taxonomys_ids(taxonomy):
    assert set(taxonomy.questions) == set(Question)
    assert set(taxonomy.topics) == set(Topic)


@pytest.mark.parametrize("path", topic_files(), ids=lambda p: p.stem)
def test_every_topic_file_follows_the_format(path):
    file = TopicFile.model_validate_json(path.read_text(encoding="utf-8"))  # extra keys, bad links, short texts fail
    assert file.topic.value == path.stem
    for lang in LANGS:
        assert file.names.get(lang), lang
        assert file.lexicon.get(lang), lang
        assert all(term == term.lower() for term in file.lexicon[lang]), [t for t in file.lexicon[lang] if t != t.lower()]
    assert not file.undefined_sources(), file.undefined_sources()


def test_every_taxonomy_cell_is_answered_in_both_languages(kb, taxonomy):
    missing = [f"{topic}.{q}" for topic, spec in taxonomy.topics.items() for q in spec.cells
               if topic not in kb.topics or q not in kb.topics[topic].answers]
    assert not missing, missing
    cells = sum(len(f.answers) for f in kb.topics.values())
    assert cells >= 90, cells


def test_every_link_and_source_is_https_on_the_allow_list(kb):
    domains = set(kb.allowed_link_domains)
    assert {"who.int", "cancer.gov", "medlineplus.gov", "contraelcancer.es", "nhs.uk", "radiologyinfo.org",
            "thebraintumourcharity.org", "fundacionmencia.org"} <= domains
    urls = [link.url for it in kb.intents.values() for links in it.links.values() for link in links]
    urls += [s["url"] for s in kb.sources.values() if s.get("url")]
    for file in kb.topics.values():
        urls += [a.links[lang].url for a in file.answers.values() for lang in a.links]
    bad = [u for u in urls if not kb.link_allowed(u) or re.search(r"\s", u)]
    assert not bad, bad


def test_each_answer_links_both_languages_and_names_its_sources(kb):
    for file in kb.topics.values():
        for question, answer in file.answers.items():
            assert set(answer.links) == set(LANGS), (file.topic, question)
            assert answer.sources, (file.topic, question)


def test_a_source_key_means_one_thing_in_every_file(kb):
    seen: dict[str, tuple[str, str]] = {}
    clashes = []
    for file in kb.topics.values():
        for key, source in file.sources.items():
            if key in seen and seen[key][1] != source.url:
                clashes.append((key, seen[key][0], file.topic.value))
            seen.setdefault(key, (file.topic.value, source.url))
    assert not clashes, clashes


def test_the_allow_list_rejects_lookalike_hosts(kb):
    domain = kb.allowed_link_domains[0]
    assert kb.link_allowed(f"https://{domain}/page")
    assert kb.link_allowed(f"https://www.{domain}/page")
    assert not kb.link_allowed(f"http://{domain}/page")
    assert not kb.link_allowed(f"https://{domain}.evil.example/page")
    assert not kb.link_allowed(f"https://evil{domain}/page")


def test_the_bot_accuracy_answer_quotes_the_manifest_not_typed_numbers(kb):
    answer = kb.topics[Topic.BOT].answers[Question.ACCURACY]
    for text in (answer.es, answer.en):
        assert "{accuracy_by_sequence}" in text
        assert not re.search(r"\d+([.,]\d+)?\s?%", text)


def test_only_the_small_intents_remain_and_each_can_be_answered(kb):
    assert set(kb.intents) == KEPT_INTENTS
    for intent in kb.intents.values():
        if intent.category != "safety":  # emergencies are found by the safety layer, never by the classifier
            for lang in LANGS:
                assert len(intent.patterns.get(lang, ())) >= 12, (intent.tag, lang)
        if intent.cell:
            topic, _, question = intent.cell.partition(".")
            assert Question(question) in kb.topics[Topic(topic)].answers, intent.cell
        else:
            assert all(intent.responses.get(lang) for lang in LANGS), intent.tag
        for tag in intent.follow_ups:
            if "." in tag:
                topic, _, question = tag.partition(".")
                assert Topic(topic) in Topic and Question(question) in Question, tag
            else:
                assert tag in kb.intents, (intent.tag, tag)


def test_crisis_and_emergency_answers_give_the_numbers(kb):
    crisis, emergency = kb.intents["crisis"].responses, kb.intents["emergency"].responses
    assert "024" in crisis["es"][0] and "112" in crisis["es"][0] and "988" in crisis["es"][0]
    assert "988" in crisis["en"][0] and "911" in crisis["en"][0] and "024" in crisis["en"][0]
    assert "112" in emergency["es"][0] and "911" in emergency["en"][0]


def test_question_phrasings_cover_every_question_in_both_languages(kb):
    raw = json.loads(QUESTIONS_FILE.read_text(encoding="utf-8"))["questions"]
    assert set(raw) == {q.value for q in Question}
    for question, by_lang in raw.items():
        for lang in LANGS:
            assert len(by_lang[lang]) >= 8, (question, lang)


def _pattern_texts(kb, min_words: int = 1) -> set[str]:
    """Every pattern, and every phrasing with each topic's name put in; only those of `min_words` or more own words."""
    names = [n for f in kb.topics.values() for n in f.names.values()] or ["glioma"]
    long_enough = lambda p: len(p.replace("{t}", " ").split()) >= min_words  # noqa: E731
    texts = {fold(p) for it in kb.intents.values() for ps in it.patterns.values() for p in ps if long_enough(p)}
    for by_lang in kb.phrasings.values():
        for phrasings in by_lang.values():
            for p in filter(long_enough, phrasings):
                texts |= {fold(p.replace("{t}", name)) for name in names} if "{t}" in p else {fold(p)}
    return texts


def test_no_evaluation_text_is_a_training_pattern(kb):
    """Short canonical questions ("is it cancer?", "glioma symptoms") are bound to coincide; longer ones must not."""
    texts = _pattern_texts(kb, min_words=5)
    leaks = []
    for name in CHAT_SETS:
        path = DATA / "chat" / f"{name}.json"
        if not path.exists():
            continue
        items = json.loads(path.read_text(encoding="utf-8"))
        said = [t["user"] for d in items for t in d["turns"] if "user" in t] if name == "dialogues" else [i["text"] for i in items]
        leaks += [(name, s) for s in said if fold(s) in texts]
    held_out = json.loads((DATA / "intents_eval.json").read_text(encoding="utf-8"))
    for section in ("in_scope", "out_of_scope", "red_flags", "not_red_flags"):
        leaks += [("intents_eval", i["text"]) for i in held_out[section] if fold(i["text"]) in texts]
    assert not leaks, leaks[:20]


def test_the_two_message_catalogues_merge_without_a_shared_key():
    keys = [set(json.loads(p.read_text(encoding="utf-8"))) for p in CATALOGUE_FILES]
    assert not keys[0] & keys[1], keys[0] & keys[1]
    catalogue = _catalogue()
    chat = json.loads(CATALOGUE_FILES[1].read_text(encoding="utf-8"))
    for key in chat:
        assert all(catalogue[key].get(lang) for lang in LANGS), key
    for question in Question:
        assert f"question.{question}" in catalogue
