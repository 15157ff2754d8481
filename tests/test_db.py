"""The conversation log: migrations on start, WAL, rows per kind, /forget, queued writes under faults.

Every test that takes `db` runs twice: on SQLite and on PostgreSQL (the `pg` session cluster; those
skip when PostgreSQL cannot run here). The state shared by workers (bot/db/shared.py) is tested here
too, with two engines on one database standing in for two worker processes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3

import pytest
from sqlalchemy import JSON, event, inspect, text

from bot.db.engine import Database
from bot.db.log import ConversationLog, Row
from bot.db.models import utcnow
from bot.db.shared import SharedState
from inference.cascade import CascadeResult

RESULT = CascadeResult(0.99, 0.97, {"glioma": 0.9, "meningioma": 0.05, "notumor": 0.03, "pituitary": 0.02},
                       "tumor", "glioma", (), 12.5, {"typer": "abc123"})


HEAD = "0004"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'log.db'}"
    return request.getfixturevalue("pg").create_database().url


@pytest.fixture
async def db(db_url):
    database = Database(db_url, retries=2, backoff_s=0.01)
    await database.migrate()
    yield database
    await database.close()


@pytest.fixture
async def sqlite_db(tmp_path):
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'log.db'}", retries=2, backoff_s=0.01)
    await database.migrate()
    yield database
    await database.close()


async def test_migrations_create_the_schema_and_are_idempotent(db):
    await db.migrate()  # idempotent
    async with db.engine.connect() as conn:
        tables = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
        version = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
    assert {"users", "messages", "predictions", "feedback",
            "processed_updates", "rate_buckets", "rate_events", "pending_confirmations"} <= tables
    assert version == HEAD


async def test_sqlite_runs_in_wal_mode(sqlite_db):
    async with sqlite_db.engine.connect() as conn:
        assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"


async def test_big_telegram_ids_aware_datetimes_and_booleans_round_trip(db):
    """Telegram ids pass 2**31 (BigInteger); datetimes come back aware UTC; booleans are booleans."""
    log = ConversationLog(db)
    big = 7_123_456_789_012
    before = utcnow()
    await log.record_consent(big, "en")
    pid = await log.prediction(big, "en", "photo", "c" * 64, RESULT)
    assert await log.feedback(big, pid, False)
    [item] = await log.history(big)
    assert item.created_at.tzinfo is not None and item.created_at.utcoffset() == dt.timedelta(0)
    assert before - dt.timedelta(seconds=5) <= item.created_at <= utcnow() + dt.timedelta(seconds=5)
    async with db.engine.connect() as conn:
        tid, consent = (await conn.execute(text("SELECT telegram_id, consent_at FROM users"))).one()
        helpful = (await conn.execute(text("SELECT helpful FROM feedback"))).scalar()
        falses = (await conn.execute(text("SELECT COUNT(*) FROM feedback WHERE helpful = :v"), {"v": False})).scalar()
    assert tid == big and consent is not None
    assert helpful in (False, 0) and not helpful and falses == 1
    assert await log.counts(big) == {"users": 1, "messages": 0, "predictions": 1, "feedback": 1}


async def test_text_with_nul_characters_is_stored_on_every_backend(db):
    """PostgreSQL refuses NUL in text; the log drops it instead of queueing a write that can never succeed."""
    log = ConversationLog(db)
    await log.message(9, "es", "in", "command", "/start\x00\x00now")
    assert not db.pending
    async with db.engine.connect() as conn:
        assert (await conn.execute(text("SELECT text FROM messages"))).scalar() == "/startnow"


async def test_a_prediction_row_holds_results_and_hash_but_not_the_image(db):
    log = ConversationLog(db, store_images=False)
    pid = await log.prediction(42, "es", "photo", "f" * 64, RESULT, image=b"\xff\xd8secret-pixels")
    assert pid is not None
    async with db.engine.connect() as conn:
        row = (await conn.execute(text("SELECT verdict, tumor_type, type_probabilities, image_sha256, image_bytes "
                                       "FROM predictions").columns(type_probabilities=JSON))).one()
    assert row == ("tumor", "glioma", RESULT.type_probabilities, "f" * 64, None)


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
    assert await log.forget(1) == "deleted"
    assert await log.counts(1) == {"users": 0, "messages": 0, "predictions": 0, "feedback": 0}
    assert await log.counts(2) == {"users": 1, "messages": 1, "predictions": 1, "feedback": 1}
    assert await log.forget(1) == "nothing"


async def test_history_lists_latest_results_first(db):
    log = ConversationLog(db)
    await log.prediction(7, "en", "photo", "a" * 64, RESULT)
    other = CascadeResult(0.1, 0.0, RESULT.type_probabilities, "not_mri", None, (), 3.0, {})
    await log.prediction(7, "en", "photo", "b" * 64, other)
    assert [h.verdict for h in await log.history(7)] == ["not_mri", "tumor"]


async def test_a_locked_database_delays_writes_but_loses_none(sqlite_db, tmp_path):
    """Another process holds the write lock past every retry: the row is queued, then replayed."""
    db = sqlite_db
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


# ---- state shared by workers -------------------------------------------------------------------


@pytest.fixture
async def two_workers(db, db_url):
    """Two engines on one database: what two worker processes see."""
    other = Database(db_url, retries=2, backoff_s=0.01)
    yield SharedState(db), SharedState(other)
    await other.close()


async def test_an_update_is_claimed_once_however_many_workers_race_for_it(two_workers, db):
    a, b = two_workers
    results = await asyncio.gather(*[(a if i % 2 else b).claim_update(424242) for i in range(8)])
    assert sorted(results) == [False] * 7 + [True]
    assert await a.claim_update(2**40)  # update ids are BigInteger too
    async with db.engine.connect() as conn:
        assert (await conn.execute(text("SELECT COUNT(*) FROM processed_updates WHERE update_id = 424242"))).scalar() == 1


async def test_old_claims_are_pruned(two_workers, db):
    a, _ = two_workers
    await a.claim_update(1)
    assert await a.prune_claims(older_than=dt.timedelta(seconds=-1)) == 1
    assert await a.claim_update(1)  # gone, so claimable again


async def test_the_rate_limit_holds_across_workers_even_when_checks_race(two_workers):
    a, b = two_workers
    waits = await asyncio.gather(*[(a if i % 2 else b).hit(77, "image", 3, 60.0) for i in range(10)])
    assert sum(w == 0.0 for w in waits) == 3
    assert all(0 < w <= 60 for w in waits if w)
    assert await a.hit(78, "image", 3, 60.0) == 0.0  # other users are not affected


async def test_the_rate_window_slides(two_workers):
    a, b = two_workers
    t0 = dt.datetime(2030, 1, 1, 12, 0, tzinfo=dt.UTC)
    assert await a.hit(5, "image", 2, 60.0, now=t0) == 0.0
    assert await b.hit(5, "image", 2, 60.0, now=t0 + dt.timedelta(seconds=10)) == 0.0
    wait = await a.hit(5, "image", 2, 60.0, now=t0 + dt.timedelta(seconds=20))
    assert wait == pytest.approx(40.0, abs=0.01)  # the oldest event leaves the window at t0 + 60 s
    assert await b.hit(5, "image", 2, 60.0, now=t0 + dt.timedelta(seconds=61)) == 0.0
    # a zone other than UTC means the same instant
    madrid = dt.timezone(dt.timedelta(hours=1))
    assert await a.hit(5, "image", 2, 60.0, now=(t0 + dt.timedelta(seconds=62)).astimezone(madrid)) > 0


async def test_a_pending_confirmation_is_honoured_once_on_any_worker_and_expires(two_workers, db):
    a, b = two_workers
    assert not await b.consume_pending(11, "forget")  # nothing pending: a bare "yes" is refused
    await a.set_pending(11, "forget", ttl_s=600)
    assert await b.has_pending(11, "forget")
    assert await b.consume_pending(11, "forget")
    assert not await a.consume_pending(11, "forget")  # used up
    await a.set_pending(11, "forget", ttl_s=-1)  # already expired
    assert not await b.consume_pending(11, "forget")
    await a.set_pending(12, "forget", ttl_s=600)
    await b.cancel_pending(12, "forget")
    assert not await a.consume_pending(12, "forget")
    async with db.engine.connect() as conn:
        assert (await conn.execute(text("SELECT COUNT(*) FROM pending_confirmations"))).scalar() == 0


async def test_forget_on_a_read_only_database_says_queued_not_nothing(tmp_path):
    """The user must not be told "nothing to delete" when the delete could not run yet."""
    path = tmp_path / "ro.db"
    writable = Database(f"sqlite+aiosqlite:///{path}")
    await writable.migrate()
    await ConversationLog(writable).message(9, "es", "in", "text", "hola")
    await writable.close()
    readonly = Database(f"sqlite+aiosqlite:///file:{path}?mode=ro&uri=true", retries=0, backoff_s=0.01)
    try:
        assert await ConversationLog(readonly).forget(9) == "queued"
    finally:
        await readonly.close()


# ---- one transaction per exchange, and the language cache ---------------------------------------


def _count_commits(db: Database) -> list[int]:
    commits = [0]

    def on_commit(_conn) -> None:
        commits[0] += 1

    event.listen(db.engine.sync_engine, "commit", on_commit)
    return commits


async def _messages(db: Database, telegram_id: int) -> list[tuple]:
    async with db.engine.connect() as conn:
        return [tuple(r) for r in await conn.execute(text(
            "SELECT m.direction, m.kind, m.text, m.intent FROM messages m JOIN users u ON u.id = m.user_id "
            "WHERE u.telegram_id = :t ORDER BY m.id"), {"t": telegram_id})]


async def test_an_exchange_is_one_commit_and_its_rows_stay_in_order(db):
    log = ConversationLog(db)
    commits = _count_commits(db)
    await log.exchange(31, "es", Row("in", "text", "hola"), Row("out", "answer", "¡Hola!", "greeting"))  # new user
    await log.exchange(31, "es", Row("in", "text", "glioma"), Row("out", "answer", "Un glioma…", "glioma_what"))
    assert commits[0] == 2
    assert await _messages(db, 31) == [("in", "text", "hola", None), ("out", "answer", "¡Hola!", "greeting"),
                                       ("in", "text", "glioma", None), ("out", "answer", "Un glioma…", "glioma_what")]


async def test_a_failed_exchange_is_queued_whole_and_replayed_whole(sqlite_db, tmp_path):
    """While another process holds the write lock the exchange is one queued write, not a question without its
    answer; the replay writes both rows."""
    db = sqlite_db
    log = ConversationLog(db)
    await log.exchange(32, "es", Row("in", "text", "primero"), Row("out", "answer", "uno"))
    blocker = sqlite3.connect(tmp_path / "log.db", timeout=0)
    blocker.execute("BEGIN EXCLUSIVE")
    db.retries = 0
    import bot.db.engine as engine_module

    old = engine_module.BUSY_TIMEOUT_MS
    try:
        await db.engine.dispose()
        engine_module.BUSY_TIMEOUT_MS = 50
        await log.exchange(32, "es", Row("in", "text", "segundo"), Row("out", "answer", "dos"))
        assert len(db.pending) == 1
    finally:
        blocker.rollback()
        blocker.close()
        engine_module.BUSY_TIMEOUT_MS = old
    assert [r[2] for r in await _messages(db, 32)] == ["primero", "uno"]
    assert await db.flush_pending() == 1
    assert [r[2] for r in await _messages(db, 32)] == ["primero", "uno", "segundo", "dos"]


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_the_language_is_cached_and_lang_and_forget_invalidate_it(db, monkeypatch):
    """Two logs on one database stand for two workers: the other worker's /lang shows after the TTL,
    this worker's own /lang and /forget at once."""
    import bot.db.log as log_module

    clock = _Clock()
    monkeypatch.setattr(log_module, "monotonic", clock)
    here, there = ConversationLog(db, language_ttl_s=5.0), ConversationLog(db)
    reads = [0]
    real_read = db.read

    async def counting_read(op):
        reads[0] += 1
        return await real_read(op)

    monkeypatch.setattr(db, "read", counting_read)
    assert await here.language(41) is None
    await here.message(41, "es", "in", "text", "hola")  # creates the user in Spanish
    assert await here.language(41) == "es" and reads[0] == 1  # known from the write, no read

    await there.set_language(41, "en")  # another worker
    assert await here.language(41) == "es"  # stale, within the TTL
    clock.now += 5.1
    assert await here.language(41) == "en" and reads[0] == 2  # expired: read again

    await here.set_language(41, "es")
    assert await here.language(41) == "es" and reads[0] == 2  # this worker's own /lang: at once, no read
    assert await here.forget(41) == "deleted"
    assert await here.language(41) is None and reads[0] == 3  # this worker's /forget: read again, gone
    assert await here.counts(41) == {"users": 0, "messages": 0, "predictions": 0, "feedback": 0}


async def test_rows_after_another_workers_forget_go_to_a_new_row_never_to_a_reused_id(db):
    """SQLite gives the highest deleted row id to the next new user. A worker that had served a user
    before another worker's /forget must not write to that id: the rows would land on a stranger."""
    here, there = ConversationLog(db), ConversationLog(db)
    await here.exchange(51, "es", Row("in", "text", "hola"), Row("out", "answer", "¡Hola!"))
    assert await here.language(51) == "es"  # cached here
    async with db.engine.connect() as conn:
        old_id = (await conn.execute(text("SELECT id FROM users WHERE telegram_id = 51"))).scalar()
    assert await there.forget(51) == "deleted"
    await there.message(52, "en", "in", "text", "hi")  # a stranger's first message
    async with db.engine.connect() as conn:
        stranger_id = (await conn.execute(text("SELECT id FROM users WHERE telegram_id = 52"))).scalar()
    if db.engine.dialect.name == "sqlite":
        assert stranger_id == old_id  # the hazard is real here
    await here.exchange(51, "es", Row("in", "text", "¿sigues ahí?"), Row("out", "answer", "Sí"))
    pid = await here.prediction(51, "es", "photo", "d" * 64, RESULT)
    assert [r[2] for r in await _messages(db, 51)] == ["¿sigues ahí?", "Sí"]
    assert [r[2] for r in await _messages(db, 52)] == ["hi"]  # nothing of 51's on the stranger
    assert [h.verdict for h in await here.history(51)] == ["tumor"] and not await here.history(52)
    async with db.engine.connect() as conn:
        owner = (await conn.execute(text("SELECT u.telegram_id FROM predictions p JOIN users u ON u.id = p.user_id "
                                         "WHERE p.id = :p"), {"p": pid})).scalar()
    assert owner == 51
    assert await there.forget(51) == "deleted"
    assert await there.counts(51) == {"users": 0, "messages": 0, "predictions": 0, "feedback": 0}
    assert await there.counts(52) == {"users": 1, "messages": 1, "predictions": 0, "feedback": 0}


async def test_a_question_that_breaks_the_router_is_still_logged(sqlite_db):
    from bot.service import Assistant
    from bot.settings import Settings

    class BrokenRouter:
        def answer(self, text: str, lang: str | None = None):
            raise RuntimeError("a bug in the router")

    helper = Assistant(Settings(), None, BrokenRouter(), sqlite_db)
    try:
        with pytest.raises(RuntimeError):
            await helper.ask(61, "hola", "es")
    finally:
        helper.pool.shutdown()
        helper.heatmap_pool.shutdown()
    assert await _messages(sqlite_db, 61) == [("in", "text", "hola", None)]
