"""Conversation context: kept per user in the database (shared by workers, survives restarts), expires,
is deleted by /forget, and makes follow-ups resolve through the real router."""

from __future__ import annotations

import datetime as dt

import pytest

from bot.chat_context import CONTEXT_TTL, ChatContext
from bot.db.context import ContextStore
from bot.db.engine import Database
from bot.db.log import ConversationLog, Row
from bot.knowledge import Question, Topic
from bot.loader import chat_router

NOW = dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def router():
    return chat_router()


@pytest.fixture
async def db(tmp_path):
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'ctx.db'}")
    await database.migrate()
    yield database
    await database.close()


async def test_the_context_is_stored_and_read_back_by_another_worker(db, tmp_path):
    await ContextStore(db).put(7, ChatContext().with_topic(Topic.MENINGIOMA, NOW, Question.TREATMENT))
    other = Database(f"sqlite+aiosqlite:///{tmp_path / 'ctx.db'}")  # a second process on the same database
    try:
        ctx = await ContextStore(other).get(7)
    finally:
        await other.close()
    assert ctx.topic == Topic.MENINGIOMA and ctx.question == Question.TREATMENT and ctx.topic_at == NOW


async def test_an_image_result_is_remembered_and_names_the_topic(db):
    store = ContextStore(db)
    await store.remember_image(8, "tumor", "meningioma", "t1c")
    ctx = await store.get(8)
    assert ctx.image.verdict == "tumor" and ctx.image.tumor_type == "meningioma" and ctx.image.sequence == "t1c"
    assert ctx.topic == Topic.MENINGIOMA and ctx.image_is_latest


async def test_forget_deletes_the_context(db):
    log = ConversationLog(db)
    await log.exchange(9, "es", Row("in", "text", "hola"))
    await ContextStore(db).put(9, ChatContext().with_topic(Topic.GLIOMA, NOW))
    assert (await ContextStore(db).get(9)).topic == Topic.GLIOMA
    assert await log.forget(9) == "deleted"
    assert await ContextStore(db).get(9) == ChatContext()


async def test_lang_is_remembered_as_a_choice(db):
    await ConversationLog(db).set_language(10, "en")
    assert (await ContextStore(db).get(10)).chosen_language == "en"


def test_every_part_expires_on_its_own():
    ctx = ChatContext().with_topic(Topic.GLIOMA, NOW).with_image("no_tumor", None, None, NOW + CONTEXT_TTL)
    later = ctx.fresh(NOW + CONTEXT_TTL + dt.timedelta(minutes=1))
    assert later.topic is None and later.image is not None
    assert ctx.fresh(NOW + 3 * CONTEXT_TTL) == ChatContext()


def _talk(router, *turns, ctx=None, lang=None):
    ctx, replies = ctx or ChatContext(), []
    for i, text in enumerate(turns):
        reply = router.answer(text, lang=lang, context=ctx, now=NOW + dt.timedelta(seconds=i))
        ctx = reply.context
        replies.append(reply)
    return replies


def test_a_follow_up_without_a_topic_uses_the_last_one(router):
    first, second = _talk(router, "¿qué es un meningioma?", "¿y cómo se trata?")
    assert (second.topic, second.question) == (Topic.MENINGIOMA, Question.TREATMENT)
    _, its = _talk(router, "tell me about glioblastoma", "what are its symptoms?")
    assert (its.topic, its.question) == (Topic.GLIOBLASTOMA, Question.SYMPTOMS)


def test_a_new_topic_alone_keeps_the_last_question(router):
    _, kids = _talk(router, "what are the symptoms of a brain tumour?", "and in children?")
    assert (kids.topic, kids.question) == (Topic.CHILDREN, Question.SYMPTOMS)


def test_after_an_image_result_questions_are_about_it(router):
    ctx = ChatContext().with_image("tumor", "meningioma", "t1c", NOW)
    mean, serious = _talk(router, "what does my result mean?", "is that serious?", ctx=ctx, lang="en")
    assert mean.about_result and mean.topic == Topic.MENINGIOMA
    assert "T1" in mean.text  # the sequence it was read on
    assert (serious.topic, serious.question) == (Topic.MENINGIOMA, Question.GRADE)
    clean = ChatContext().with_image("no_tumor", None, None, NOW)
    (reply,) = _talk(router, "¿qué significa esto?", ctx=clean, lang="es")
    assert reply.about_result and reply.topic is None and "no vio signos claros" in reply.text


def test_result_questions_without_an_image_say_so(router):
    (reply,) = _talk(router, "what does my result mean?", lang="en")
    assert not reply.about_result and "not sent me an image" in reply.text


def test_a_follow_up_with_no_context_asks_which_tumour_with_buttons(router):
    (reply,) = _talk(router, "and how is it treated?")
    assert reply.kind == "clarify" and reply.lang == "en"
    tags = [tag for tag, _ in reply.follow_ups]
    assert "glioma.treatment" in tags and "meningioma.treatment" in tags and len(tags) >= 3
    pressed = router.topic(tags[0], "en", reply.context, now=NOW)
    assert (pressed.topic, pressed.question) == (Topic.GLIOMA, Question.TREATMENT)
    assert pressed.context.topic == Topic.GLIOMA


def test_an_expired_topic_no_longer_answers_follow_ups(router):
    first = router.answer("¿qué es un meningioma?", now=NOW)
    late = router.answer("¿y cómo se trata?", context=first.context, now=NOW + CONTEXT_TTL + dt.timedelta(minutes=5))
    assert late.kind == "clarify"
