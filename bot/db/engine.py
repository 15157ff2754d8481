"""Engine set-up (WAL, busy timeout), Alembic on start, and retried writes.

A log write that fails (database locked, read-only, disk full) is retried with
back-off, then queued in memory and replayed before the next write, so a
transient fault never silently drops a row.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from sqlalchemy import event
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

log = logging.getLogger(__name__)
T = TypeVar("T")
Write = Callable[[AsyncSession], Awaitable[T]]

MIGRATIONS_DIR = Path(__file__).resolve().parents[1] / "migrations"
BUSY_TIMEOUT_MS = 5000


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class Database:
    def __init__(self, url: str, retries: int = 5, backoff_s: float = 0.2, queue_limit: int = 10_000) -> None:
        self.url = url
        if url.startswith("sqlite"):
            path = url.split(":///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.engine: AsyncEngine = create_async_engine(url, pool_pre_ping=not url.startswith("sqlite"))
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self.retries = retries
        self.backoff_s = backoff_s
        self.pending: deque[Write] = deque(maxlen=queue_limit)
        self._flush_lock = asyncio.Lock()

    async def migrate(self) -> None:
        """Apply Alembic migrations up to head (idempotent)."""
        from alembic import command
        from alembic.config import Config

        def upgrade(sync_connection) -> None:
            cfg = Config(str(MIGRATIONS_DIR / "alembic.ini"))
            cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
            cfg.attributes["connection"] = sync_connection
            command.upgrade(cfg, "head")

        async with self.engine.begin() as conn:
            await conn.run_sync(upgrade)

    async def close(self) -> None:
        await self.flush_pending()
        if self.pending:
            log.error("closing with %d queued log writes that could not be saved", len(self.pending))
        await self.engine.dispose()

    async def _attempt(self, op: Write[T]) -> T:
        async with self.sessions() as session:
            async with session.begin():
                return await op(session)

    async def write(self, op: Write[T]) -> T | None:
        """Run a write in its own transaction, retrying transient faults; queue it if they persist."""
        await self.flush_pending()
        delay = self.backoff_s
        for attempt in range(self.retries + 1):
            try:
                return await self._attempt(op)
            except (OperationalError, DBAPIError, OSError) as exc:
                if attempt == self.retries:
                    self.pending.append(op)
                    log.error("log write failed after %d attempts (%s); queued, %d pending",
                              attempt + 1, type(exc).__name__, len(self.pending))
                    return None
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
        return None

    async def read(self, op: Callable[[AsyncSession], Awaitable[T]]) -> T:
        async with self.sessions() as session:
            return await op(session)

    async def flush_pending(self) -> int:
        """Replay queued writes in order; stop at the first that still fails."""
        if not self.pending:
            return 0
        done = 0
        async with self._flush_lock:
            while self.pending:
                op = self.pending[0]
                try:
                    await self._attempt(op)
                except (OperationalError, DBAPIError, OSError):
                    break
                self.pending.popleft()
                done += 1
        if done:
            log.info("replayed %d queued log writes", done)
        return done
