"""Alembic upgrade to head, runnable as `python -m bot.db.migrate` (reads DATABASE_URL).

The bot runs this in a child process, so Alembic (~30 MB resident) never stays in the
long-running bot's memory; it is only needed when the schema is behind.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from importlib.resources import files
from pathlib import Path

MIGRATIONS_DIR = Path(str(files("bot"))) / "migrations"


def head_revision() -> str:
    """The newest revision id, read from the version files (the one no other file revises)."""
    revisions, parents = set(), set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        text = path.read_text()
        rev = re.search(r'^revision\s*=\s*"([^"]+)"', text, re.M)
        down = re.search(r'^down_revision\s*=\s*"([^"]+)"', text, re.M)
        if rev:
            revisions.add(rev.group(1))
        if down:
            parents.add(down.group(1))
    heads = revisions - parents
    if len(heads) != 1:
        raise RuntimeError(f"expected one Alembic head, found {sorted(heads)}")
    return heads.pop()


async def upgrade(url: str) -> None:
    from alembic import command
    from alembic.config import Config

    from .engine import Database

    db = Database(url)

    def run(sync_connection) -> None:
        cfg = Config(str(MIGRATIONS_DIR / "alembic.ini"))
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        cfg.attributes["connection"] = sync_connection
        command.upgrade(cfg, "head")

    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(run)
    finally:
        await db.engine.dispose()


if __name__ == "__main__":
    asyncio.run(upgrade(os.environ["DATABASE_URL"]))
    sys.exit(0)
