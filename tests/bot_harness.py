"""Start the real `saveyourlife bot` process against a FakeTelegram, and talk to it."""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import sys
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


async def start_bot(fake: FakeTelegram, tmp: Path, extra_env: dict | None = None, ready: str = "getUpdates") -> BotProcess:
    """Start `saveyourlife bot`; return once it has called `ready` (getUpdates when polling, setWebhook otherwise)."""
    exe = shutil.which("saveyourlife", path=str(Path(sys.executable).parent))
    db_path = tmp / "bot.db"
    log_path = tmp / "bot.log"
    env = {**os.environ, "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": fake.api_url,
           "TELEGRAM_FILE_URL": fake.file_url, "DATABASE_URL": f"sqlite+aiosqlite:///{db_path}",
           "LOG_LEVEL": "DEBUG", **(extra_env or {})}
    if "WEBHOOK_URL" not in (extra_env or {}):
        env.pop("WEBHOOK_URL", None)
    proc = await asyncio.create_subprocess_exec(exe, "bot", cwd=REPO, env=env, stdout=log_path.open("wb"),
                                                stderr=asyncio.subprocess.STDOUT)
    await fake.wait_for(ready, timeout=60)
    return BotProcess(proc, log_path, db_path)


async def stop_bot(bot: BotProcess) -> None:
    if bot.proc.returncode is None:
        bot.proc.terminate()
        try:
            await asyncio.wait_for(bot.proc.wait(), 20)
        except asyncio.TimeoutError:
            bot.proc.kill()
            await bot.proc.wait()


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
