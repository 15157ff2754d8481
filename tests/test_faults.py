"""Fault injection against the real `saveyourlife bot` process: each fault is one test.

What "survives" means everywhere below: the bot process is still running, the user got
a reply (the answer, or the generic apology from the error handler when PTB gave up on a
send) and the *next* message gets a normal answer. Database faults must never cost the
user a reply, and a log row is either written, retried until written, or queued in
memory (`Database.pending`) and replayed -- never dropped without a trace.

Telegram faults come from FakeTelegram (`fail_next`, `truncate_next_download`).
Database faults are real ones, made in ways that also stop root (tests run as root
here, where `chmod` stops nothing):

* locked: another *process* holds `BEGIN EXCLUSIVE` on the file for a few seconds;
* read-only: the bot opens the file through SQLite's URI `mode=ro`;
* full disk: the bot's RLIMIT_FSIZE is lowered to 0 from outside (`prlimit`), so every
  write(2) to a regular file fails with EFBIG, exactly as a file system that has no room;
  raising the limit again is "the disk has space again". (`PRAGMA max_page_count` would
  give SQLITE_FULL, but it is per connection and not stored in the file, so it cannot be
  set on the bot's own connections from outside; a tmpfs would need a mount.) That is why
  every bot here logs through a pipe that this process drains into `bot.log`: a pipe is
  not subject to RLIMIT_FSIZE, a log file would be.
"""

from __future__ import annotations

import asyncio
import resource
import signal
import sqlite3
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from .bot_harness import BOT_EXE, bot_env, terminate
from .conftest import REPO, jpeg_bytes, landscape_photo
from .fake_telegram import FakeTelegram

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(120)]

REPLY_TIMEOUT = 60.0  # generous: a model may be training on the same two cores
APOLOGY = "Lo siento, algo ha fallado"
QUESTION = "¿qué es un glioma?"
_chat = iter(range(7100, 7999))


# --------------------------------------------------------------------------- #
# A bot process whose log goes through a pipe (see the module docstring)
# --------------------------------------------------------------------------- #


@dataclass
class Bot:
    proc: asyncio.subprocess.Process
    db_path: Path
    log_path: Path
    drain: asyncio.Task

    @property
    def alive(self) -> bool:
        return self.proc.returncode is None

    def rows(self, sql: str, *args) -> list[tuple]:
        conn = sqlite3.connect(self.db_path, timeout=10)
        try:
            return conn.execute(sql, args).fetchall()
        finally:
            conn.close()

    def messages(self, chat_id: int) -> list[tuple]:
        return self.rows("SELECT m.direction, m.kind, m.text FROM messages m JOIN users u ON u.id = m.user_id "
                         "WHERE u.telegram_id = ? ORDER BY m.id", chat_id)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


async def _drain(stream: asyncio.StreamReader, path: Path) -> None:
    with path.open("ab") as out:
        while chunk := await stream.read(65536):
            out.write(chunk)
            out.flush()


async def launch(fake: FakeTelegram, tmp: Path, database_url: str | None = None, extra_env: dict | None = None) -> Bot:
    """Start `saveyourlife bot` on tmp/bot.db (or `database_url`) and wait until it polls."""
    db_path = tmp / "bot.db"
    log_path = tmp / "bot.log"
    env = bot_env(fake, database_url or f"sqlite+aiosqlite:///{db_path}", {"IMAGES_PER_MINUTE": "1000", **(extra_env or {})})
    start = len(fake.sent)
    proc = await asyncio.create_subprocess_exec(BOT_EXE, "bot", cwd=REPO, env=env, stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    bot = Bot(proc, db_path, log_path, asyncio.create_task(_drain(proc.stdout, log_path)))
    try:
        await fake.wait_for(lambda c: c.method == "getUpdates", start=start, timeout=90)
    except BaseException:
        await stop(bot)
        raise
    return bot


async def stop(bot: Bot) -> int:
    await terminate(bot.proc)
    try:
        await asyncio.wait_for(bot.drain, 10)
    except TimeoutError:
        bot.drain.cancel()
    return bot.proc.returncode


async def ask(fake: FakeTelegram, chat_id: int, text: str = QUESTION, lang: str = "es") -> list:
    """Send a text and return every successful sendMessage to that chat once the first has arrived."""
    start = len(fake.sent)
    fake.send_text(chat_id, text, language_code=lang)
    return await fake.replies(chat_id, 1, timeout=REPLY_TIMEOUT, start=start, methods=("sendMessage",))


def sends(fake: FakeTelegram, chat_id: int, start: int) -> list:
    return [c for c in fake.sent[start:] if c.method == "sendMessage" and c.chat_id == chat_id]


async def assert_still_serving(fake: FakeTelegram, bot: Bot) -> None:
    """The process is alive and a fresh user gets the normal answer, not an apology."""
    assert bot.alive, bot.log_text()[-3000:]
    chat = next(_chat)
    [reply] = await ask(fake, chat, "hola")
    assert "Hola" in reply.text and APOLOGY not in reply.text


# --------------------------------------------------------------------------- #
# Telegram faults (one bot for all of them)
# --------------------------------------------------------------------------- #


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def harness(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("faults")
    async with FakeTelegram() as fake:
        bot = await launch(fake, tmp)
        try:
            yield fake, bot
        finally:
            fake.clear_faults()
            await stop(bot)


@pytest.fixture
def fake(harness):
    fake, _ = harness
    yield fake
    fake.clear_faults()  # a fault a failing test did not consume must not leak into the next one


@pytest.fixture
def bot(harness):
    return harness[1]


async def test_429_on_send_message_is_retried_after_retry_after_and_the_answer_arrives(fake, bot):
    """PTB's AIORateLimiter(max_retries=3) waits retry_after (+0.1 s) and sends the same message again."""
    chat = next(_chat)
    start = len(fake.sent)
    fake.fail_next("sendMessage", 429, retry_after=1)
    [reply] = await ask(fake, chat)
    assert "glioma" in reply.text.lower() and APOLOGY not in reply.text
    first, second = sends(fake, chat, start)[:2]
    assert first.status == 429 and first.error["parameters"] == {"retry_after": 1}
    assert second is reply and second.text == first.text
    assert second.time - first.time >= 1.0
    assert len(sends(fake, chat, start)) == 2  # no apology: nothing reached the error handler
    await assert_still_serving(fake, bot)


@pytest.mark.parametrize("status", [500, 502])
async def test_5xx_on_send_message_is_retried_and_the_answer_arrives(fake, bot, status):
    """PTB does not retry 500/502 (AIORateLimiter retries only 429), so send_html retries with back-off."""
    chat = next(_chat)
    start = len(fake.sent)
    fake.fail_next("sendMessage", status)
    await ask(fake, chat)
    failed, retried = sends(fake, chat, start)[:2]
    assert failed.status == status and "glioma" in failed.text.lower()
    assert retried.ok and retried.text == failed.text and APOLOGY not in retried.text
    await asyncio.sleep(0.5)
    assert len(sends(fake, chat, start)) == 2  # one retry, no apology
    await assert_still_serving(fake, bot)


async def test_5xx_on_every_attempt_ends_in_the_error_handlers_apology(fake, bot):
    chat = next(_chat)
    start = len(fake.sent)
    fake.fail_next("sendMessage", 500, count=3)
    fake.send_text(chat, QUESTION, language_code="es")
    apology = await fake.wait_for(lambda c: c.method == "sendMessage" and c.chat_id == chat and c.ok,
                                  start=start, timeout=REPLY_TIMEOUT)
    assert APOLOGY in apology.text
    assert [c.status for c in sends(fake, chat, start)][:3] == [500, 500, 500]
    assert "error while handling an update: NetworkError" in bot.log_text()
    await assert_still_serving(fake, bot)


async def test_a_dropped_connection_on_send_message_is_retried(fake, bot):
    """The fake closes the socket without answering: httpx raises, PTB raises NetworkError, send_html retries."""
    chat = next(_chat)
    start = len(fake.sent)
    fake.fail_next("sendMessage", drop_connection=True)
    await ask(fake, chat)
    failed, retried = sends(fake, chat, start)[:2]
    assert failed.ok is False and failed.status is None and "glioma" in failed.text.lower()
    assert retried.ok and retried.text == failed.text
    await assert_still_serving(fake, bot)


async def test_a_slow_send_message_within_the_read_timeout_only_delays_the_answer(fake, bot):
    chat = next(_chat)
    start = len(fake.sent)
    fake.fail_next("sendMessage", None, delay=3)
    t0 = time.monotonic()
    [reply] = await ask(fake, chat)
    assert time.monotonic() - t0 >= 2.9
    assert "glioma" in reply.text.lower() and reply.fault is not None
    assert len(sends(fake, chat, start)) == 1
    await assert_still_serving(fake, bot)


async def test_a_send_slower_than_the_read_timeout_gets_an_apology_and_still_lands(fake, bot):
    """PTB's default read timeout is 5 s: at 6 s it raises TimedOut and on_error apologises.

    The server still processes the request (as Telegram may), so the user ends up with the
    apology first and the answer a second later: a TimedOut send is "maybe delivered".
    """
    chat = next(_chat)
    start = len(fake.sent)
    fake.fail_next("sendMessage", None, delay=6)
    [first] = await ask(fake, chat)
    assert APOLOGY in first.text
    late = await fake.wait_for(lambda c: c.method == "sendMessage" and c.chat_id == chat and c.fault and c.ok,
                               start=start, timeout=15)
    assert "glioma" in late.text.lower()  # the answer arrives after the apology
    assert [c for c in sends(fake, chat, start) if c.ok] == [late, first]  # (listed by arrival, not by delivery)
    assert "error while handling an update: TimedOut" in bot.log_text()
    await assert_still_serving(fake, bot)


@pytest.mark.parametrize("fault", [dict(drop_connection=True), dict(status=502), dict(status=None, delay=3)],
                         ids=["dropped", "502", "slow"])
async def test_get_updates_faults_are_retried_by_the_updater(fake, bot, fault):
    """The Updater's network loop retries getUpdates (1 s, then 1.5x, after an error; at once after a slow one)."""
    start = len(fake.sent)
    fake.fail_next("getUpdates", **fault)
    # The poll in flight was not faulted; a first message makes it return, so the next poll is the faulted one.
    await ask(fake, next(_chat), "hola")
    faulted = await fake.wait_for(lambda c: c.method == "getUpdates" and c.fault is not None, start=start, timeout=10)
    if not fault.get("delay"):
        await fake.wait_for(lambda c: c is faulted and c.ok is False, start=start, timeout=10)
    chat = next(_chat)
    t0 = time.monotonic()
    [reply] = await ask(fake, chat)
    assert "glioma" in reply.text.lower()
    if fault.get("delay"):
        assert faulted.ok  # the slow poll was answered, late, and polling went on
    else:
        later = [c for c in fake.get_updates_calls if c.time > faulted.time and c.ok]
        assert later, fake.describe_sent(start)
        assert time.monotonic() - t0 < 20
    await assert_still_serving(fake, bot)


async def test_a_download_cut_halfway_asks_to_resend_and_the_second_try_works(fake, bot):
    chat = next(_chat)
    photo = jpeg_bytes(landscape_photo(seed=11))
    fake.truncate_next_download()
    start = len(fake.sent)
    fake.send_photo(chat, photo)
    [reply] = await fake.replies(chat, 1, timeout=REPLY_TIMEOUT, start=start, methods=("sendMessage",))
    assert "No he podido descargar" in reply.text
    assert [d["truncated"] for d in fake.downloads][-1] is True
    assert "download failed: NetworkError" in bot.log_text()
    start = len(fake.sent)
    fake.send_photo(chat, photo)
    [reply] = await fake.replies(chat, 1, timeout=REPLY_TIMEOUT, start=start, methods=("sendMessage",))
    assert "no parece una resonancia" in reply.text
    await asyncio.sleep(0.3)
    assert [r[:3] for r in bot.messages(chat)] == [("in", "photo", None), ("out", "rejected", "download_failed"),
                                                  ("in", "photo", None), ("out", "result", "not_mri")]
    await assert_still_serving(fake, bot)


# --------------------------------------------------------------------------- #
# Database faults
# --------------------------------------------------------------------------- #

LOCK_HOLDER = r"""
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], timeout=10, isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
conn.execute("UPDATE alembic_version SET version_num = version_num")  # a real writer, not just a lock
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("COMMIT")
print("released", flush=True)
"""


async def test_a_database_locked_by_another_process_delays_replies_but_loses_no_row(fake, bot):
    """7 s of BEGIN EXCLUSIVE (with a write) from another process: longer than the 5 s busy_timeout,
    so the first attempt of the first write before each reply (the update claim, or a log row)
    fails with 'database is locked' and is retried. Reads go on (WAL). Replies wait for the
    lock -- about its length -- and nothing needs queueing."""
    hold_s = 7.0
    chats = [next(_chat) for _ in range(3)]
    holder = await asyncio.create_subprocess_exec(sys.executable, "-c", LOCK_HOLDER, str(bot.db_path), str(hold_s),
                                                  stdout=asyncio.subprocess.PIPE)
    try:
        assert await asyncio.wait_for(holder.stdout.readline(), 20) == b"locked\n"
        locked_at = time.monotonic()
        start = len(fake.sent)
        fake.send_text(chats[0], "/start", language_code="es")
        fake.send_text(chats[1], QUESTION, language_code="es")
        fake.send_text(chats[2], "what is a meningioma?", language_code="en")
        replies = [(await fake.replies(c, 1, timeout=REPLY_TIMEOUT, start=start, methods=("sendMessage",)))[0]
                   for c in chats]
        assert await asyncio.wait_for(holder.stdout.readline(), 20) == b"released\n"
        assert min(r.time for r in replies) - locked_at >= hold_s - 1.0  # they did wait for the lock
    finally:
        if holder.returncode is None:
            holder.kill()
        await holder.wait()
    assert "SaveYourLife" in replies[0].text and "glioma" in replies[1].text.lower()
    assert "meningioma" in replies[2].text.lower()
    assert all(APOLOGY not in r.text for r in replies)
    await asyncio.sleep(0.3)
    assert [r[:2] for r in bot.messages(chats[0])] == [("in", "command")]
    assert bot.rows("SELECT consent_at IS NOT NULL FROM users WHERE telegram_id = ?", chats[0]) == [(1,)]
    for chat in chats[1:]:
        assert [r[0] for r in bot.messages(chat)] == ["in", "out"]
    assert "database is locked" in bot.log_text()  # the lock was really hit (and retried past)
    assert "queued," not in bot.log_text()  # a 7 s lock is well inside the retry window: nothing queued
    await assert_still_serving(fake, bot)


async def wait_for_rows(bot: Bot, chat_id: int, n: int, timeout: float) -> list[tuple]:
    deadline = time.monotonic() + timeout
    while len(rows := bot.messages(chat_id)) < n and time.monotonic() < deadline:
        await asyncio.sleep(0.25)
    return rows


async def test_a_full_disk_keeps_the_bot_answering_and_queued_rows_are_replayed_when_space_is_back(fake, bot):
    """RLIMIT_FSIZE=0 on the running bot: SQLite's WAL append fails ('disk I/O error', EFBIG).

    The first write pays the back-off (6 attempts, ~5 s) and is queued; later writes see the
    queue and join it at once. Once the limit is raised the background replayer writes every
    queued row, in order, without waiting for another message.
    """
    chat = next(_chat)
    pid = bot.proc.pid
    soft, hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (0, hard))  # not one more byte in any file
    try:
        [first] = await ask(fake, chat, "hola")
        t0 = time.monotonic()
        [second] = await ask(fake, chat, QUESTION)
        assert time.monotonic() - t0 < 4.0  # queued behind the first, no second round of back-off
        assert APOLOGY not in first.text and "glioma" in second.text.lower()
        assert bot.alive
        log = bot.log_text()
        assert "(OperationalError: disk I/O error); queued, " in log
        assert "database still failing; log write queued, " in log
        assert bot.messages(chat) == []  # nothing reached the file yet
    finally:
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (soft, hard))
    rows = await wait_for_rows(bot, chat, 4, timeout=20)  # REPLAY_EVERY_S is 5 s
    assert [(r[0], r[2]) for r in rows if r[0] == "in"] == [("in", "hola"), ("in", QUESTION)]
    assert [r[0] for r in rows] == ["in", "out", "in", "out"], rows
    # one per question + answer, and the conversation context the glioma question set
    assert "replayed 3 queued log writes, 0 still pending" in bot.log_text()
    [reply] = await ask(fake, chat, "gracias")
    assert APOLOGY not in reply.text
    rows = await wait_for_rows(bot, chat, 6, timeout=10)
    assert [r[0] for r in rows] == ["in", "out"] * 3 and rows[4][2] == "gracias"
    await assert_still_serving(fake, bot)


async def test_a_read_only_database_still_answers_and_queues_every_write(tmp_path):
    """SQLite's `mode=ro` refuses writes even to root ('attempt to write a readonly database')."""
    from bot.db.engine import Database

    path = tmp_path / "ro.db"
    db = Database(f"sqlite+aiosqlite:///{path}")
    await db.migrate()
    await db.close()
    url = f"sqlite+aiosqlite:///file:{path}?mode=ro&uri=true"
    stray = REPO / "file:"
    existed = stray.exists()
    async with FakeTelegram() as fake:
        bot = await launch(fake, tmp_path, database_url=url)
        try:
            chat = next(_chat)
            [reply] = await ask(fake, chat, "hola")
            assert "Hola" in reply.text
            t0 = time.monotonic()
            [reply] = await ask(fake, chat, QUESTION)
            assert "glioma" in reply.text.lower()
            assert time.monotonic() - t0 < 4.0  # later writes join the queue at once
            start = len(fake.sent)
            fake.send_photo(chat, jpeg_bytes(landscape_photo(seed=5)))
            [reply] = await fake.replies(chat, 1, timeout=REPLY_TIMEOUT, start=start, methods=("sendMessage",))
            assert "no parece una resonancia" in reply.text
            assert bot.alive
            # one write per text exchange (question + answer), three for the photo (in, prediction, out), and the
            # conversation context after the glioma question and after the photo's result (stored once the
            # reply is out, so it may land a moment later)
            for _ in range(50):
                if "log write queued, 7 pending" in bot.log_text():
                    break
                await asyncio.sleep(0.1)
            log = bot.log_text()
            assert "(OperationalError: attempt to write a readonly database); queued, 1 pending" in log
            assert "log write queued, 7 pending" in log, log[-3000:]
        finally:
            code = await stop(bot)
    assert code == 0  # a clean shutdown, which says what it could not save
    assert "closing with 7 queued log writes that could not be saved" in bot.log_text()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT COUNT(*) FROM messages").fetchone() == (0,)  # it really was read-only
    finally:
        conn.close()
    assert existed or not stray.exists(), "the URI was taken for a path and a 'file:' folder was made in the repo"


async def test_committed_rows_survive_kill_9_and_the_restarted_bot_answers(tmp_path):
    """SIGKILL gives no chance to flush anything: what was committed (WAL, synchronous=NORMAL) must
    still be there, the restarted bot must answer on the same file, and nothing is handled twice."""
    chat = next(_chat)
    async with FakeTelegram() as fake:
        bot = await launch(fake, tmp_path)
        try:
            [reply] = await ask(fake, chat, "/start")
            assert "SaveYourLife" in reply.text
            await ask(fake, chat, "/lang en")
            await ask(fake, chat, QUESTION)
            before = bot.messages(chat)
            assert [r[0] for r in before] == ["in", "in", "in", "out"]
            bot.proc.send_signal(signal.SIGKILL)
            assert await asyncio.wait_for(bot.proc.wait(), 20) == -signal.SIGKILL
        finally:
            await stop(bot)
        assert bot.messages(chat) == before
        again = await launch(fake, tmp_path)
        try:
            [reply] = await ask(fake, chat, "what is a meningioma?", lang="es")
            assert "meningioma" in reply.text.lower()  # in English: the stored /lang survived
            assert bot.messages(chat)[:4] == before
            assert [r[0] for r in bot.messages(chat)] == ["in", "in", "in", "out", "in", "out"]
            assert bot.rows("SELECT language, consent_at IS NOT NULL FROM users WHERE telegram_id = ?", chat) == \
                [("en", 1)]
        finally:
            code = await stop(again)
        assert code == 0


# --------------------------------------------------------------------------- #
# Database.write's fault path, in process (fast, no bot)
# --------------------------------------------------------------------------- #


async def test_sqlite_urls_with_uri_true_name_the_file_not_a_folder_called_file():
    from bot.db.engine import sqlite_file

    assert sqlite_file("sqlite+aiosqlite:////srv/x/bot.db") == Path("/srv/x/bot.db")
    assert sqlite_file("sqlite+aiosqlite:///file:/srv/x/bot.db?mode=ro&uri=true") == Path("/srv/x/bot.db")
    assert sqlite_file("sqlite+aiosqlite:///file:mem1?mode=memory&cache=shared&uri=true") is None
    assert sqlite_file("sqlite+aiosqlite://") is None
    assert sqlite_file("sqlite+aiosqlite:///:memory:") is None
    assert sqlite_file("postgresql+asyncpg://u:p@db/app") is None


class Outage:
    """Log writes that fail like a full disk while `down` is set, recording what ran."""

    def __init__(self) -> None:
        self.down = False
        self.calls: list[str] = []

    def op(self, name: str, refuse: bool = False):
        from sqlalchemy import text
        from sqlalchemy.exc import IntegrityError, OperationalError

        async def run(session):
            self.calls.append(name)
            if refuse:
                raise IntegrityError("INSERT", {}, Exception("UNIQUE constraint failed"))
            if self.down:
                raise OperationalError("INSERT", {}, Exception("disk I/O error"))
            await session.execute(text("INSERT INTO t (name) VALUES (:n)"), {"n": name})

        return run


@pytest_asyncio.fixture(loop_scope="module")
async def scratch_db(tmp_path):
    from sqlalchemy import text

    from bot.db.engine import Database

    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'w.db'}", retries=1, backoff_s=0.01, replay_s=0.1)
    async with db.engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)"))
    yield db
    await db.close()


async def names(db) -> list[str]:
    from sqlalchemy import text

    async with db.engine.connect() as conn:
        return [r[0] for r in await conn.execute(text("SELECT name FROM t ORDER BY id"))]


async def test_while_writes_are_queued_new_ones_queue_at_once_and_the_replayer_keeps_their_order(scratch_db):
    db, outage = scratch_db, Outage()
    await db.write(outage.op("a"))
    outage.down = True
    assert await db.write(outage.op("b")) is None
    assert outage.calls == ["a", "b", "b"] and len(db.pending) == 1  # retried once, then queued
    await db.write(outage.op("c"))
    assert outage.calls[-1] == "b" and len(db.pending) == 2  # c was not tried: it waits behind b
    outage.down = False
    for _ in range(50):  # no write comes: the background replayer (every 0.1 s here) saves them
        if not db.pending:
            break
        await asyncio.sleep(0.05)
    assert await names(db) == ["a", "b", "c"] and not db.pending


async def test_a_queued_write_the_database_refuses_is_reported_and_does_not_block_the_others(scratch_db, caplog):
    db, outage = scratch_db, Outage()
    outage.down = True
    await db.write(outage.op("x"))
    db.pending.append(outage.op("refused", refuse=True))
    db.pending.append(outage.op("y"))
    outage.down = False
    assert await db.flush_pending() == 2
    assert await names(db) == ["x", "y"] and not db.pending
    assert outage.calls.count("refused") == 2  # tried twice (a race would resolve), then dropped, loudly
    assert "queued log write refused by the database; dropped" in caplog.text
