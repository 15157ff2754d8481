"""The bot's one retry policy: exponential back-off with a bound, built on tenacity.

Why one policy: the log writes, the shared worker state, the Telegram sends and the start-up
connection each had a hand-written loop, and the four had drifted (one capped its wait, one did
not, one counted retries and another attempts). Here each caller only names its limits.

Why no jitter: each retry belongs to one user's request or to one start-up task per worker, not to a
crowd of clients hitting one server at the same second, and the fault tests time the waits (a full
disk costs the first log write about 5 s, then later writes queue at once).

The limits of each caller are the named policies at the bottom, each with the reason for its numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_base,
    retry_if_exception_type,
    retry_if_not_exception_type,
    stop_after_attempt,
    stop_never,
    wait_exponential,
)

__all__ = ["DATABASE_AT_START", "LOG_WRITE", "LOG_WRITE_RETRIES", "SHARED_STATE", "TELEGRAM_SEND", "Backoff", "RetryCallState", "failure"]

Faults = type[BaseException] | tuple[type[BaseException], ...]
BeforeSleep = Callable[[RetryCallState], None]


@dataclass(frozen=True)
class Backoff:
    """Try up to `attempts` times (None: until it works; cancel the task to stop it), waiting
    `first_s`, then twice as long each time, but never longer than `max_s`."""

    attempts: int | None
    first_s: float
    max_s: float

    def retrying(self, retry_on: Faults, *, never_on: Faults = (),
                 before_sleep: BeforeSleep | None = None) -> AsyncRetrying:
        """A tenacity runner: `await policy.retrying(...)(fn, *args)`.

        `never_on` are subclasses of `retry_on` that are answers, not faults: they go straight to the
        caller. When the attempts run out the last fault itself is raised (not tenacity's RetryError),
        so callers handle the same exceptions as before.
        """
        retry: retry_base = retry_if_exception_type(retry_on)
        if never_on:
            retry = retry & retry_if_not_exception_type(never_on)
        return AsyncRetrying(
            stop=stop_never if self.attempts is None else stop_after_attempt(max(1, self.attempts)),
            wait=wait_exponential(multiplier=self.first_s, exp_base=2, max=self.max_s),
            retry=retry,
            before_sleep=before_sleep,
            reraise=True,
        )


def failure(state: RetryCallState) -> BaseException:
    """The fault of the attempt that just failed (for a `before_sleep` log line)."""
    exc = state.outcome.exception() if state.outcome is not None else None
    return exc if exc is not None else RuntimeError("unknown failure")


# A log write (Database.write): 6 attempts over about 5 s (0.2, 0.4, 0.8, 1.6, 2 s). Longer than a
# routine lock held by another process, short enough that a user waits through it once: after that
# the write is queued and replayed, and later writes join the queue at once.
LOG_WRITE_RETRIES = 5
LOG_WRITE = Backoff(attempts=LOG_WRITE_RETRIES + 1, first_s=0.2, max_s=2.0)
# Shared worker state (update claims, rate limits, confirmations): one retry after 0.1 s, then the
# caller fails open, because a user is waiting and a rate-limit event replayed later would be wrong.
SHARED_STATE = Backoff(attempts=2, first_s=0.1, max_s=1.0)
# A Telegram send that got a 5xx or a dropped connection: 3 attempts, 0.5 s then 1 s apart (PTB itself
# retries only 429s). Past that the error handler apologises.
TELEGRAM_SEND = Backoff(attempts=3, first_s=0.5, max_s=1.0)
# `serve`'s database at start-up: until it works, 0.5 s doubling to 30 s; /healthz says 503 meanwhile.
DATABASE_AT_START = Backoff(attempts=None, first_s=0.5, max_s=30.0)
