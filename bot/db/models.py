"""Typed SQLAlchemy 2 tables. Portable SQL only: SQLite by default, PostgreSQL works too."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Boolean, DateTime, Float, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    telegram_id: Mapped[int] = mapped_column(BigInteger, unique=True, index=True)
    language: Mapped[str] = mapped_column(String(8), default="es")
    consent_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

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
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    user: Mapped[User] = relationship(back_populates="messages")


class Prediction(Base):
    __tablename__ = "predictions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(String(16))  # photo, document, dicom
    image_sha256: Mapped[str] = mapped_column(String(64))
    mri_probability: Mapped[float] = mapped_column(Float)
    tumor_probability: Mapped[float] = mapped_column(Float)
    p_glioma: Mapped[float] = mapped_column(Float)
    p_meningioma: Mapped[float] = mapped_column(Float)
    p_notumor: Mapped[float] = mapped_column(Float)
    p_pituitary: Mapped[float] = mapped_column(Float)
    verdict: Mapped[str] = mapped_column(String(16))
    tumor_type: Mapped[str | None] = mapped_column(String(16))
    reasons: Mapped[str] = mapped_column(String(128), default="")
    latency_ms: Mapped[float] = mapped_column(Float)
    model_versions: Mapped[str] = mapped_column(Text)  # JSON: model name -> sha256 prefix
    image_bytes: Mapped[bytes | None] = mapped_column(LargeBinary)  # only when STORE_IMAGES is on
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    user: Mapped[User] = relationship(back_populates="predictions")


class Feedback(Base):
    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    prediction_id: Mapped[int] = mapped_column(ForeignKey("predictions.id", ondelete="CASCADE"), index=True)
    helpful: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    user: Mapped[User] = relationship(back_populates="feedback")
