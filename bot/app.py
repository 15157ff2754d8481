"""Build the python-telegram-bot Application: one place where every handler is wired."""

from __future__ import annotations

import logging

from telegram import BotCommand, Update
from telegram.constants import FloodLimit
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    TypeHandler,
    filters,
)

from .handlers import callbacks, commands, errors, gate, images, other, text
from .logging_setup import configure_logging
from .service import Assistant
from .settings import Settings

log = logging.getLogger(__name__)

COMMANDS = [("start", "Empezar / Start"), ("help", "Ayuda / Help"), ("privacy", "Privacidad / Privacy"),
            ("history", "Mis resultados / My results"), ("forget", "Borrar mis datos / Delete my data"),
            ("lang", "Idioma es|en / Language"), ("about", "Sobre el proyecto / About")]


async def _post_init(application: Application) -> None:
    settings: Settings = application.bot_data["settings"]
    application.bot_data["assistant"] = await Assistant.create(settings)
    try:
        await application.bot.set_my_commands([BotCommand(c, d) for c, d in COMMANDS])
    except Exception as exc:  # cosmetic; never block start-up on it
        log.warning("set_my_commands failed: %s", type(exc).__name__)
    log.info("bot ready as @%s", application.bot.username)


async def _post_shutdown(application: Application) -> None:
    assistant = application.bot_data.pop("assistant", None)
    if assistant is not None:
        await assistant.close()


def build_application(settings: Settings, updater: bool = True, rate_share: int = 1) -> Application:
    """Every handler, wired once. `updater=False` for `saveyourlife serve`, where the ASGI app feeds
    `application.update_queue` itself (and calls the start-up/shut-down steps itself).

    `rate_share`: how many processes send for this bot token; each gets 1/rate_share of Telegram's
    ~30 messages/s so that together they stay under it (AIORateLimiter is per process)."""
    builder = (
        ApplicationBuilder()
        .token(settings.token)
        .base_url(settings.telegram_api_url)
        .base_file_url(settings.telegram_file_url)
        .concurrent_updates(256)
        .connection_pool_size(64)
        .post_init(_post_init)
        .post_shutdown(_post_shutdown)
    )
    if settings.rate_limiter:
        per_process = FloodLimit.MESSAGES_PER_SECOND / max(1, rate_share)
        builder = builder.rate_limiter(AIORateLimiter(overall_max_rate=per_process, max_retries=3))
    if not updater:
        builder = builder.updater(None)
    application = builder.build()
    application.bot_data["settings"] = settings
    application.add_handler(TypeHandler(Update, gate.admit), group=-1)  # ignore the unserved, claim once
    private = filters.ChatType.PRIVATE
    application.add_handler(CommandHandler("start", commands.start))
    application.add_handler(CommandHandler("help", commands.help_command))
    application.add_handler(CommandHandler("privacy", commands.privacy))
    application.add_handler(CommandHandler("lang", commands.lang_command))
    application.add_handler(CommandHandler("history", commands.history))
    application.add_handler(CommandHandler("forget", commands.forget))
    application.add_handler(CommandHandler("about", commands.about))
    application.add_handler(MessageHandler(filters.COMMAND, commands.unknown))
    application.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, text.on_text))
    application.add_handler(MessageHandler(filters.PHOTO & private, images.on_photo))
    application.add_handler(MessageHandler(filters.Document.ALL & private, images.on_document))
    application.add_handler(CallbackQueryHandler(callbacks.on_feedback, pattern=r"^fb:"))
    application.add_handler(CallbackQueryHandler(callbacks.on_forget, pattern=r"^forget:"))
    application.add_handler(CallbackQueryHandler(callbacks.on_topic, pattern=r"^topic:"))
    application.add_handler(MessageHandler(filters.ALL & ~filters.StatusUpdate.ALL, other.on_other))
    application.add_error_handler(errors.on_error)
    return application


def run_bot(settings: Settings) -> int:
    secrets = [settings.token or "", settings.webhook_secret.get_secret_value() if settings.webhook_secret else ""]
    configure_logging(settings.log_level, secrets)
    if not settings.token:
        log.error("TELEGRAM_BOT_TOKEN is not set; use `saveyourlife chat` for the console")
        return 2
    application = build_application(settings)
    if settings.webhook_url:
        application.run_webhook(
            listen=settings.webhook_listen,
            port=settings.webhook_port,
            url_path="telegram",
            webhook_url=settings.webhook_url.rstrip("/") + "/telegram",
            secret_token=settings.webhook_secret.get_secret_value() if settings.webhook_secret else None,
            allowed_updates=Update.ALL_TYPES,
        )
    else:
        application.run_polling(allowed_updates=Update.ALL_TYPES)
    return 0
