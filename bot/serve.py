"""`saveyourlife serve`: the bot as an ASGI app (Starlette) under uvicorn, one PTB Application per worker.

Built like python-telegram-bot's custom-webhook example (Starlette + uvicorn, `updater=None`):

    POST /telegram  Telegram's webhook. Checks X-Telegram-Bot-Api-Secret-Token against
                    WEBHOOK_SECRET (403, nothing processed), parses the update (400 when malformed),
                    puts it on `application.update_queue` and answers 200 at once: handlers run in
                    the background, so slow inference never makes Telegram re-deliver. 503 while
                    this worker's database is not ready (Telegram retries later).
    GET  /healthz   model versions (manifest), database reachable (SELECT 1), queue depth (queued +
                    in flight); HTTP 503 when the database is not reachable.

Every uvicorn worker is a process of its own that calls `create_app()`: its own Application,
models, thread pool and database pool. What the workers must agree on — which update was already
handled, per-user rate limits, pending /forget confirmations — lives in the database
(bot/db/shared.py), so any worker may take any update.

If the database is down at start-up, the worker still starts: /healthz says so (503,
"database": false) and a background task retries with exponential back-off
(`bot.retry.DATABASE_AT_START`) until it connects and migrates.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import os
import re
import time

from sqlalchemy import text
from sqlalchemy.engine import make_url
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from telegram import BotCommand, Update

from .app import COMMANDS, build_application
from .db.engine import Database
from .loader import Models, load_models
from .logging_setup import configure_logging
from .retry import DATABASE_AT_START, RetryCallState, failure
from .service import Assistant
from .settings import Settings

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_BODY_BYTES = 1 << 20  # an Update is a few KB; files are fetched separately with getFile
MAX_QUEUED = 5000  # past this, answer 503 and let Telegram hold the update (load shedding)
DB_PROBE_TIMEOUT_S = 3.0
# How many worker processes send for this bot token (all hosts together): each keeps 1/N of
# Telegram's ~30 messages/s. `run_serve` sets it to --workers unless the operator already did.
WORKERS_ENV = "SAVEYOURLIFE_SERVE_WORKERS"
MIGRATION_LOCK_KEY = 0x5A7E_0F_11FE  # pg_advisory_lock key: one worker migrates at a time


def db_password(url: str) -> str:
    try:
        return make_url(url).password or ""
    except Exception:
        return ""


async def migrate_exclusively(db: Database) -> None:
    """Alembic to head; on PostgreSQL under an advisory lock so concurrent workers take turns."""
    if db.engine.dialect.name != "postgresql":
        await db.migrate()
        return
    async with db.engine.connect() as conn:
        await conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
        try:
            await db.migrate()
        finally:
            await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK_KEY})
            await conn.commit()


class Worker:
    """One process's bot: the PTB Application fed by the ASGI endpoint, and its database supervisor."""

    def __init__(self, settings: Settings) -> None:
        if not settings.token:
            raise RuntimeError("TELEGRAM_BOT_TOKEN is not set")
        if not settings.webhook_secret:
            raise RuntimeError("WEBHOOK_SECRET is not set (Telegram sends it in " + SECRET_HEADER + ")")
        self.settings = settings
        self.secret = settings.webhook_secret.get_secret_value().encode()
        self.rate_share = max(1, int(os.environ.get(WORKERS_ENV, "1") or 1))
        self.application = build_application(settings, updater=False, rate_share=self.rate_share)
        self.assistant: Assistant | None = None
        self.ready = asyncio.Event()
        self.model_versions: dict[str, str] = {}
        self.db_attempts = 0
        self.db_error: str | None = None
        self.webhook = "not configured"
        self.counts = {"received": 0, "forbidden": 0, "malformed": 0, "shed": 0}
        self._models: Models | None = None
        self._db_task: asyncio.Task | None = None

    # ---- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        self._models = await asyncio.to_thread(load_models, self.settings)
        self.model_versions = {name: spec.version for name, spec in self._models.manifest.models.items()}
        await self.application.initialize()  # getMe
        await self.application.start()  # the loop that takes updates off update_queue
        self._db_task = asyncio.create_task(self._connect_database(), name="database-supervisor")
        await self._set_webhook()
        try:
            await self.application.bot.set_my_commands([BotCommand(c, d) for c, d in COMMANDS])
        except Exception as exc:  # cosmetic; never block start-up on it
            log.warning("set_my_commands failed: %s", type(exc).__name__)
        log.info("worker %d serving as @%s", os.getpid(), self.application.bot.username)

    async def stop(self) -> None:
        if self._db_task is not None:
            self._db_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._db_task
        if self.application.running:
            await self.application.stop()  # drains update_queue and waits for handlers in flight
        if self.assistant is not None:
            await self.assistant.close()
        await self.application.shutdown()

    async def _set_webhook(self) -> None:
        if not self.settings.webhook_url:
            return
        url = self.settings.webhook_url.rstrip("/") + "/telegram"
        try:
            await self.application.bot.set_webhook(url, secret_token=self.secret.decode(),
                                                   allowed_updates=Update.ALL_TYPES)
            self.webhook = "set"
            log.info("webhook set to %s", url)
        except Exception as exc:
            self.webhook = f"failed: {type(exc).__name__}"
            log.error("setWebhook failed: %s", type(exc).__name__)

    async def _connect_database(self) -> None:
        """Open and migrate the database, retrying with exponential back-off until it works."""
        retrying = DATABASE_AT_START.retrying(Exception, before_sleep=self._database_not_ready)
        db = await retrying(self._open_database)
        self.assistant = Assistant.from_models(self.settings, self._models, db)
        self.application.bot_data["assistant"] = self.assistant
        self.db_error = None
        self.ready.set()
        log.info("database ready (%s) after %d attempt(s)", db.engine.dialect.name, self.db_attempts)

    async def _open_database(self) -> Database:
        """One attempt: a new engine, migrated; disposed again if the attempt fails (or is cancelled)."""
        self.db_attempts += 1
        db = Database(self.settings.database_url)
        try:
            await migrate_exclusively(db)
        except BaseException:
            with contextlib.suppress(Exception):
                await db.engine.dispose()
            raise
        return db

    def _database_not_ready(self, state: RetryCallState) -> None:
        exc = failure(state)
        self.db_error = type(exc).__name__
        log.warning("database not ready (attempt %d: %s: %s); retrying in %.1f s", self.db_attempts,
                    type(exc).__name__, str(exc).splitlines()[0][:200] if str(exc) else "", state.upcoming_sleep)

    # ---- state ----------------------------------------------------------------------------------

    def queue_depth(self) -> dict[str, int]:
        queued = self.application.update_queue.qsize()
        in_flight = self.application.update_processor.current_concurrent_updates
        return {"queued": queued, "in_flight": in_flight, "depth": queued + in_flight}

    async def database_ok(self) -> bool:
        if self.assistant is None:
            return False
        try:
            async with asyncio.timeout(DB_PROBE_TIMEOUT_S):
                async with self.assistant.db.engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
            return True
        except Exception as exc:
            self.db_error = type(exc).__name__
            return False

    # ---- endpoints ------------------------------------------------------------------------------

    async def telegram(self, request: Request) -> Response:
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, self.secret):
            self.counts["forbidden"] += 1
            return JSONResponse({"ok": False, "error": "forbidden"}, status_code=403)
        if not self.ready.is_set():
            return JSONResponse({"ok": False, "error": "starting: database not ready"}, status_code=503,
                                headers={"Retry-After": "5"})
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                self.counts["malformed"] += 1
                return JSONResponse({"ok": False, "error": "body too large"}, status_code=413)
        try:
            data = json.loads(body)
            if not isinstance(data, dict) or type(data.get("update_id")) is not int:
                raise ValueError("not an Update: no integer update_id")
            update = Update.de_json(data, self.application.bot)
        except Exception as exc:
            self.counts["malformed"] += 1
            log.info("malformed webhook body (%s)", type(exc).__name__)
            return JSONResponse({"ok": False, "error": "malformed update"}, status_code=400)
        if self.application.update_queue.qsize() >= MAX_QUEUED:
            self.counts["shed"] += 1
            return JSONResponse({"ok": False, "error": "busy"}, status_code=503, headers={"Retry-After": "10"})
        self.counts["received"] += 1
        await self.application.update_queue.put(update)  # processed in the background
        return Response(status_code=200)

    async def healthz(self, request: Request) -> Response:
        db_ok = await self.database_ok()
        gate = self.application.bot_data.get("gate", {"ignored": 0, "duplicates": 0})
        body = {
            "ok": db_ok,
            "database": db_ok,
            "database_attempts": self.db_attempts,
            "database_error": None if db_ok else (self.db_error or "not connected"),
            "models": self.model_versions,
            "queue": self.queue_depth(),
            "updates": {**self.counts, **gate},
            "webhook": self.webhook,
            "telegram_rate_share": self.rate_share,
            "pid": os.getpid(),
            "time": round(time.time(), 3),
        }
        return JSONResponse(body, status_code=200 if db_ok else 503)


def create_app(settings: Settings | None = None) -> Starlette:
    """The ASGI app for one worker (uvicorn calls this in each worker process: `factory=True`)."""
    settings = settings or Settings()
    configure_logging(settings.log_level, [settings.token or "",
                                           settings.webhook_secret.get_secret_value() if settings.webhook_secret else "",
                                           db_password(settings.database_url)])
    worker = Worker(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        await worker.start()
        try:
            yield
        finally:
            await worker.stop()

    app = Starlette(routes=[Route("/telegram", worker.telegram, methods=["POST"]),
                            Route("/healthz", worker.healthz, methods=["GET"])],
                    lifespan=lifespan)
    app.state.worker = worker
    return app


def run_serve(settings: Settings, host: str, port: int, workers: int) -> int:
    secrets = [settings.token or "", settings.webhook_secret.get_secret_value() if settings.webhook_secret else "",
               db_password(settings.database_url)]
    configure_logging(settings.log_level, secrets)
    if not settings.token:
        log.error("TELEGRAM_BOT_TOKEN is not set")
        return 2
    if not settings.webhook_secret or not re.fullmatch(r"[A-Za-z0-9_-]{1,256}",
                                                       settings.webhook_secret.get_secret_value()):
        log.error("WEBHOOK_SECRET is missing or not what Telegram accepts (1-256 of A-Z a-z 0-9 _ -): "
                  "`serve` refuses webhook calls it cannot authenticate")
        return 2
    import uvicorn

    os.environ.setdefault(WORKERS_ENV, str(max(1, workers)))  # inherited by every worker process
    uvicorn.run("bot.serve:create_app", factory=True, host=host, port=port, workers=max(1, workers),
                log_config=None, log_level=settings.log_level.lower(), access_log=False,
                server_header=False, timeout_graceful_shutdown=30)
    return 0
