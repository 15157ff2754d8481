"""The real `saveyourlife bot` process on PostgreSQL (the session's throw-away cluster, see tests/pg.py).

Skipped with a reason when PostgreSQL cannot run here. The bot migrates a fresh database on
start (Alembic), then one conversation goes through every table: users (a Telegram id past
2**31), messages, predictions, feedback (a boolean), the shared rate limit, the pending /forget
confirmation, and the update claims.
"""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
import pytest_asyncio

from .bot_harness import say, send_and_reply, start_bot, stop_bot
from .conftest import jpeg_bytes, landscape_photo
from .fake_telegram import FakeTelegram

pytestmark = pytest.mark.asyncio(loop_scope="module")
BIG_ID = 7_000_000_123  # Telegram user ids no longer fit in 32 bits


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def pg_bot(pg, tmp_path_factory):
    database = pg.create_database("e2e")
    async with FakeTelegram() as fake:
        bot = await start_bot(fake, tmp_path_factory.mktemp("pg-e2e"),
                              {"DATABASE_URL": database.url, "IMAGES_PER_MINUTE": "2"})
        try:
            yield fake, bot, database
        finally:
            await stop_bot(bot)


async def test_the_bot_migrates_postgresql_on_start(pg_bot):
    _, _, database = pg_bot
    assert await database.fetch("SELECT version_num FROM alembic_version") == [("0004",)]
    tables = {r[0] for r in await database.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {"users", "messages", "predictions", "feedback", "processed_updates", "rate_buckets", "rate_events",
            "pending_confirmations"} <= tables
    types = dict(await database.fetch("SELECT column_name, data_type FROM information_schema.columns "
                                      "WHERE table_name = 'users'"))
    assert types["telegram_id"] == "bigint" and types["created_at"] == "timestamp with time zone"


async def test_a_conversation_with_a_big_telegram_id_is_logged_in_postgresql(pg_bot):
    fake, bot, database = pg_bot
    reply = await say(fake, BIG_ID, "/start")
    assert "SaveYourLife" in reply.text
    reply = await say(fake, BIG_ID, "what is a glioma?", lang="en")
    assert "glioma" in reply.text.lower()
    await asyncio.sleep(0.3)
    [(consent,)] = await database.fetch("SELECT consent_at FROM users WHERE telegram_id = $1", BIG_ID)
    assert consent.tzinfo is not None and abs(dt.datetime.now(dt.UTC) - consent) < dt.timedelta(minutes=5)
    rows = await database.fetch("SELECT m.direction, m.kind FROM messages m JOIN users u ON u.id = m.user_id "
                                "WHERE u.telegram_id = $1 ORDER BY m.id", BIG_ID)
    assert rows[0] == ("in", "command") and ("out", "answer") in rows
    claimed = await database.fetch("SELECT COUNT(*) FROM processed_updates")
    assert claimed[0][0] >= 2  # every update was claimed once


async def test_a_photo_gets_a_prediction_row_feedback_and_the_shared_rate_limit(pg_bot):
    fake, _, database = pg_bot
    chat = BIG_ID + 1
    first = await send_and_reply(fake, chat, fake.send_photo, jpeg_bytes(landscape_photo(seed=1)))
    assert "resonancia" in first.text
    second = await send_and_reply(fake, chat, fake.send_photo, jpeg_bytes(landscape_photo(seed=2)))
    assert "resonancia" in second.text
    third = await send_and_reply(fake, chat, fake.send_photo, jpeg_bytes(landscape_photo(seed=3)))
    assert "Espera" in third.text  # IMAGES_PER_MINUTE=2, counted in PostgreSQL
    await asyncio.sleep(0.3)
    rows = await database.fetch("SELECT p.verdict, p.image_bytes IS NULL, length(p.image_sha256) FROM predictions p "
                                "JOIN users u ON u.id = p.user_id WHERE u.telegram_id = $1", chat)
    assert rows == [("not_mri", True, 64)] * 2
    assert await database.fetch("SELECT COUNT(*) FROM rate_events WHERE telegram_id = $1", chat) == [(2,)]


async def test_feedback_is_a_real_boolean_and_forget_needs_the_pending_confirmation(pg_bot):
    fake, _, database = pg_bot
    chat = BIG_ID + 2
    start = len(fake.sent)
    fake.send_photo(chat, jpeg_bytes(landscape_photo(seed=4)))
    result = (await fake.replies(chat, 1, start=start, methods=("sendMessage",)))[0]
    data = [b.get("callback_data", "") for row in result.params["reply_markup"]["inline_keyboard"] for b in row]
    start = len(fake.sent)
    fake.send_callback(chat, result.result["message_id"], next(d for d in data if d.startswith("fb:") and d.endswith(":0")))
    await fake.wait_for(lambda c: c.method == "answerCallbackQuery", start=start)
    await asyncio.sleep(0.3)
    assert await database.fetch("SELECT f.helpful FROM feedback f JOIN users u ON u.id = f.user_id "
                                "WHERE u.telegram_id = $1", chat) == [(False,)]
    # a "yes" without /forget first is refused
    start = len(fake.sent)
    fake.send_callback(chat, result.result["message_id"], "forget:yes")
    refused = await fake.wait_for(lambda c: c.method == "editMessageText", start=start)
    assert "no es válida" in refused.params["text"]
    assert await database.fetch("SELECT COUNT(*) FROM users WHERE telegram_id = $1", chat) == [(1,)]
    confirm = await say(fake, chat, "/forget")
    assert await database.fetch("SELECT COUNT(*) FROM pending_confirmations WHERE telegram_id = $1 "
                                "AND expires_at > now()", chat) == [(1,)]
    start = len(fake.sent)
    fake.send_callback(chat, confirm.result["message_id"], "forget:yes")
    done = await fake.wait_for(lambda c: c.method == "editMessageText", start=start)
    assert "borrado" in done.params["text"]
    await asyncio.sleep(0.3)
    assert await database.fetch("SELECT COUNT(*) FROM users WHERE telegram_id = $1", chat) == [(0,)]
    for table in ("messages", "predictions", "feedback"):
        assert await database.fetch(f"SELECT COUNT(*) FROM {table} WHERE user_id NOT IN (SELECT id FROM users)") == [(0,)]
    assert await database.fetch("SELECT COUNT(*) FROM pending_confirmations WHERE telegram_id = $1", chat) == [(0,)]
