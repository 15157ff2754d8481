"""What a conversation remembers between messages: the last topic and the last image result.

Pure data (no database): bot/db/context.py stores it per user, the router reads it and returns the next one.
Each part expires on its own after CONTEXT_TTL, so an old topic never answers a new question.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from enum import StrEnum

from .knowledge import Question, Topic

CONTEXT_TTL = dt.timedelta(hours=2)
# The image typer's labels and the topics they make current.
TYPE_TOPICS = {"glioma": Topic.GLIOMA, "meningioma": Topic.MENINGIOMA, "pituitary": Topic.PITUITARY}


class TopicSource(StrEnum):
    TEXT = "text"  # the user asked about it
    IMAGE = "image"  # an image result named it


@dataclass(frozen=True)
class ImageResult:
    verdict: str  # tumor | no_tumor | inconclusive | not_mri
    tumor_type: str | None
    sequence: str | None  # t1 | t1c | t2 | flair, when the image side estimated it
    at: dt.datetime

    @property
    def meaning_key(self) -> str:
        return "tumor_untyped" if self.verdict == "tumor" and not self.tumor_type else self.verdict


@dataclass(frozen=True)
class ChatContext:
    topic: Topic | None = None
    topic_at: dt.datetime | None = None
    topic_source: TopicSource = TopicSource.TEXT
    question: Question | None = None  # the last question asked, for "and in children?"
    image: ImageResult | None = None
    chosen_language: str | None = None  # set by /lang; never expires (it is a preference, not context)

    def fresh(self, now: dt.datetime) -> ChatContext:
        """The context without the parts older than CONTEXT_TTL."""
        out = self
        if out.topic_at is not None and now - out.topic_at > CONTEXT_TTL:
            out = replace(out, topic=None, topic_at=None, topic_source=TopicSource.TEXT, question=None)
        if out.image is not None and now - out.image.at > CONTEXT_TTL:
            out = replace(out, image=None)
        return out

    def with_topic(self, topic: Topic, now: dt.datetime, question: Question | None = None) -> ChatContext:
        return replace(self, topic=topic, topic_at=now, topic_source=TopicSource.TEXT, question=question)

    def with_image(self, verdict: str, tumor_type: str | None, sequence: str | None, now: dt.datetime) -> ChatContext:
        """An image reply: the result, and its tumour type as the topic ("meningioma likely" → meningioma)."""
        topic = TYPE_TOPICS.get(tumor_type or "")
        out = replace(self, image=ImageResult(verdict, tumor_type, sequence, now))
        if topic is not None:
            return replace(out, topic=topic, topic_at=now, topic_source=TopicSource.IMAGE, question=None)
        return replace(out, topic_source=TopicSource.IMAGE) if out.topic else out

    @property
    def image_is_latest(self) -> bool:
        """The last thing the conversation was about is the image (not a topic asked about since)."""
        return self.image is not None and (self.topic_source == TopicSource.IMAGE or self.topic is None)
