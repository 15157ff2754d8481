"""State every worker must agree on, kept in the database instead of process memory.

- update claims: each Telegram `update_id` is processed once, whichever worker it lands on;
- per-user rate limits (a sliding window of events);
- pending confirmations (e.g. /forget) with an expiry.

Portable SQL only (SQLite and PostgreSQL): a claim is a plain INSERT whose IntegrityError means
"someone else has it"; a rate check first UPDATEs the user's bucket row, which serialises the
checks for that user (a row lock on PostgreSQL, the write lock on SQLite) before it counts.

These operations do not go through `Database.write`: a claim's IntegrityError is an answer, not a
fault to retry, and a rate-limit event replayed minutes later would be wrong. Transient faults are
retried briefly (`bot.retry.SHARED_STATE`), then surface as `SharedStateUnavailable` so callers can
choose to fail open.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncSession

from ..retry import SHARED_STATE, Backoff
from .engine import Database
from .models import PendingConfirmation, ProcessedUpdate, RateBucket, RateEvent, as_utc, utcnow

log = logging.getLogger(__name__)
T = TypeVar("T")

# The database, or the way to it, failed: worth one more try. (IntegrityError is a DBAPIError too, but an answer.)
FAULTS = (DBAPIError, OSError, PoolTimeout)

# Telegram re-delivers an unacknowledged update for at most about a day; keep claims for two.
CLAIM_RETENTION = dt.timedelta(days=2)
PRUNE_EVERY_S = 600.0
# One per update: a prebuilt Core INSERT costs a fraction of session.add() and the ORM flush.
_CLAIM = insert(ProcessedUpdate.__table__)


class SharedStateUnavailable(RuntimeError):
    """The database could not answer (locked, read-only, down) after a short retry."""


class SharedState:
    def __init__(self, db: Database, policy: Backoff = SHARED_STATE) -> None:
        self.db = db
        self.policy = policy
        self._last_prune = 0.0

    async def _run(self, op: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """One transaction; IntegrityError goes straight to the caller, other DB faults are retried."""
        try:
            return await self.policy.retrying(FAULTS, never_on=IntegrityError)(self._transaction, op)
        except IntegrityError:
            raise
        except FAULTS as exc:
            raise SharedStateUnavailable(type(exc).__name__) from exc

    async def _transaction(self, op: Callable[[AsyncSession], Awaitable[T]]) -> T:
        async with self.db.transaction() as session:
            return await op(session)

    # ---- update claims --------------------------------------------------------------------------

    async def claim_update(self, update_id: int) -> bool:
        """True if this caller is the first to claim `update_id`, False for a duplicate delivery."""

        async def op(session: AsyncSession) -> None:
            await session.execute(_CLAIM, {"update_id": update_id, "created_at": utcnow()})

        try:
            await self._run(op)
        except IntegrityError:
            return False
        if time.monotonic() - self._last_prune > PRUNE_EVERY_S:
            self._last_prune = time.monotonic()
            try:
                await self.prune_claims()
            except SharedStateUnavailable:
                pass
        return True

    async def prune_claims(self, older_than: dt.timedelta = CLAIM_RETENTION) -> int:
        cutoff = utcnow() - older_than

        async def op(session: AsyncSession) -> int:
            result = await session.execute(delete(ProcessedUpdate).where(ProcessedUpdate.created_at < cutoff))
            return result.rowcount or 0

        return await self._run(op)

    # ---- rate limits ----------------------------------------------------------------------------

    async def hit(self, telegram_id: int, kind: str, limit: int, window_s: float = 60.0,
                  now: dt.datetime | None = None) -> float:
        """Count one `kind` event for the user: 0.0 when allowed, else the seconds to wait."""
        fixed_now = as_utc(now) if now is not None else None
        window = dt.timedelta(seconds=window_s)

        async def op(session: AsyncSession) -> float:
            # Lock first (a write), read after: concurrent checks for this user queue up here.
            touched = await session.execute(update(RateBucket)
                                            .where(RateBucket.telegram_id == telegram_id, RateBucket.kind == kind)
                                            .values(touched_at=fixed_now or utcnow()))
            if not touched.rowcount:
                session.add(RateBucket(telegram_id=telegram_id, kind=kind, touched_at=fixed_now or utcnow()))
                await session.flush()  # a concurrent first insert raises IntegrityError: retried below
            now = fixed_now or utcnow()  # read the clock once we hold the lock: events before it are older
            mine = (RateEvent.telegram_id == telegram_id, RateEvent.kind == kind)
            await session.execute(delete(RateEvent).where(*mine, RateEvent.created_at <= now - window))
            count, oldest = (await session.execute(
                select(func.count(RateEvent.id), func.min(RateEvent.created_at)).where(*mine))).one()
            if count >= limit:
                return min(window_s, max(0.1, (window - (now - as_utc(oldest))).total_seconds()))
            session.add(RateEvent(telegram_id=telegram_id, kind=kind, created_at=now))
            return 0.0

        for _ in range(3):
            try:
                return await self._run(op)
            except IntegrityError:  # two first-ever checks raced to create the bucket; the row exists now
                continue
        raise SharedStateUnavailable("rate bucket contention")

    # ---- pending confirmations ------------------------------------------------------------------

    async def set_pending(self, telegram_id: int, action: str, ttl_s: float) -> None:
        expires = utcnow() + dt.timedelta(seconds=ttl_s)

        async def op(session: AsyncSession) -> None:
            await session.execute(delete(PendingConfirmation).where(PendingConfirmation.telegram_id == telegram_id,
                                                                    PendingConfirmation.action == action))
            session.add(PendingConfirmation(telegram_id=telegram_id, action=action, expires_at=expires,
                                            created_at=utcnow()))

        for _ in range(3):
            try:
                return await self._run(op)
            except IntegrityError:  # two /forget at once: the other one's row stands, retry to renew it
                continue

    async def consume_pending(self, telegram_id: int, action: str) -> bool:
        """True exactly once per unexpired confirmation (atomic: a DELETE that matched one row)."""
        now = utcnow()

        async def op(session: AsyncSession) -> bool:
            mine = (PendingConfirmation.telegram_id == telegram_id, PendingConfirmation.action == action)
            live = await session.execute(delete(PendingConfirmation).where(*mine, PendingConfirmation.expires_at > now))
            if live.rowcount:
                return True
            await session.execute(delete(PendingConfirmation).where(*mine))  # an expired one is cleared
            return False

        return await self._run(op)

    async def cancel_pending(self, telegram_id: int, action: str) -> None:
        async def op(session: AsyncSession) -> None:
            await session.execute(delete(PendingConfirmation).where(PendingConfirmation.telegram_id == telegram_id,
                                                                    PendingConfirmation.action == action))

        await self._run(op)

    async def has_pending(self, telegram_id: int, action: str) -> bool:
        async def op(session: AsyncSession) -> bool:
            expires = await session.scalar(select(PendingConfirmation.expires_at).where(
                PendingConfirmation.telegram_id == telegram_id, PendingConfirmation.action == action))
            return expires is not None and as_utc(expires) > utcnow()

        return await self._run(op)
