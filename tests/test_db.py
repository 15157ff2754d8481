"""The conversation log: migrations on start, WAL, rows per kind, /forget, queued writes under faults."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import text

from bot.db.engine import Database
from bot.db.log import ConversationLog
from inference.cascade import CascadeResult

RESULT = CascadeResult(0.99, 0.97, {"glioma": 0.9, "meningioma": 0.05, "notumor": 0.03, "pituitary": 0.02},
                       "tumor", "glioma", (), 12.5, {"typer": "abc123"})


@pytest.fixture
async def db(tmp_path):
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'log.db'}", retries=2, backoff_s=0.01)
    await database.migrate()
    yield database
    await database.close()


async def test_migrations_create_the_schema_in_wal_mode(db, tmp_path):
    await db.migrate()  # idempotent
    async with db.engine.connect() as conn:
        mode = (await conn.execute(text("PRAGMA journal_mode"))).scalar()
        tables = {r[0] for r in await conn.execute(text("SELECT name FROM sqlite_master WHERE type='table'"))}
        version = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
    assert mode == "wal"
    assert {"users", "messages", "predictions", "feedback"} <= tables
    assert version == "0001"


async def test_a_prediction_row_holds_results_and_hash_but_not_the_image(db):
    log = ConversationLog(db, store_images=False)
    pid = await log.prediction(42, "es", "photo", "f" * 64, RESULT, image=b"\xff\xd8secret-pixels")
    assert pid is not None
    async with db.engine.connect() as conn:
        row = (await conn.execute(text("SELECT verdict, tumor_type, p_glioma, image_sha256, image_bytes FROM predictions"))).one()
    assert row == ("tumor", "glioma", 0.9, "f" * 64, None)


async def test_images_are_stored_only_when_the_operator_turns_it_on(db):
    log = ConversationLog(db, store_images=True)
    await log.prediction(42, "es", "photo", "f" * 64, RESULT, image=b"pixels")
    async with db.engine.connect() as conn:
        assert (await conn.execute(text("SELECT image_bytes FROM predictions"))).scalar() == b"pixels"


async def test_forget_removes_every_row_about_the_user_and_only_them(db):
    log = ConversationLog(db)
    for user in (1, 2):
        await log.record_consent(user, "es")
        await log.message(user, "es", "in", "text", "hola")
        pid = await log.prediction(user, "es", "photo", "a" * 64, RESULT)
        assert await log.feedback(user, pid, True)
    assert not await log.feedback(1, pid, True)  # user 1 cannot rate user 2's result
    assert await log.forget(1)
    assert await log.counts(1) == {"users": 0, "messages": 0, "predictions": 0, "feedback": 0}
    assert await log.counts(2) == {"users": 1, "messages": 1, "predictions": 1, "feedback": 1}
    assert not await log.forget(1)


async def test_history_lists_latest_results_first(db):
    log = ConversationLog(db)
    await log.prediction(7, "en", "photo", "a" * 64, RESULT)
    other = CascadeResult(0.1, 0.0, RESULT.type_probabilities, "not_mri", None, (), 3.0, {})
    await log.prediction(7, "en", "photo", "b" * 64, other)
    assert [h.verdict for h in await log.history(7)] == ["not_mri", "tumor"]


async def test_a_locked_database_delays_writes_but_loses_none(db, tmp_path):
    """Another process holds the write lock past every retry: the row is queued, then replayed."""
    log = ConversationLog(db)
    await log.message(5, "es", "in", "text", "first")
    blocker = sqlite3.connect(tmp_path / "log.db", timeout=0)
    blocker.execute("BEGIN EXCLUSIVE")
    db.retries = 0
    import bot.db.engine as engine_module

    old = engine_module.BUSY_TIMEOUT_MS
    try:
        await db.engine.dispose()  # new connections pick up a short busy timeout
        engine_module.BUSY_TIMEOUT_MS = 50
        await log.message(5, "es", "in", "text", "while locked")
        assert len(db.pending) == 1
    finally:
        blocker.rollback()
        blocker.close()
        engine_module.BUSY_TIMEOUT_MS = old
    await log.message(5, "es", "in", "text", "after")
    assert not db.pending
    async with db.engine.connect() as conn:
        texts = [r[0] for r in await conn.execute(text("SELECT text FROM messages ORDER BY id"))]
    assert texts == ["first", "while locked", "after"]
