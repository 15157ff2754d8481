"""Engine set-up (WAL, busy timeout), Alembic on start, and retried writes.

A log write that fails (database locked, read-only, disk full) is retried with
back-off (`bot.retry.LOG_WRITE`), then queued in memory and replayed in order --
before the next write and every few seconds in the background -- so a fault never
silently drops a row.
While writes are queued the database is known to be failing, so new writes join
the queue at once (keeping their order) instead of making each user wait through
another round of back-off.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import TypeVar
from urllib.parse import unquote, urlsplit

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DataError, DBAPIError, IntegrityError, InvalidRequestError, NoSuchModuleError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from inference.errors import ConfigurationError

from ..retry import LOG_WRITE, LOG_WRITE_RETRIES, RetryCallState, failure
from .migrate import MIGRATIONS_DIR

log = logging.getLogger(__name__)
T = TypeVar("T")
Write = Callable[[AsyncSession], Awaitable[T]]

BUSY_TIMEOUT_MS = 5000
REPLAY_EVERY_S = 5.0
# The database (or the way to it) failed: worth retrying, then queueing. PoolTimeout: every
# pooled connection is busy (e.g. all waiting on a lock) for longer than the pool waits.
FAULTS = (OperationalError, DBAPIError, OSError, PoolTimeout)
# The database answered and refused this very row: retrying or queueing it cannot help.
REFUSED = (IntegrityError, DataError)


def sqlite_file(url: str) -> Path | None:
    """The file a SQLite URL opens, or None (in memory, or not SQLite).

    With `uri=true` the database part is an SQLite URI, not a path
    (`sqlite+aiosqlite:///file:/srv/x.db?mode=ro&uri=true`).
    """
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if str(parsed.query.get("uri", "")).lower() in ("true", "1") and database.startswith("file:"):
        if parsed.query.get("mode") == "memory":
            return None
        path = unquote(urlsplit(database).path)
        return Path(path) if path else None
    return Path(database)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class DatabaseURLError(ConfigurationError):
    """DATABASE_URL cannot be parsed, names no installed driver, or points where no file can be made."""


def _engine(url: str) -> AsyncEngine:
    """The async engine for `url`; the error names the setting and the dialect, never the URL (it may hold a password)."""
    try:
        parsed = make_url(url)
        path = sqlite_file(url)
        if path is not None and parsed.query.get("mode") != "ro":
            path.parent.mkdir(parents=True, exist_ok=True)
        return create_async_engine(url, pool_pre_ping=parsed.get_backend_name() != "sqlite")
    except (NoSuchModuleError, InvalidRequestError) as exc:
        raise DatabaseURLError(f"DATABASE_URL names a driver that cannot be used here ({exc})") from None
    except ArgumentError:
        raise DatabaseURLError("DATABASE_URL is not a database URL (expected e.g. sqlite+aiosqlite:///path/to/file.db "
                               "or postgresql+asyncpg://user@host/db)") from None
    except OSError as exc:
        raise DatabaseURLError(f"DATABASE_URL: the folder for the SQLite file cannot be created ({exc.strerror})") from None


class Database:
    def __init__(self, url: str, retries: int = LOG_WRITE_RETRIES, backoff_s: float = LOG_WRITE.first_s,
                 queue_limit: int = 10_000, replay_s: float = REPLAY_EVERY_S) -> None:
        self.url = url
        self.engine: AsyncEngine = _engine(url)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        # SQLite has one writer at a time per file. Queueing this process's writers here, FIFO, is cheaper
        # than letting each take a pooled connection and poll the file lock (busy_timeout sleeps up to
        # 100 ms between tries); other processes still meet at the file lock. PostgreSQL locks rows: no queue.
        self._write_turn = asyncio.Lock() if self.engine.dialect.name == "sqlite" else None
        self.retries = retries
        self.backoff_s = backoff_s
        self.replay_s = replay_s
        self.pending: deque[Write] = deque(maxlen=queue_limit)
        self._flush_lock = asyncio.Lock()
        self._replayer: asyncio.Task | None = None

    async def schema_revision(self) -> str | None:
        """The Alembic revision the database is at, or None (no table yet, or unreadable)."""
        from sqlalchemy import text

        try:
            async with self.engine.connect() as conn:
                return (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
        except (OperationalError, DBAPIError):
            return None

    async def migrate(self) -> None:
        """Bring the schema to Alembic head (idempotent).

        When the schema is already current (every start but the first) Alembic is not even imported;
        otherwise it runs in a child process, so it never stays resident in the bot.
        """
        from .migrate import head_revision

        if await self.schema_revision() == head_revision():
            return
        env = {**os.environ, "DATABASE_URL": self.url}  # in the environment, not on the command line (ps)
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot.db.migrate", env=env,
                                                    cwd=str(MIGRATIONS_DIR.parents[1]),
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        output, _ = await proc.communicate()
        if proc.returncode != 0:
            tail = output.decode(errors="replace")[-2000:]
            raise RuntimeError(f"database migration failed (exit {proc.returncode}): {tail}")

    async def close(self) -> None:
        if self._replayer is not None:
            self._replayer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._replayer
            self._replayer = None
        await self.flush_pending()
        if self.pending:
            log.error("closing with %d queued log writes that could not be saved", len(self.pending))
        await self.engine.dispose()

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A write transaction (committed on exit, rolled back on error), in this process's writer queue."""
        async with self._write_turn or contextlib.nullcontext():
            async with self.sessions() as session:
                async with session.begin():
                    yield session

    async def _attempt(self, op: Write[T]) -> T:
        async with self.transaction() as session:
            return await op(session)

    async def write(self, op: Write[T]) -> T | None:
        """Run a write in its own transaction, retrying transient faults; queue it if they persist."""
        await self.flush_pending()
        if self.pending:  # the database is still failing: wait behind the older writes, not in back-off
            self._enqueue(op)
            log.warning("database still failing; log write queued, %d pending", len(self.pending))
            return None
        # Read at each write, not at construction: `retries` and `backoff_s` may be changed on a live Database.
        policy = replace(LOG_WRITE, attempts=max(0, self.retries) + 1, first_s=self.backoff_s)
        try:
            return await policy.retrying(FAULTS, before_sleep=_log_retry)(self._attempt, op)
        except REFUSED as exc:  # still refused on the last attempt: queueing it cannot help
            log.error("log write refused by the database after %d attempts; not queued", policy.attempts, exc_info=exc)
        except FAULTS as exc:
            self._enqueue(op)
            log.error("log write failed after %d attempts (%s: %s); queued, %d pending",
                      policy.attempts, type(exc).__name__, _reason(exc), len(self.pending))
        return None

    async def read(self, op: Callable[[AsyncSession], Awaitable[T]]) -> T:
        async with self.sessions() as session:
            return await op(session)

    def _enqueue(self, op: Write) -> None:
        if len(self.pending) == self.pending.maxlen:
            log.error("log write queue full (%d): dropping the oldest queued write", self.pending.maxlen)
        self.pending.append(op)
        if self._replayer is None or self._replayer.done():
            try:
                self._replayer = asyncio.get_running_loop().create_task(self._replay_loop(), name="db-replay")
            except RuntimeError:  # no loop: the next write replays instead
                self._replayer = None

    async def _replay_loop(self) -> None:
        """Replay queued writes every `replay_s` seconds until none are left (no need to wait for a user)."""
        while self.pending:
            await asyncio.sleep(self.replay_s)
            try:
                await self.flush_pending()
            except Exception:  # never let the replayer die with rows still queued
                log.exception("replaying queued log writes failed")

    async def flush_pending(self) -> int:
        """Replay queued writes in order; stop at the first that still fails."""
        if not self.pending:
            return 0
        done = 0
        async with self._flush_lock:
            while self.pending:
                op = self.pending[0]
                try:
                    try:
                        await self._attempt(op)
                    except REFUSED:  # once more: a race with a concurrent write (e.g. a new user) resolves
                        await self._attempt(op)
                except REFUSED as exc:  # the database works and refuses this row: don't let it block the rest
                    log.error("queued log write refused by the database; dropped", exc_info=exc)
                except FAULTS:
                    break
                except Exception:  # a bug in the write itself: report it, don't hand it to another caller
                    log.exception("queued log write failed; dropped")
                else:
                    done += 1
                self.pending.popleft()
        if done:
            log.info("replayed %d queued log writes, %d still pending", done, len(self.pending))
        return done


def _log_retry(state: RetryCallState) -> None:
    log.info("log write attempt %d failed (%s); retrying in %.1f s",
             state.attempt_number, _reason(failure(state)), state.upcoming_sleep)


def _reason(exc: BaseException) -> str:
    """The driver's message ('database is locked', 'disk I/O error'), short, for the log."""
    orig = getattr(exc, "orig", None)
    return str(orig if orig is not None else exc).splitlines()[0][:120]
