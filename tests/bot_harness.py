"""Start the real `saveyourlife bot` process against a FakeTelegram, and talk to it."""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from .conftest import REPO
from .fake_telegram import FakeTelegram

TOKEN = "123456789:AAE2e-test-token-ShouldNeverBeLogged"


class BotProcess:
    def __init__(self, proc: asyncio.subprocess.Process, log_path: Path, db_path: Path) -> None:
        self.proc = proc
        self.log_path = log_path
        self.db_path = db_path

    def rows(self, sql: str, *args) -> list[tuple]:
        with sqlite3.connect(self.db_path) as conn:
            return conn.execute(sql, args).fetchall()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


BOT_EXE = shutil.which("saveyourlife", path=str(Path(sys.executable).parent))


def bot_env(fake: FakeTelegram, database_url: str, extra_env: dict | None = None) -> dict:
    """The environment of a bot process talking to `fake` (polling unless extra_env sets WEBHOOK_URL)."""
    env = {**os.environ, "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": fake.api_url,
           "TELEGRAM_FILE_URL": fake.file_url, "DATABASE_URL": database_url, "LOG_LEVEL": "DEBUG", **(extra_env or {})}
    if "WEBHOOK_URL" not in (extra_env or {}):
        env.pop("WEBHOOK_URL", None)
    return env


async def start_bot(fake: FakeTelegram, tmp: Path, extra_env: dict | None = None, ready: str = "getUpdates") -> BotProcess:
    """Start `saveyourlife bot`; return once it has called `ready` (getUpdates when polling, setWebhook otherwise)."""
    db_path = tmp / "bot.db"
    log_path = tmp / "bot.log"
    env = bot_env(fake, f"sqlite+aiosqlite:///{db_path}", extra_env)
    proc = await asyncio.create_subprocess_exec(BOT_EXE, "bot", cwd=REPO, env=env, stdout=log_path.open("wb"),
                                                stderr=asyncio.subprocess.STDOUT)
    await fake.wait_for(ready, timeout=60)
    return BotProcess(proc, log_path, db_path)


async def terminate(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM, then SIGKILL if the process has not exited within 20 s."""
    if proc.returncode is None:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 20)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def stop_bot(bot: BotProcess) -> None:
    await terminate(bot.proc)


async def say(fake: FakeTelegram, chat_id: int, text: str, lang: str = "es"):
    """Send a text as the user and return the bot's first reply to it."""
    start = len(fake.sent)
    fake.send_text(chat_id, text, language_code=lang)
    return (await fake.replies(chat_id, 1, start=start))[0]


async def send_and_reply(fake: FakeTelegram, chat_id: int, send, *args, **kwargs):
    """Call a fake.send_* helper and return the bot's first sendMessage reply to it."""
    start = len(fake.sent)
    send(chat_id, *args, **kwargs)
    return (await fake.replies(chat_id, 1, start=start, methods=("sendMessage",)))[0]


@asynccontextmanager
async def running_bot(tmp: Path) -> AsyncIterator[tuple[FakeTelegram, BotProcess]]:
    """A fake Bot API and the real bot polling it, for one test module; stopped however the module ends."""
    async with FakeTelegram() as fake:
        bot = await start_bot(fake, tmp)
        try:
            yield fake, bot
        finally:
            await stop_bot(bot)
