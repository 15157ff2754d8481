"""`saveyourlife serve`: the Starlette webhook app, idempotency and shared state across workers.

Most tests run worker apps in-process (httpx's ASGI transport, lifespan driven by the test), two of
them on one database standing in for two worker processes; the replies go to a FakeTelegram.
One test runs the real command with two uvicorn worker processes on 127.0.0.1.
(bot.serve is imported inside the tests: test_dicom checks that the session has not imported telegram.)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bot.settings import Settings

from .bot_harness import TOKEN
from .conftest import REPO, jpeg_bytes, landscape_photo
from .fake_telegram import FakeTelegram
from .pg import free_port

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
SECRET = "s3cret_webhook-Token"
SIGNED = {SECRET_HEADER: SECRET, "Content-Type": "application/json"}


def settings_for(fake: FakeTelegram, database_url: str, **extra) -> Settings:
    values = {"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": fake.api_url, "TELEGRAM_FILE_URL": fake.file_url,
              "DATABASE_URL": database_url, "WEBHOOK_SECRET": SECRET, "WEBHOOK_URL": None, "LOG_LEVEL": "INFO",
              "TELEGRAM_RATE_LIMITER": False, **extra}
    return Settings(**values)


@contextlib.asynccontextmanager
async def worker_app(settings: Settings, ready: bool = True):
    """One worker, in-process: its lifespan runs here; requests go through httpx's ASGI transport."""
    from bot.serve import create_app  # imported here: collecting this module must not import telegram

    app = create_app(settings)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://worker") as client:
            if ready:
                await asyncio.wait_for(app.state.worker.ready.wait(), 30)
            client.worker = app.state.worker
            yield client


def take_update(fake: FakeTelegram, update_id: int) -> dict:
    """The update a fake.send_* helper queued, taken off the fake's queue (we deliver it ourselves)."""
    update = next(u for u in fake._updates if u["update_id"] == update_id)
    fake._updates.remove(update)
    return update


async def count(url: str, sql: str, **params) -> int:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(text(sql), params)).scalar())
    finally:
        await engine.dispose()


async def quiet(fake: FakeTelegram, seconds: float = 0.8) -> None:
    """Let background handlers finish whatever they would have sent."""
    await asyncio.sleep(seconds)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'serve.db'}"
    return request.getfixturevalue("pg").create_database("serve").url


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite+aiosqlite:///{tmp_path / 'serve.db'}"


# ---- bad input ------------------------------------------------------------------------------------


async def test_a_post_without_or_with_a_wrong_secret_is_refused_and_nothing_is_processed(sqlite_url):
    async with FakeTelegram() as fake, worker_app(settings_for(fake, sqlite_url)) as client:
        start = len(fake.sent)
        update = take_update(fake, fake.send_text(3001, "/start"))
        for headers in ({"Content-Type": "application/json"}, {**SIGNED, SECRET_HEADER: "wrong"},
                        {**SIGNED, SECRET_HEADER: SECRET + "x"}, {**SIGNED, SECRET_HEADER: ""}):
            response = await client.post("/telegram", content=json.dumps(update), headers=headers)
            assert response.status_code == 403
        await quiet(fake)
        assert not fake.calls("sendMessage", 3001) and len(fake.sent) == start
        assert client.worker.counts["forbidden"] == 4 and client.worker.counts["received"] == 0
    assert await count(sqlite_url, "SELECT COUNT(*) FROM processed_updates") == 0
    assert await count(sqlite_url, "SELECT COUNT(*) FROM messages") == 0


async def test_malformed_bodies_get_400_and_other_methods_405(sqlite_url):
    async with FakeTelegram() as fake, worker_app(settings_for(fake, sqlite_url)) as client:
        for body in (b"{not json", b"", b"[]", b'"text"', b'{"message": {"text": "hi"}}', b'{"update_id": "7"}',
                     b'{"update_id": 7, "message": "not an object"}', b"\xff\xfe\x00garbage"):
            response = await client.post("/telegram", content=body, headers=SIGNED)
            assert response.status_code == 400, body
        assert (await client.get("/telegram", headers=SIGNED)).status_code == 405
        big = json.dumps({"update_id": 1, "padding": "x" * (1 << 21)})
        assert (await client.post("/telegram", content=big, headers=SIGNED)).status_code == 413
        assert client.worker.counts["received"] == 0


async def test_unserved_updates_are_acknowledged_ignored_and_logged(sqlite_url, caplog):
    caplog.set_level(logging.INFO, logger="bot.handlers.gate")
    user = {"id": 3003, "is_bot": False, "first_name": "U"}
    channel = {"id": -1001234567890, "type": "channel", "title": "News"}
    updates = [
        {"update_id": 900001, "chat_join_request": {"chat": {"id": -100777, "type": "supergroup", "title": "G"},
                                                    "from": user, "user_chat_id": 3003, "date": 0}},
        {"update_id": 900002, "channel_post": {"message_id": 1, "date": 0, "chat": channel, "text": "@fake_test_bot hola"}},
        {"update_id": 900003, "message": {"message_id": 2, "date": 0, "chat": channel, "text": "hola", "from": user}},
        {"update_id": 900004, "my_chat_member": {"chat": {"id": 3003, "type": "private", "first_name": "U"}, "from": user,
                                                 "date": 0,
                                                 "old_chat_member": {"status": "member", "user": user},
                                                 "new_chat_member": {"status": "kicked", "user": user, "until_date": 0}}},
    ]
    async with FakeTelegram() as fake, worker_app(settings_for(fake, sqlite_url)) as client:
        start = len(fake.sent)
        for update in updates:
            assert (await client.post("/telegram", json=update, headers=SIGNED)).status_code == 200
        await quiet(fake)
        assert [c.method for c in fake.sent[start:]] == []  # no reply, no error apology
        assert client.worker.application.bot_data["gate"]["ignored"] == 4
    logged = caplog.text
    for kind in ("chat_join_request", "channel_post", "chat_type_channel", "my_chat_member"):
        assert kind in logged
    assert await count(sqlite_url, "SELECT COUNT(*) FROM messages") == 0


async def test_the_database_down_at_start_up_gives_503_and_is_retried_until_it_is_back(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the database folder should be")
    url = f"sqlite+aiosqlite:///{blocker / 'sub' / 'bot.db'}"
    async with FakeTelegram() as fake, worker_app(settings_for(fake, url), ready=False) as client:
        health = await client.get("/healthz")
        assert health.status_code == 503
        assert health.json()["database"] is False and health.json()["models"]
        update = take_update(fake, fake.send_text(3004, "hola"))
        assert (await client.post("/telegram", json=update, headers=SIGNED)).status_code == 503  # Telegram retries
        await asyncio.sleep(1.0)
        assert client.worker.db_attempts >= 2  # retried, did not crash
        blocker.unlink()  # the "disk" is back
        await asyncio.wait_for(client.worker.ready.wait(), 15)
        health = await client.get("/healthz")
        assert health.status_code == 200 and health.json()["database"] is True
        assert (await client.post("/telegram", json=update, headers=SIGNED)).status_code == 200
        assert (await fake.replies(3004, 1))[0].text


async def test_a_postgresql_url_to_a_closed_port_is_reported_and_retried(tmp_path):
    port = free_port()  # nothing listens here once the socket is closed
    url = f"postgresql+asyncpg://nobody:pw@127.0.0.1:{port}/nowhere"
    async with FakeTelegram() as fake, worker_app(settings_for(fake, url), ready=False) as client:
        await asyncio.sleep(1.0)
        health = await client.get("/healthz")
        assert health.status_code == 503
        body = health.json()
        assert body["database"] is False and body["database_attempts"] >= 2 and body["database_error"]
        assert "pw" not in json.dumps(body)


# ---- the happy path -------------------------------------------------------------------------------


async def test_healthz_and_the_webhook_is_set_with_the_secret_on_start_up(sqlite_url):
    async with FakeTelegram() as fake:
        settings = settings_for(fake, sqlite_url, WEBHOOK_URL="https://bot.example.org/")
        fake.webhook_delivery = False  # nothing listens at that URL
        async with worker_app(settings) as client:
            assert fake.webhook["url"] == "https://bot.example.org/telegram"
            assert fake.webhook["secret_token"] == SECRET
            health = await client.get("/healthz")
            assert health.status_code == 200
            body = health.json()
            assert body["database"] is True and body["webhook"] == "set"
            assert {"discriminator", "detector", "typer", "intents"} <= set(body["models"])
            assert all(len(v) == 12 for v in body["models"].values())
            assert body["queue"] == {"queued": 0, "in_flight": 0, "depth": 0}


async def test_the_webhook_answers_200_at_once_while_slow_work_goes_on_in_the_background(sqlite_url):
    async with FakeTelegram() as fake, worker_app(settings_for(fake, sqlite_url)) as client:
        fake.fail_next("sendMessage", status=None, delay=3.0)  # the handler's reply is stuck for 3 s
        update = take_update(fake, fake.send_text(3005, "¿qué es un glioma?"))
        t0 = time.monotonic()
        response = await client.post("/telegram", json=update, headers=SIGNED)
        answered = time.monotonic() - t0
        assert response.status_code == 200 and answered < 1.0
        health = (await client.get("/healthz")).json()
        assert health["queue"]["depth"] == 1  # still being handled
        [reply] = await fake.replies(3005, 1, timeout=30)  # waits until the delayed call has completed
        assert "glioma" in reply.text.lower() and time.monotonic() - t0 >= 2.5


# ---- several workers, one database ----------------------------------------------------------------


async def test_the_same_update_delivered_to_two_workers_at_once_gets_one_reply_and_one_row(db_url):
    async with FakeTelegram() as fake:
        settings = settings_for(fake, db_url)
        async with worker_app(settings) as a, worker_app(settings) as b:
            update = take_update(fake, fake.send_text(3006, "¿qué es un meningioma?"))
            answers = await asyncio.gather(*(c.post("/telegram", json=update, headers=SIGNED) for c in (a, b, a, b)))
            assert [r.status_code for r in answers] == [200] * 4  # duplicates are acknowledged too
            await fake.replies(3006, 1)
            await quiet(fake, 1.5)
            assert len(fake.calls("sendMessage", 3006)) == 1
            dupes = a.worker.application.bot_data["gate"]["duplicates"] + b.worker.application.bot_data["gate"]["duplicates"]
            assert dupes == 3
    assert await count(db_url, "SELECT COUNT(*) FROM processed_updates WHERE update_id = :u", u=update["update_id"]) == 1
    assert await count(db_url, "SELECT COUNT(*) FROM messages m JOIN users u ON u.id = m.user_id "
                               "WHERE u.telegram_id = 3006 AND m.direction = 'in'") == 1


async def test_a_user_cannot_beat_the_rate_limit_by_landing_on_different_workers(sqlite_url):
    async with FakeTelegram() as fake:
        settings = settings_for(fake, sqlite_url, IMAGES_PER_MINUTE=2)
        async with worker_app(settings) as a, worker_app(settings) as b:
            texts = []
            for client in (a, b, a, b):
                start = len(fake.sent)
                update = take_update(fake, fake.send_photo(3007, jpeg_bytes(landscape_photo(seed=len(texts)))))
                assert (await client.post("/telegram", json=update, headers=SIGNED)).status_code == 200
                texts.append((await fake.replies(3007, 1, start=start, methods=("sendMessage",)))[0].text)
    assert all("resonancia" in t for t in texts[:2]), texts
    assert all("Espera" in t for t in texts[2:]), texts


async def test_forget_confirmed_on_another_worker_and_a_yes_without_a_pending_request_is_refused(sqlite_url):
    async with FakeTelegram() as fake:
        settings = settings_for(fake, sqlite_url)
        async with worker_app(settings) as a, worker_app(settings) as b:
            async def deliver(client, update_id):
                start = len(fake.sent)
                assert (await client.post("/telegram", json=take_update(fake, update_id), headers=SIGNED)).status_code == 200
                return start

            start = await deliver(a, fake.send_text(3008, "hola"))
            await fake.replies(3008, 1, start=start)
            start = await deliver(a, fake.send_text(3008, "/forget"))
            confirm = (await fake.replies(3008, 1, start=start))[0]
            # a stale "yes" for someone else who never asked: refused, nothing deleted
            start = await deliver(b, fake.send_callback(3008, confirm.result["message_id"], "forget:yes", user_id=3009))
            refused = await fake.wait_for(lambda c: c.method == "editMessageText", start=start)
            assert "no es válida" in refused.params["text"]
            assert await count(sqlite_url, "SELECT COUNT(*) FROM users WHERE telegram_id = 3008") == 1
            # the user's own "yes", on the other worker
            start = await deliver(b, fake.send_callback(3008, confirm.result["message_id"], "forget:yes"))
            done = await fake.wait_for(lambda c: c.method == "editMessageText" and c.ok, start=start)
            assert "borrado" in done.params["text"]
            assert await count(sqlite_url, "SELECT COUNT(*) FROM users WHERE telegram_id = 3008") == 0
            assert await count(sqlite_url, "SELECT COUNT(*) FROM pending_confirmations") == 0


# ---- the real command -----------------------------------------------------------------------------


async def test_saveyourlife_serve_with_two_workers_takes_telegrams_webhook_calls(tmp_path):
    exe = shutil.which("saveyourlife", path=str(Path(sys.executable).parent))
    port = free_port()
    async with FakeTelegram() as fake:
        env = {**os.environ, "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": fake.api_url,
               "TELEGRAM_FILE_URL": fake.file_url, "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}",
               "WEBHOOK_URL": f"http://127.0.0.1:{port}", "WEBHOOK_SECRET": SECRET, "LOG_LEVEL": "INFO"}
        log_path = tmp_path / "serve.log"
        proc = await asyncio.create_subprocess_exec(exe, "serve", "--port", str(port), "--workers", "2", cwd=REPO,
                                                    env=env, stdout=log_path.open("wb"), stderr=asyncio.subprocess.STDOUT)
        try:
            await fake.wait_for("setWebhook", timeout=90)
            assert fake.webhook["url"] == f"http://127.0.0.1:{port}/telegram" and fake.webhook["secret_token"] == SECRET
            start = len(fake.sent)
            fake.send_text(3010, "/start")  # the fake delivers it like Telegram: POST with the secret header
            reply = (await fake.replies(3010, 1, start=start, timeout=90))[0]
            assert "SaveYourLife" in reply.text
            # Either worker may take the next request, and the one that did not answer /start can still be
            # migrating (its /healthz is then 503, rightly): check health once both say they are ready.
            deadline = time.monotonic() + 60
            while log_path.read_text(errors="replace").count("database ready") < 2 and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                health = await client.get("/healthz")
                assert health.status_code == 200 and health.json()["database"] is True
                assert health.json()["telegram_rate_share"] == 2  # each worker keeps 15 of the ~30 msg/s
                assert (await client.post("/telegram", json={"update_id": 1})).status_code == 403
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(proc.wait(), 30)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()
    log = log_path.read_text(errors="replace")
    assert proc.returncode == 0, log[-3000:]
    assert log.count("database ready") == 2, log[-3000:]  # two worker processes
    assert TOKEN.split(":")[1] not in log and SECRET not in log
