"""The knowledge base: topic files (topics × questions), the taxonomy, question phrasings, the small
social/bot intents and the red-flag rules, loaded into typed models.

Topic files are validated with pydantic so a writer's slip (a missing language, an undefined source,
an http link) is caught by tests/test_knowledge.py, not by a user. At run time a cell that is missing or a
link that is off the allow-list is not fatal: the router answers the nearest cell and drops the link.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from enum import StrEnum
from importlib.resources import files
from pathlib import Path
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from inference.errors import ConfigurationError

HERE = Path(str(files(__name__)))  # package data, wherever the package is installed
KNOWLEDGE_FILE = HERE / "intents.json"
TAXONOMY_FILE = HERE / "taxonomy.json"
QUESTIONS_FILE = HERE / "questions.json"
RED_FLAGS_FILE = HERE / "red_flags.json"
TOPICS_DIR = HERE / "topics"
LEXICON_FILE = HERE / "lexicon.json"
CUES_FILE = HERE / "question_cues.json"
LANGS = ("es", "en")

log = logging.getLogger(__name__)


class Lang(StrEnum):
    ES = "es"
    EN = "en"


class Question(StrEnum):
    """The question ids of taxonomy.json (tests/test_knowledge.py checks the two agree)."""

    WHAT_IS = "what_is"
    SYMPTOMS = "symptoms"
    CAUSES = "causes"
    DIAGNOSIS = "diagnosis"
    GRADE = "grade"
    TREATMENT = "treatment"
    PROGNOSIS = "prognosis"
    RECURRENCE = "recurrence"
    LIVING = "living"
    ASK_DOCTOR = "ask_doctor"
    AFTER_RESULT = "after_result"
    SAFETY = "safety"
    CONTRAST = "contrast"
    DURATION = "duration"
    CLAUSTROPHOBIA = "claustrophobia"
    PREPARATION = "preparation"
    SEQUENCES = "sequences"
    REPORT = "report"
    CANT_READ = "cant_read"
    ACCURACY = "accuracy"
    PRIVACY = "privacy"
    LIMITS = "limits"


class Topic(StrEnum):
    """The topic ids of taxonomy.json."""

    GLIOMA = "glioma"
    GLIOBLASTOMA = "glioblastoma"
    ASTROCYTOMA = "astrocytoma"
    OLIGODENDROGLIOMA = "oligodendroglioma"
    MENINGIOMA = "meningioma"
    PITUITARY = "pituitary"
    PROLACTINOMA = "prolactinoma"
    BRAIN_TUMOUR = "brain_tumour"
    METASTASES = "metastases"
    CHILDREN = "children"
    MRI = "mri"
    CT_VS_MRI = "ct_vs_mri"
    BOT = "bot"


# Questions that only make sense of one topic: asked without a topic, they are about that topic.
MRI_QUESTIONS = frozenset({Question.SAFETY, Question.CONTRAST, Question.DURATION, Question.CLAUSTROPHOBIA,
                           Question.PREPARATION, Question.SEQUENCES, Question.REPORT})
BOT_QUESTIONS = frozenset({Question.CANT_READ, Question.ACCURACY, Question.PRIVACY, Question.LIMITS})


@dataclass(frozen=True)
class Link:
    title: str
    url: str


# ---- topic files (bot/knowledge/topics/<topic>.json) -------------------------------------------


class SourceModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=3)
    url: str
    publisher: str = Field(min_length=2)


class LinkModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=3)
    url: str

    @field_validator("url")
    @classmethod
    def _https(cls, url: str) -> str:
        if urlparse(url).scheme != "https" or any(ch.isspace() for ch in url):
            raise ValueError(f"not an https URL: {url!r}")
        return url


class AnswerModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    es: str = Field(min_length=40)
    en: str = Field(min_length=40)
    sources: list[str] = Field(min_length=1)
    links: dict[Lang, LinkModel]


class TopicFile(BaseModel):
    """One topic file, exactly as the knowledge-base writers were told to write it."""

    model_config = ConfigDict(extra="forbid")
    topic: Topic
    names: dict[Lang, str]
    lexicon: dict[Lang, list[str]]
    sources: dict[str, SourceModel]
    answers: dict[Question, AnswerModel]

    def undefined_sources(self) -> set[str]:
        return {s for a in self.answers.values() for s in a.sources} - set(self.sources)


class TaxonomyTopic(BaseModel):
    parent: Topic | None
    cells: list[Question]


class Taxonomy(BaseModel):
    questions: dict[Question, str]
    topics: dict[Topic, TaxonomyTopic]

    def chain(self, topic: Topic) -> list[Topic]:
        """The topic and its ancestors, nearest first (a sub-type borrows its parent's answers)."""
        out: list[Topic] = []
        while topic is not None and topic not in out:
            out.append(topic)
            topic = self.topics[topic].parent if topic in self.topics else None
        return out


# ---- the small intents (intents.json) ----------------------------------------------------------


@dataclass(frozen=True)
class Intent:
    tag: str
    category: str
    content: bool
    patterns: dict[str, tuple[str, ...]]
    responses: dict[str, tuple[str, ...]]
    sources: tuple[str, ...]
    links: dict[str, tuple[Link, ...]]
    follow_ups: tuple[str, ...]
    cell: str | None = None  # "topic.question": the answer lives in that topic file (one text, one place)


@dataclass(frozen=True)
class Cell:
    """One answered topic × question, in both languages."""

    topic: Topic
    question: Question
    text: dict[str, str]
    sources: tuple[str, ...]
    links: dict[str, Link]


@dataclass(frozen=True)
class KnowledgeBase:
    intents: dict[str, Intent]
    sources: dict[str, dict]
    allowed_link_domains: tuple[str, ...]
    meta: dict
    taxonomy: Taxonomy | None = None
    topics: dict[Topic, TopicFile] = field(default_factory=dict)
    phrasings: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)  # question -> lang -> texts
    red_flags: dict = field(default_factory=dict)  # raw red_flags.json, compiled by bot.nlu.safety
    lexicon: dict = field(default_factory=dict)  # raw lexicon.json: the router's extra topic names and markers
    question_cues: dict = field(default_factory=dict)  # raw question_cues.json, compiled by bot.nlu.questions

    def training_samples(self) -> list[tuple[str, str, str]]:
        """(text, lang, label) for the classifier: question phrasings plus the small intents' patterns."""
        samples = [(p, lang, q) for q, by_lang in self.phrasings.items() for lang in LANGS for p in by_lang.get(lang, ())]
        samples += [(p, lang, tag) for tag, it in self.intents.items() for lang in LANGS for p in it.patterns.get(lang, ())]
        return samples

    def link_allowed(self, url: str) -> bool:
        parsed = urlparse(url)
        host = (parsed.hostname or "").lower()
        return parsed.scheme == "https" and any(host == d or host.endswith("." + d) for d in self.allowed_link_domains)

    def cell(self, topic: Topic, question: Question) -> Cell | None:
        """The topic file's own answer for this cell, or None."""
        file = self.topics.get(topic)
        answer = file.answers.get(question) if file else None
        if answer is None:
            return None
        links = {lang.value: Link(ln.title, ln.url) for lang, ln in answer.links.items() if self.link_allowed(ln.url)}
        return Cell(topic, question, {"es": answer.es, "en": answer.en}, tuple(answer.sources), links)

    def topic_name(self, topic: Topic, lang: str) -> str:
        file = self.topics.get(topic)
        return file.names.get(Lang(lang), topic.value) if file else topic.value.replace("_", " ")


def _intent(item: dict) -> Intent:
    return Intent(
        tag=item["tag"],
        category=item.get("category", ""),
        content=bool(item.get("content", False)),
        patterns={lang: tuple(v) for lang, v in item.get("patterns", {}).items()},
        responses={lang: tuple(v) for lang, v in item.get("responses", {}).items()},
        sources=tuple(item.get("sources", ())),
        links={lang: tuple(Link(ln["title"], ln["url"]) for ln in v) for lang, v in item.get("links", {}).items()},
        follow_ups=tuple(item.get("follow_ups", ())),
        cell=item.get("cell"),
    )


def load_topic_files(directory: Path = TOPICS_DIR) -> dict[Topic, TopicFile]:
    """Every topic file that exists (writers add them over time); an invalid one raises."""
    topics: dict[Topic, TopicFile] = {}
    for path in sorted(directory.glob("*.json")):
        try:
            file = TopicFile.model_validate_json(path.read_text(encoding="utf-8"))
        except ValidationError as exc:
            raise KnowledgeError(f"topic file {path}: {_one_line(exc)}") from None
        if file.topic.value != path.stem:
            raise KnowledgeError(f"topic file {path} declares topic {file.topic.value!r}")
        topics[file.topic] = file
    return topics


class KnowledgeError(ConfigurationError):
    """A knowledge file is missing or malformed: the chat cannot start without it (least of all the red flags)."""


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise KnowledgeError(f"knowledge file {path} cannot be read ({exc.strerror or exc})") from None
    except json.JSONDecodeError as exc:
        raise KnowledgeError(f"knowledge file {path} is not valid JSON (line {exc.lineno}: {exc.msg})") from None


def load_knowledge(directory: Path = HERE) -> KnowledgeBase:
    """Every knowledge file of `directory`, validated; a missing or malformed one raises KnowledgeError naming it."""
    raw = _read_json(directory / KNOWLEDGE_FILE.name)
    questions = _read_json(directory / QUESTIONS_FILE.name)["questions"]
    phrasings = {q: {lang: tuple(v) for lang, v in by_lang.items()} for q, by_lang in questions.items()}
    red_flags = _read_json(directory / RED_FLAGS_FILE.name)
    if not {"acute", "defusers", "categories"} <= set(red_flags):
        raise KnowledgeError(f"knowledge file {directory / RED_FLAGS_FILE.name} lacks 'acute', 'defusers' or 'categories'")
    try:
        taxonomy = Taxonomy.model_validate(_read_json(directory / TAXONOMY_FILE.name))
        meta = raw.get("meta", {})
        return KnowledgeBase(
            intents={item["tag"]: _intent(item) for item in raw["intents"]},
            sources=meta.get("sources", {}),
            allowed_link_domains=tuple(meta.get("allowed_link_domains", ())),
            meta=meta,
            taxonomy=taxonomy,
            topics=load_topic_files(directory / TOPICS_DIR.name),
            phrasings=phrasings,
            red_flags=red_flags,
            lexicon=_read_json(directory / LEXICON_FILE.name),
            question_cues=_read_json(directory / CUES_FILE.name),
        )
    except (KeyError, TypeError, ValidationError) as exc:
        raise KnowledgeError(f"knowledge base is malformed: {_one_line(exc)}") from None


def _one_line(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        return f"{exc.title}: {'.'.join(map(str, first['loc']))}: {first['msg']}"
    return f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
