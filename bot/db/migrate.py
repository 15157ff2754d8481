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


async def _run(url: str, step) -> None:
    """Run `step(cfg)` (an Alembic command) in one transaction on the database at `url`.

    On SQLite foreign keys are off meanwhile (Alembic's advice for batch mode): a batch that recreates a
    table drops the old one, and with them on the drop would cascade-delete the rows that reference it.
    The pragma is ignored inside a transaction, so it is set before; `foreign_key_check` runs before commit.
    """
    from alembic.config import Config
    from sqlalchemy import text

    from .engine import Database

    db = Database(url)
    sqlite = db.engine.dialect.name == "sqlite"

    def run(sync_connection) -> None:
        cfg = Config(str(MIGRATIONS_DIR / "alembic.ini"))
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        cfg.attributes["connection"] = sync_connection
        step(cfg)
        if sqlite and (broken := sync_connection.execute(text("PRAGMA foreign_key_check")).all()):
            raise RuntimeError(f"migration left rows whose foreign keys point nowhere: {broken[:5]}")

    try:
        async with db.engine.connect() as conn:
            if sqlite:
                await conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
                await conn.commit()
            try:
                async with conn.begin():
                    await conn.run_sync(run)
            finally:
                if sqlite:
                    await conn.exec_driver_sql("PRAGMA foreign_keys=ON")
                    await conn.commit()
    finally:
        await db.engine.dispose()


async def upgrade(url: str, revision: str = "head") -> None:
    from alembic import command

    await _run(url, lambda cfg: command.upgrade(cfg, revision))


async def downgrade(url: str, revision: str) -> None:
    from alembic import command

    await _run(url, lambda cfg: command.downgrade(cfg, revision))


if __name__ == "__main__":
    asyncio.run(upgrade(os.environ["DATABASE_URL"]))
    sys.exit(0)
