"""Migration 0004: the four p_* columns become one JSON column, and back, without losing a value.

Runs on SQLite and on PostgreSQL (the `pg` session cluster; skipped when PostgreSQL cannot run here).
The rows are written at 0003 with plain SQL, as the old bot left them: full-precision random doubles
(a rounding, a float32 or a swapped label changes them), more rows than one copy chunk, and feedback
rows that point at them (a SQLite table rebuild must not cascade them away).
"""

from __future__ import annotations

import datetime as dt
import random

import pytest
from sqlalchemy import JSON, bindparam, inspect, text

from bot.db import migrate
from bot.db.engine import Database
from bot.db.log import ConversationLog
from bot.db.models import UTCDateTime
from inference.cascade import CascadeResult

LABELS = ("glioma", "meningioma", "notumor", "pituitary")
P_COLUMNS = [f"p_{label}" for label in LABELS]
USERS = (101, 102, 7_123_456_789_012)
N_PREDICTIONS = 2_345  # more than one chunk of the copy (0004.CHUNK), and not a multiple of it
EDGE_VALUES = [  # besides the random ones: values a text round trip or a float4 column would alter
    {"glioma": 0.9, "meningioma": 0.05, "notumor": 0.03, "pituitary": 0.02},
    {"glioma": 1 / 3, "meningioma": 2 / 3, "notumor": 1e-300, "pituitary": 0.0},
    {"glioma": 0.1 + 0.2, "meningioma": 2.220446049250313e-16, "notumor": 1.0, "pituitary": 0.7071067811865476},
]
# every predictions column but the probabilities: they must come through both ways unchanged
OTHER_COLUMNS = ("id, user_id, source, image_sha256, mri_probability, tumor_probability, verdict, tumor_type, "
                 "reasons, latency_ms, model_versions, image_bytes, created_at")


def expected_probabilities() -> dict[str, dict[str, float]]:
    """image_sha256 -> the four values written for that row."""
    rng = random.Random(4)
    values = EDGE_VALUES + [{label: rng.random() for label in LABELS} for _ in range(N_PREDICTIONS - len(EDGE_VALUES))]
    return {f"{i:064x}": v for i, v in enumerate(values)}


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'log.db'}"
    return request.getfixturevalue("pg").create_database("mig").url


async def _fill_at_0003(db: Database, expected: dict[str, dict[str, float]]) -> None:
    at = dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=dt.UTC)
    typed = [bindparam("at", type_=UTCDateTime())]
    async with db.engine.begin() as conn:
        await conn.execute(text("INSERT INTO users (telegram_id, language, created_at) VALUES (:t, 'es', :at)")
                           .bindparams(*typed), [{"t": t, "at": at} for t in USERS])
        user_ids = [r[0] for r in await conn.execute(text("SELECT id FROM users ORDER BY telegram_id"))]
        rows = [{"user_id": user_ids[i % len(user_ids)], "sha": sha, "mri": 0.5 + i / 10_000, "latency": i / 7,
                 "at": at + dt.timedelta(seconds=i), **{f"p_{label}": v[label] for label in LABELS}}
                for i, (sha, v) in enumerate(expected.items())]
        await conn.execute(text(
            "INSERT INTO predictions (user_id, source, image_sha256, mri_probability, tumor_probability, "
            "p_glioma, p_meningioma, p_notumor, p_pituitary, verdict, tumor_type, reasons, latency_ms, "
            "model_versions, image_bytes, created_at) VALUES (:user_id, 'photo', :sha, :mri, 0.25, "
            ":p_glioma, :p_meningioma, :p_notumor, :p_pituitary, 'tumor', 'glioma', 'low_mri', :latency, "
            "'{\"typer\": \"abc\"}', NULL, :at)").bindparams(*typed), rows)
        await conn.execute(text(
            "INSERT INTO feedback (user_id, prediction_id, helpful, created_at) "
            "SELECT user_id, id, :helpful, :at FROM predictions WHERE id % 2 = 0")
            .bindparams(*typed), {"helpful": True, "at": at})


async def _snapshot(db: Database) -> tuple[list[tuple], list[tuple]]:
    """Every predictions column but the probabilities, and every feedback row."""
    async with db.engine.connect() as conn:
        predictions = [tuple(r) for r in await conn.execute(text(f"SELECT {OTHER_COLUMNS} FROM predictions ORDER BY id"))]
        feedback = [tuple(r) for r in await conn.execute(text("SELECT * FROM feedback ORDER BY id"))]
    return predictions, feedback


@pytest.fixture
async def at_0003(db_url):
    """A database at revision 0003, filled with N_PREDICTIONS predictions; yields it and what they hold."""
    expected = expected_probabilities()
    await migrate.upgrade(db_url, "0003")
    db = Database(db_url)
    try:
        await _fill_at_0003(db, expected)
        yield db, expected
    finally:
        await db.close()


async def _columns(db: Database) -> dict[str, dict]:
    async with db.engine.connect() as conn:
        return {c["name"]: c for c in await conn.run_sync(lambda c: inspect(c).get_columns("predictions"))}


async def _version(db: Database) -> str:
    async with db.engine.connect() as conn:
        return (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()


async def test_0004_moves_every_probability_into_json_and_back_unchanged(db_url, at_0003):
    db, expected = at_0003
    before = await _snapshot(db)
    assert len(before[0]) == N_PREDICTIONS and len(before[1]) == N_PREDICTIONS // 2

    await migrate.upgrade(db_url)
    assert await _version(db) == "0004"
    columns = await _columns(db)
    assert not set(P_COLUMNS) & set(columns)
    assert columns["type_probabilities"]["nullable"] is False
    async with db.engine.connect() as conn:
        stored = {sha: probs for sha, probs in await conn.execute(
            text("SELECT image_sha256, type_probabilities FROM predictions").columns(type_probabilities=JSON))}
        indexes = {i["name"] for i in await conn.run_sync(lambda c: inspect(c).get_indexes("predictions"))}
        if db.engine.dialect.name == "postgresql":
            kind = (await conn.execute(text("SELECT data_type FROM information_schema.columns WHERE "
                                            "table_name = 'predictions' AND column_name = 'type_probabilities'"))).scalar()
            assert kind == "json"
    assert stored == expected  # every row, every label, every bit of every value
    assert all(list(probs) == list(LABELS) for probs in stored.values())
    assert await _snapshot(db) == before  # nothing else changed, and no feedback row was cascaded away
    assert "ix_predictions_user_id" in indexes

    await migrate.downgrade(db_url, "0003")
    assert await _version(db) == "0003"
    columns = await _columns(db)
    assert "type_probabilities" not in columns
    assert all(columns[c]["nullable"] is False for c in P_COLUMNS)
    async with db.engine.connect() as conn:
        restored = {sha: dict(zip(LABELS, values)) for sha, *values in await conn.execute(
            text(f"SELECT image_sha256, {', '.join(P_COLUMNS)} FROM predictions"))}
    assert restored == expected
    assert await _snapshot(db) == before


async def test_the_log_writes_and_forgets_on_a_database_migrated_from_0003(db_url, at_0003):
    """The rebuilt table still works for the bot: new rows get JSON and an id, /forget still cascades."""
    db, _ = at_0003
    await migrate.upgrade(db_url)
    log = ConversationLog(db)
    probs = {"glioma": 0.1, "meningioma": 0.2, "notumor": 0.3, "pituitary": 0.4}
    result = CascadeResult(0.99, 0.97, probs, "tumor", "pituitary", (), 12.5, {"typer": "abc123"})
    pid = await log.prediction(USERS[0], "es", "photo", "e" * 64, result)
    assert pid is not None and not db.pending
    assert await log.feedback(USERS[0], pid, False)
    async with db.engine.connect() as conn:
        stored = (await conn.execute(text("SELECT type_probabilities FROM predictions WHERE id = :p")
                                     .columns(type_probabilities=JSON), {"p": pid})).scalar()
    assert stored == probs
    owned = [i + 1 for i in range(N_PREDICTIONS) if i % len(USERS) == 0]  # ids, as _fill_at_0003 gave them
    rated = [pid for pid in owned if pid % 2 == 0]
    assert await log.counts(USERS[0]) == {"users": 1, "messages": 0, "predictions": len(owned) + 1,
                                          "feedback": len(rated) + 1}
    assert await log.forget(USERS[0]) == "deleted"  # ON DELETE CASCADE survived the table rebuild
    assert await log.counts(USERS[0]) == {"users": 0, "messages": 0, "predictions": 0, "feedback": 0}
    assert (await log.counts(USERS[1]))["predictions"] == sum(1 for i in range(N_PREDICTIONS) if i % len(USERS) == 1)
