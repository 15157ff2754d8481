"""Group -1, before every other handler: drop what the bot does not serve, and claim each update once.

Telegram re-delivers an update when a webhook answer is slow or lost, and with several workers
the copy may land on another process. The claim is a row in `processed_updates` (unique
update_id), so exactly one worker goes on; the others stop here. Polling uses the same gate.
"""

from __future__ import annotations

import logging

from telegram import Update
from telegram.ext import ApplicationHandlerStop, ContextTypes

from ..db.shared import SharedStateUnavailable

log = logging.getLogger(__name__)

SERVED = ("message", "edited_message", "callback_query")


def unserved(update: Update) -> str | None:
    """Why the bot ignores this update (its kind), or None when it is one the handlers serve."""
    if not any(getattr(update, field) is not None for field in SERVED):
        kinds = [k for k in update.to_dict() if k != "update_id"]
        return kinds[0] if kinds else "empty"
    chat = update.effective_chat
    if update.effective_user is None:
        return "no_user"
    if chat is not None and chat.type not in ("private", "group", "supergroup"):
        return f"chat_type_{chat.type}"
    return None


async def admit(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    counters: dict = context.application.bot_data.setdefault("gate", {"ignored": 0, "duplicates": 0})
    reason = unserved(update)
    if reason is not None:
        counters["ignored"] += 1
        log.info("ignored update %s: %s", update.update_id, reason)
        raise ApplicationHandlerStop
    helper = context.application.bot_data.get("assistant")
    if helper is None:
        return
    try:
        first = await helper.shared.claim_update(update.update_id)
    except SharedStateUnavailable as exc:
        # Fail open: answering twice on a rare re-delivery beats not answering while the DB is sick.
        log.warning("update %s processed unclaimed, database unavailable (%s)", update.update_id, exc)
        return
    if not first:
        counters["duplicates"] += 1
        log.info("duplicate update %s skipped", update.update_id)
        raise ApplicationHandlerStop
