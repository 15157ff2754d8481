"""The chat router: red flags first, then topic (lexicon) × question (classifier), with conversation context.

Shared by the Telegram handlers, the console chat and `saveyourlife ask`. Pure: it reads a ChatContext and
returns the next one in the Reply; storing it is the caller's job (bot/chat_session.py).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field, replace
from enum import StrEnum

from inference.intents import IntentModel
from inference.manifest import Manifest
from inference.text import fold, tokens

from .accuracy import accuracy_by_sequence
from .chat_context import TYPE_TOPICS, ChatContext
from .knowledge import BOT_QUESTIONS, MRI_QUESTIONS, Cell, Intent, KnowledgeBase, Link, Question, Topic
from .messages import has, percent, t
from .nlu.language import LanguageGuesser
from .nlu.questions import QuestionClassifier, prepare
from .nlu.safety import RedFlag, SafetyLayer
from .nlu.topics import MASK, TopicFinder, TopicMatch, knowledge_words

EMERGENCY = "emergency"
CRISIS = "crisis"
OUT_OF_SCOPE = "out_of_scope"
RESULT_MEANING = "result_meaning"
SOCIAL = frozenset({"greeting", "goodbye", "thanks", "creator", "switch_language"})
SMALL_TALK = frozenset({"greeting", "goodbye", "thanks"})  # "gracias crack": one odd word is still thanks
QUESTION_LABELS = frozenset(q.value for q in Question)
MRI_FAMILY = frozenset({Topic.MRI, Topic.CT_VS_MRI})
# Topics a small intent may name: with only these, the small intents stay candidates.
# A small intent beats a named topic only with these topics, when the net is sure and, for the bot's
# abilities, the message speaks to the bot ("which tumours can YOU detect?" vs "which tests detect a tumour?").
SMALL_INTENT_TOPICS = {
    "how_to_send": frozenset({Topic.BOT, Topic.MRI}),
    "tumor_types_detected": frozenset({Topic.BOT, Topic.BRAIN_TUMOUR, Topic.METASTASES, Topic.CHILDREN}),
}
SMALL_INTENT_OVER_TOPIC = 0.6
SCAN_WORDS = frozenset("scan scans scanner escaner escaneo prueba exploracion".split())
ADDRESSED = frozenset("you your u tu puedes sabes detectas reconoces distingues identificas encuentras ves lees "
                      "analizas".split())
MAX_INPUT_CHARS = 1000  # understood; red flags are looked for in up to SAFETY_CHARS
SAFETY_CHARS = 4096  # a Telegram message's limit
MAX_COMPARED = 3
# The typer's three tumours; bot/handlers/common.reply_markup shows at most three buttons.
CLARIFY_TOPICS = (Topic.GLIOMA, Topic.MENINGIOMA, Topic.PITUITARY)
# Words that point back at something said before: with them an unknown word does not make a message off-topic.
BACK_REFERENCES = frozenset("it its that this they them those these eso esto ese esa este ello".split())
FOLLOW_UP_STARTS = frozenset("and y e so entonces pues also tambien".split())
# A message of a topic name and only these is "the same question, about this" ("¿y en niños?").
BARE_WORDS = frozenset("and y e o or what whats about how hows en in el la los las lo the of de del a an un una "
                       "with con for para que tal sobre is es are son".split())
RESULT_WORDS = frozenset("result results resultado resultados verdict veredicto analysis analisis inconclusive "
                         "concluyente".split())
NOT_ABOUT_IMAGE = frozenset({q.value for q in MRI_QUESTIONS | BOT_QUESTIONS} | SOCIAL
                            | {"how_to_send", "tumor_types_detected", "how_ai_works", "capabilities", "delete_data",
                               "anxiety"})


class ReplyKind(StrEnum):
    EMERGENCY = "emergency"
    ANSWER = "answer"
    FALLBACK = "fallback"
    EMPTY = "empty"
    CLARIFY = "clarify"


@dataclass(frozen=True)
class Reply:
    text: str  # plain text; callers escape it before any HTML formatting
    lang: str
    intent: str | None  # a small intent's tag, "topic.question" for a knowledge cell, None on fallback
    confidence: float
    kind: ReplyKind
    links: tuple[Link, ...] = ()
    follow_ups: tuple[tuple[str, str], ...] = field(default=())  # (tag or "topic.question", button label)
    topic: Topic | None = None
    question: Question | None = None
    red_flag: RedFlag | None = None
    context: ChatContext | None = None  # the conversation's context after this reply
    about_result: bool = False  # the answer explains the user's last image result


def accuracy_values(manifest: Manifest, lang: str) -> dict[str, str]:
    """Measured figures from models/manifest.json, formatted for /about and the accuracy answer."""

    def metric(model: str, *path: str) -> float | None:
        node = manifest.raw.get("models", {}).get(model, {}).get("metrics", {})
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        return node if isinstance(node, (int, float)) else None

    test_images = metric("typer", "n")
    return {
        "typer_accuracy": percent(metric("typer", "accuracy"), lang),
        "typer_macro_f1": percent(metric("typer", "macro_f1"), lang),
        "detector_sensitivity": percent(metric("detector", "operating_point", "sensitivity"), lang),
        "detector_specificity": percent(metric("detector", "operating_point", "specificity"), lang),
        "discriminator_accuracy": percent(metric("discriminator", "accuracy"), lang),
        "test_images": str(int(test_images)) if test_images is not None else t("common.not_available", lang),
        "accuracy_by_sequence": accuracy_by_sequence(manifest, lang),
    }


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class ChatRouter:
    def __init__(self, kb: KnowledgeBase, model: IntentModel, manifest: Manifest) -> None:
        self.kb = kb
        self.manifest = manifest
        keep, known = knowledge_words(kb)
        net = IntentModel(manifest["safety"]) if "safety" in manifest.models else None
        self.safety = SafetyLayer(kb.red_flags, known, net)
        self.topics = TopicFinder(kb, keep, known)
        self.questions = QuestionClassifier(model, kb.question_cues)
        self.languages = LanguageGuesser(kb)

    def language_of(self, text: str, language_code: str | None = None) -> str:
        return self.languages.guess(text, language_code)

    # ---- the entry point ------------------------------------------------------------------------

    def answer(self, text: str, lang: str | None = None, language_code: str | None = None,
               context: ChatContext | None = None, now: dt.datetime | None = None) -> Reply:
        now = now or _now()
        ctx = (context or ChatContext()).fresh(now)
        text = (text or "")[:SAFETY_CHARS]
        lang = lang or self.language_of(text[:MAX_INPUT_CHARS], language_code)
        if not tokens(text):
            return Reply(t("chat.empty", lang), lang, None, 0.0, ReplyKind.EMPTY, context=ctx)
        flag = self.safety.check(text, lang)
        if flag is not None:
            intent = self.kb.intents[CRISIS if flag == RedFlag.SELF_HARM else EMERGENCY]
            reply = self._intent_reply(intent, lang, 1.0, ReplyKind.EMERGENCY)
            return _with(reply, red_flag=flag, context=ctx)
        text = text[:MAX_INPUT_CHARS]
        match = prepare(self.topics, text, lang)
        allowed = self._candidates(match, ctx)
        guess = self.questions.classify(match, lang, allowed)
        if match.topics and allowed is not None and guess.best not in QUESTION_LABELS \
                and guess.confidence < SMALL_INTENT_OVER_TOPIC:  # unsure it is small talk: the topic's question
            guess = self.questions.classify(match, lang, allowed & QUESTION_LABELS)
        label = guess.intent
        question = Question(label) if label in QUESTION_LABELS else None
        if self._about_image(match, ctx, label):
            return self._image_or_meaning(Question.AFTER_RESULT, lang, guess.confidence, ctx)
        if match.topics and label in self.kb.intents and self._small_with_topics(label, match) \
                and guess.confidence >= SMALL_INTENT_OVER_TOPIC:
            return self._small(self.kb.intents[label], lang, guess.confidence, ctx, now, text)
        if match.topics:
            return self._named(match, question, lang, guess.confidence, ctx, now)
        if question is not None:
            return self._question(question, match, lang, guess.confidence, ctx, now, text)
        if label is None or label == OUT_OF_SCOPE or self._off_topic(match, label):
            return self._fallback(lang, guess.confidence, text, ctx)
        if label == RESULT_MEANING:
            return self._image_or_meaning(Question.AFTER_RESULT, lang, guess.confidence, ctx)
        return self._small(self.kb.intents[label], lang, guess.confidence, ctx, now, text)

    def _small(self, intent: Intent, lang: str, confidence: float, ctx: ChatContext, now: dt.datetime,
               text: str) -> Reply:
        if intent.cell:  # a small intent whose answer is a topic file's cell ("what can you do?" → bot.what_is)
            topic, _, cell_question = intent.cell.partition(".")
            return self._cells((Topic(topic),), Question(cell_question), lang, confidence, ctx, now)
        return _with(self._intent_reply(intent, lang, confidence, ReplyKind.ANSWER, text), context=ctx)

    # ---- what the classifier may choose, and when the image is meant ------------------------------

    def _candidates(self, match: TopicMatch, ctx: ChatContext) -> frozenset[str] | None:
        """Labels a message can mean: a named topic's questions (through its parents), or, in a tumour
        conversation, anything but the scan's duration ("how long does he have?" is a prognosis)."""
        taxonomy = self.kb.taxonomy
        if match.topics and taxonomy is not None:
            allowed = {q.value for tp in match.topics for anc in taxonomy.chain(tp)
                       for q in taxonomy.topics[anc].cells}
            if any(tp in MRI_FAMILY for tp in match.topics):
                allowed |= {q.value for q in MRI_QUESTIONS}
            else:  # "what does 'space-occupying lesion' mean on the report?": about the report, whatever it names
                allowed.add(Question.REPORT.value)
            allowed |= {tag for tag in set(self.questions.labels) - QUESTION_LABELS
                        if self._small_with_topics(tag, match)}
            return frozenset(allowed | {q.value for q in BOT_QUESTIONS})
        if ctx.topic is not None and taxonomy is not None:
            # A follow-up: the current topic's questions, the scan's and the bot's, or a small intent.
            allowed = {q.value for anc in taxonomy.chain(ctx.topic) for q in taxonomy.topics[anc].cells}
            allowed |= {q.value for q in MRI_QUESTIONS | BOT_QUESTIONS}
            allowed |= set(self.questions.labels) - QUESTION_LABELS
            if Topic.BRAIN_TUMOUR in taxonomy.chain(ctx.topic):
                allowed.discard(Question.DURATION.value)
            return frozenset(allowed)
        return None

    @staticmethod
    def _small_with_topics(tag: str, match: TopicMatch) -> bool:
        """Social intents may name only the bot ("good morning, bot"); a few others their own topics."""
        if tag in (OUT_OF_SCOPE, RESULT_MEANING, "anxiety"):
            return False
        allowed = SMALL_INTENT_TOPICS.get(tag, frozenset({Topic.BOT}))
        if not all(tp in allowed for tp in match.topics):
            return False
        return tag != "tumor_types_detected" or bool(set(match.masked.split()) & ADDRESSED)

    def _about_image(self, match: TopicMatch, ctx: ChatContext, label: str | None) -> bool:
        """A message about the last image result: it says "result", or, right after an image that named no
        tumour type, any question that is not about MRI, the bot or small talk."""
        if any(tp not in (Topic.BOT, Topic.BRAIN_TUMOUR) for tp in match.topics):
            return False
        words = set(match.masked.split())
        if words & RESULT_WORDS and label not in NOT_ABOUT_IMAGE \
                and (ctx.image is not None or match.topics in ((), (Topic.BOT,))):
            return True  # without an image: say so, and what each result would mean
        if ctx.image is None:
            return False
        untyped = ctx.image_is_latest and TYPE_TOPICS.get(ctx.image.tumor_type or "") is None
        return untyped and label not in NOT_ABOUT_IMAGE

    def _off_topic(self, match: TopicMatch, label: str) -> bool:
        """Words the knowledge base never uses, with no topic and no "it"/"that": another subject."""
        if _refers_back(match.masked):
            return False
        # A cued question to the bot ("are my pictures saved anywhere?") tolerates one odd word.
        cued = label in {q.value for q in BOT_QUESTIONS} and label in self.questions.cued(match) \
            and bool(set(match.masked.split()) & ADDRESSED)
        return len(match.unknown) >= (2 if label in SMALL_TALK or cued else 1)

    def _named(self, match: TopicMatch, question: Question | None, lang: str, confidence: float,
               ctx: ChatContext, now: dt.datetime) -> Reply:
        topics = match.topics
        if match.generic and ctx.topic is not None and self.kb.taxonomy is not None \
                and ctx.topic != Topic.BRAIN_TUMOUR and Topic.BRAIN_TUMOUR in self.kb.taxonomy.chain(ctx.topic):
            topics = (ctx.topic,)  # "is it cancer?" in a conversation about a pituitary tumour
        if _bare(match.residue) and ctx.question is not None:
            question = ctx.question  # "and in children?": the same question, about the new topic
        question = question or Question.WHAT_IS  # "glioma?"
        return self._cells(_focus(topics, question), question, lang, confidence, ctx, now)

    def topic(self, tag: str, lang: str, context: ChatContext | None = None, now: dt.datetime | None = None
              ) -> Reply | None:
        """The answer for a button: a small intent's tag or a "topic.question" cell (no classification)."""
        now = now or _now()
        ctx = (context or ChatContext()).fresh(now)
        if "." in tag:
            topic, _, question = tag.partition(".")
            if topic not in Topic.__members__.values() or question not in Question.__members__.values():
                return None
            return self._cells((Topic(topic),), Question(question), lang, 1.0, ctx, now)
        intent = self.kb.intents.get(tag)
        return _with(self._intent_reply(intent, lang, 1.0, ReplyKind.ANSWER), context=ctx) if intent else None

    # ---- questions ------------------------------------------------------------------------------

    def _question(self, question: Question, match: TopicMatch, lang: str, confidence: float, ctx: ChatContext,
                  now: dt.datetime, text: str) -> Reply:
        """A question that names no topic: the MRI's or the bot's own, the image's, or a follow-up."""
        if self._off_topic(match, question.value) and (ctx.topic is None or question == Question.WHAT_IS):
            return self._fallback(lang, confidence, text, ctx)  # "what is diabetes?", "how long to boil an egg?"
        words = set(match.masked.split())
        if question in MRI_QUESTIONS | BOT_QUESTIONS and ctx.topic is None \
                and question.value not in self.questions.cued(match) \
                and not (question in MRI_QUESTIONS and words & SCAN_WORDS):
            # "what should I take for the flu?" is not the scan's preparation: with no scan, bot or topic
            # word and nothing said before, a scan or bot question needs its own cue word.
            return self._fallback(lang, confidence, text, ctx)
        if question in BOT_QUESTIONS:
            topics = (Topic.BOT,)
        elif question in MRI_QUESTIONS:
            topics = (ctx.topic,) if ctx.topic in MRI_FAMILY else (Topic.MRI,)
        elif ctx.image_is_latest and question == Question.AFTER_RESULT:
            return self._image_or_meaning(Question.AFTER_RESULT, lang, confidence, ctx)
        elif ctx.topic is not None:
            topics = (ctx.topic,)  # a follow-up: "¿y cómo se trata?"
        elif question == Question.AFTER_RESULT:
            topics = (Topic.BRAIN_TUMOUR,)
        else:
            return self._clarify(question, lang, confidence, ctx)
        return self._cells(topics, question, lang, confidence, ctx, now)

    def _cells(self, topics: tuple[Topic, ...], question: Question, lang: str, confidence: float,
               ctx: ChatContext, now: dt.datetime) -> Reply:
        topics = topics[:MAX_COMPARED]
        parts, links = [], []
        for topic in topics:
            cell = self.resolve(topic, question)
            if cell is None:
                continue
            body = self._fill(cell.text.get(lang) or cell.text["es"], lang)
            if (cell.topic, cell.question) != (topic, question):
                body = t("chat.nearest", lang, question=t(f"question.{question}", lang),
                         topic=self.kb.topic_name(topic, lang)) + "\n" + body
            if len(topics) > 1:
                body = self.kb.topic_name(topic, lang).upper() + "\n" + body
            parts.append(body)
            link = cell.links.get(lang) or cell.links.get("en")
            if link and link not in links:
                links.append(link)
        if not parts:
            return self._fallback(lang, confidence, "", ctx)
        if len(parts) > 1:
            names = [self.kb.topic_name(tp, lang) for tp in topics]
            joined = ", ".join(names[:-1]) + f" {t('chat.and', lang)} " + names[-1]
            parts.insert(0, t("chat.compare", lang, topics=joined))
        topic = topics[0]
        return Reply("\n\n".join(parts), lang, f"{topic}.{question}", round(confidence, 4), ReplyKind.ANSWER,
                     tuple(links[:2]), self._next_questions(topic, question, lang), topic, question,
                     context=ctx.with_topic(topic, now, question))

    def resolve(self, topic: Topic, question: Question) -> Cell | None:
        """The cell, or the nearest honest one: a parent's, MRI's or the bot's own, then the topic's overview."""
        chain = self.kb.taxonomy.chain(topic) if self.kb.taxonomy else [topic]
        candidates = [(tp, question) for tp in chain]
        if question in MRI_QUESTIONS:
            candidates.append((Topic.MRI, question))
        if question in BOT_QUESTIONS:
            candidates.append((Topic.BOT, question))
        candidates += [(tp, Question.WHAT_IS) for tp in chain]
        for tp, q in candidates:
            cell = self.kb.cell(tp, q)
            if cell is not None:
                return cell
        return None

    def _next_questions(self, topic: Topic, question: Question, lang: str) -> tuple[tuple[str, str], ...]:
        cells = list(self.kb.taxonomy.topics[topic].cells) if self.kb.taxonomy and topic in self.kb.taxonomy.topics else []
        if question in cells:
            i = cells.index(question)
            cells = cells[i + 1:] + cells[:i]
        return tuple((f"{topic}.{q}", t(f"question.{q}", lang)) for q in cells[:3])

    def _clarify(self, question: Question, lang: str, confidence: float, ctx: ChatContext) -> Reply:
        buttons = tuple((f"{tp}.{question}", self.kb.topic_name(tp, lang)) for tp in CLARIFY_TOPICS)
        return Reply(t("chat.clarify", lang), lang, None, round(confidence, 4), ReplyKind.CLARIFY, (), buttons,
                     question=question, context=ctx)

    # ---- the last image -------------------------------------------------------------------------

    def _image_or_meaning(self, question: Question, lang: str, confidence: float, ctx: ChatContext) -> Reply:
        """About the user's last image result; without one, the generic meaning of every result."""
        image = ctx.image
        if image is None:
            generic = self._intent_reply(self.kb.intents[RESULT_MEANING], lang, confidence, ReplyKind.ANSWER)
            return _with(generic, text=t("chat.no_image", lang) + "\n\n" + generic.text, context=ctx)
        topic = TYPE_TOPICS.get(image.tumor_type or "")
        verdict = t(f"verdict.short.{image.verdict}", lang,
                    tumor_type=self.kb.topic_name(topic, lang) if topic else "")
        if image.meaning_key == "tumor_untyped" and has("verdict.short.tumor_untyped"):
            verdict = t("verdict.short.tumor_untyped", lang)
        sequence = ""
        if image.sequence and has(f"sequence.{image.sequence}"):
            sequence = t("chat.image_sequence", lang, sequence=t(f"sequence.{image.sequence}", lang))
        intro = t("chat.image_intro", lang, verdict=verdict, sequence=sequence)
        if topic is None:
            body = t(f"chat.image_meaning.{image.meaning_key}", lang) if has(f"chat.image_meaning.{image.meaning_key}") \
                else self.kb.intents[RESULT_MEANING].responses[lang][0]
            return Reply(intro + " " + body, lang, RESULT_MEANING, round(confidence, 4), ReplyKind.ANSWER,
                         context=ctx, about_result=True)
        cells = self._cells((topic,), question, lang, confidence, ctx, image.at)
        # the image stays the latest thing: "is that serious?" still means it
        return _with(cells, text=intro + "\n" + cells.text, context=ctx, about_result=True)

    # ---- small intents and the fallback -----------------------------------------------------------

    def _fallback(self, lang: str, confidence: float, text: str, ctx: ChatContext) -> Reply:
        reply = self._intent_reply(self.kb.intents[OUT_OF_SCOPE], lang, confidence, ReplyKind.FALLBACK, text)
        return _with(reply, intent=None, links=(), context=ctx)

    def _intent_reply(self, intent: Intent, lang: str, confidence: float, kind: ReplyKind, seed_text: str = "") -> Reply:
        options = intent.responses.get(lang) or intent.responses.get("es") or ("",)
        pick = int(hashlib.sha256(fold(seed_text).encode()).hexdigest(), 16) % len(options) if seed_text else 0
        text = self._fill(options[pick], lang)
        follow_ups = tuple((tag, self.topic_label(tag, lang)) for tag in intent.follow_ups if self._exists(tag))
        links = intent.links.get(lang) or intent.links.get("en") or ()
        return Reply(text, lang, intent.tag, round(confidence, 4), kind, tuple(links), follow_ups)

    def learn_more_link(self, tag: str | None, lang: str) -> Link | None:
        """The "Learn more" link of a small intent or a "topic.question" cell (image replies use it)."""
        if not tag:
            return None
        if "." in tag:
            topic, _, question = tag.partition(".")
            if topic not in Topic.__members__.values() or question not in Question.__members__.values():
                return None
            cell = self.resolve(Topic(topic), Question(question))
            return (cell.links.get(lang) or cell.links.get("en")) if cell else None
        intent = self.kb.intents.get(tag)
        links = (intent.links.get(lang) or intent.links.get("en") or ()) if intent else ()
        return links[0] if links else None

    def _exists(self, tag: str) -> bool:
        if "." in tag:
            topic, _, question = tag.partition(".")
            return topic in Topic.__members__.values() and question in Question.__members__.values() \
                and self.resolve(Topic(topic), Question(question)) is not None
        return tag in self.kb.intents

    def _fill(self, text: str, lang: str) -> str:
        return text.format_map(_Missing(accuracy_values(self.manifest, lang))) if "{" in text else text

    def topic_label(self, tag: str, lang: str) -> str:
        if "." in tag:
            topic, _, question = tag.partition(".")
            return f"{self.kb.topic_name(Topic(topic), lang)}: {t(f'question.{question}', lang)}"[:60]
        key = f"topic.{tag}"
        if has(key):
            return t(key, lang)
        patterns = self.kb.intents[tag].patterns.get(lang) or ("?",)
        return patterns[0][:40]


def _focus(topics: tuple[Topic, ...], question: Question) -> tuple[Topic, ...]:
    """The topics a question is about when a message names several.

    "How often an MRI after a glioma?" is about the glioma; "is an MRI safe with a meningioma?" about MRI;
    "my son has an astrocytoma" about the astrocytoma (children is the patient, not the subject); the bot
    only for the bot's own questions.
    """
    if question in BOT_QUESTIONS:
        return (Topic.BOT,)  # "can you read a CT?" is about the bot, whatever else it names
    if question == Question.REPORT and not any(tp in MRI_FAMILY for tp in topics):
        return (Topic.MRI,)  # reading a report is the scan's answer, whichever finding it names
    if len(topics) < 2:
        return topics
    scanning = [tp for tp in topics if tp in MRI_FAMILY]
    if question in MRI_QUESTIONS and scanning:
        return tuple(scanning)
    rest = [tp for tp in topics if tp not in MRI_FAMILY] or list(topics)
    if question in BOT_QUESTIONS and Topic.BOT in rest:
        return (Topic.BOT,)
    rest = [tp for tp in rest if tp != Topic.BOT] or rest
    if len(rest) > 1:
        rest = [tp for tp in rest if tp != Topic.CHILDREN] or rest
    return tuple(rest)


def _bare(masked: str) -> bool:
    return all(w in BARE_WORDS for w in masked.split() if w != MASK)


def _refers_back(masked: str) -> bool:
    words = masked.split()
    return bool(words) and (words[0] in FOLLOW_UP_STARTS or any(w in BACK_REFERENCES for w in words))


def _with(reply: Reply, **changes) -> Reply:
    return replace(reply, **changes)


class _Missing(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"
