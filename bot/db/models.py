"""Typed SQLAlchemy 2 tables. Portable SQL only: SQLite by default, PostgreSQL works too."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Float, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def as_utc(value: dt.datetime) -> dt.datetime:
    """Aware UTC, whatever came in (naive values are taken as UTC)."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class UTCDateTime(TypeDecorator):
    """`DateTime(timezone=True)` that reads back aware UTC on every backend.

    PostgreSQL (timestamptz) keeps the zone; SQLite stores text without one, so values are
    written as naive UTC (string order = time order) and read back with UTC attached.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        value = as_utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        return None if value is None else as_utc(value)


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    telegram_id: Mapped[int] = mapped_column(BigInteger, unique=True, index=True)
    language: Mapped[str] = mapped_column(String(8), default="es")
    consent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    messages: Mapped[list[Message]] = relationship(back_populates="user", cascade="all, delete-orphan", passive_deletes=True)
    predictions: Mapped[list[Prediction]] = relationship(back_populates="user", cascade="all, delete-orphan", passive_deletes=True)
    feedback: Mapped[list[Feedback]] = relationship(back_populates="user", cascade="all, delete-orphan", passive_deletes=True)


class Message(Base):
    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    direction: Mapped[str] = mapped_column(String(3))  # "in" | "out"
    kind: Mapped[str] = mapped_column(String(16))  # text, command, photo, document, sticker, result, error…
    text: Mapped[str | None] = mapped_column(Text)
    intent: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    user: Mapped[User] = relationship(back_populates="messages")


class Prediction(Base):
    __tablename__ = "predictions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(String(16))  # photo, document, dicom
    image_sha256: Mapped[str] = mapped_column(String(64))
    mri_probability: Mapped[float] = mapped_column(Float)
    tumor_probability: Mapped[float] = mapped_column(Float)
    # label -> probability, as the typer gives them (migration 0004): other labels need no new column
    type_probabilities: Mapped[dict[str, float]] = mapped_column(JSON)
    verdict: Mapped[str] = mapped_column(String(16))
    tumor_type: Mapped[str | None] = mapped_column(String(16))
    reasons: Mapped[str] = mapped_column(String(128), default="")
    latency_ms: Mapped[float] = mapped_column(Float)
    model_versions: Mapped[str] = mapped_column(Text)  # JSON: model name -> sha256 prefix
    image_bytes: Mapped[bytes | None] = mapped_column(LargeBinary)  # only when STORE_IMAGES is on
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    user: Mapped[User] = relationship(back_populates="predictions")


class Feedback(Base):
    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    prediction_id: Mapped[int] = mapped_column(ForeignKey("predictions.id", ondelete="CASCADE"), index=True)
    helpful: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    user: Mapped[User] = relationship(back_populates="feedback")


# ---- state shared by every worker (migration 0002) ---------------------------------------------


class ProcessedUpdate(Base):
    """One row per Telegram update_id ever claimed: a re-delivery finds its row and is skipped."""

    __tablename__ = "processed_updates"

    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class RateBucket(Base):
    """One row per (user, kind): locked by each check so checks for one user run one at a time."""

    __tablename__ = "rate_buckets"

    telegram_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    touched_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class RateEvent(Base):
    """Counted events inside the sliding window (older ones are deleted by the next check)."""

    __tablename__ = "rate_events"
    __table_args__ = (Index("ix_rate_events_user_kind_time", "telegram_id", "kind", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    telegram_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class PendingConfirmation(Base):
    """An action the user asked for and must confirm (e.g. /forget) before `expires_at`."""

    __tablename__ = "pending_confirmations"

    telegram_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    action: Mapped[str] = mapped_column(String(16), primary_key=True)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


# ---- conversation context (migration 0003) -----------------------------------------------------


class ChatContextRow(Base):
    """What the chat remembers for a user between messages (bot/chat_context.py), shared by every worker.

    Keyed by Telegram id like the shared-state tables; each part carries its own time, so expiry needs no job,
    and /forget deletes the row with the rest of the user's data.
    """

    __tablename__ = "chat_context"

    telegram_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    topic: Mapped[str | None] = mapped_column(String(32))
    topic_source: Mapped[str] = mapped_column(String(8), default="text")
    topic_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    question: Mapped[str | None] = mapped_column(String(32))
    image_verdict: Mapped[str | None] = mapped_column(String(16))
    image_tumor_type: Mapped[str | None] = mapped_column(String(16))
    image_sequence: Mapped[str | None] = mapped_column(String(16))
    image_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    chosen_language: Mapped[str | None] = mapped_column(String(8))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
