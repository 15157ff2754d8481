"""One chat turn with memory: read the user's context, answer through the router, log, store the new context.

Used by the Telegram text and button handlers and the console, so all of them follow up the same way.
"""

from __future__ import annotations

from .chat import Reply
from .db.context import ContextStore
from .db.log import Row
from .service import Assistant


async def reply_language(helper: Assistant, user_id: int, text: str, language_code: str | None,
                         chosen: str | None) -> str:
    """/lang's choice; else the language the message is clearly in; else Telegram's locale or the stored one."""
    if chosen:
        return chosen
    return helper.router.language_of(text, language_code or await helper.log.language(user_id))


async def converse(helper: Assistant, user_id: int, text: str, language_code: str | None = None,
                   lang: str | None = None, kind: str = "text") -> Reply:
    """Answer `text` for this user; `lang` forces the reply language (the console's /lang)."""
    store = ContextStore(helper.db)
    context = await store.get(user_id)
    lang = lang or await reply_language(helper, user_id, text, language_code, context.chosen_language)
    question = Row("in", kind, text[:4096])
    try:
        reply = helper.router.answer(text, lang=lang, context=context)
    except Exception:
        await helper.log.exchange(user_id, lang, question)  # a question that broke the router is still logged
        raise
    await helper.log.exchange(user_id, lang, question, Row("out", reply.kind, reply.text, reply.intent))
    if reply.context is not None and reply.context != context:
        await store.put(user_id, reply.context)
    return reply


async def press(helper: Assistant, user_id: int, tag: str, lang: str) -> Reply | None:
    """A follow-up or "which tumour?" button: the cell it names, remembered as the topic."""
    store = ContextStore(helper.db)
    context = await store.get(user_id)
    reply = helper.router.topic(tag, context.chosen_language or lang, context)
    if reply is None:
        return None
    await helper.log.exchange(user_id, reply.lang, Row("in", "button", f"topic:{tag}"),
                              Row("out", reply.kind, reply.text, reply.intent))
    if reply.context is not None and reply.context != context:
        await store.put(user_id, reply.context)
    return reply
