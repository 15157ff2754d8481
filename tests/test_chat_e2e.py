"""Follow-ups through the real `saveyourlife bot` process and its database: "which tumour?" buttons on a
first-message follow-up, the pressed button becoming the topic, the next follow-up resolved from the stored
context, and /forget deleting that context."""

from __future__ import annotations

import asyncio

import pytest
import pytest_asyncio

from .bot_harness import running_bot, say

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def harness(tmp_path_factory):
    async with running_bot(tmp_path_factory.mktemp("chat_e2e")) as (fake, bot):
        yield fake, bot


def _buttons(reply) -> list[dict]:
    markup = reply.params.get("reply_markup") or {}
    return [b for row in markup.get("inline_keyboard", []) for b in row]


async def test_a_first_message_follow_up_asks_which_tumour_then_remembers_the_choice(harness):
    fake, bot = harness
    ask = await say(fake, 2001, "and how is it treated?", lang="en")
    data = [b.get("callback_data", "") for b in _buttons(ask)]
    assert data == ["topic:glioma.treatment", "topic:meningioma.treatment", "topic:pituitary.treatment"]

    start = len(fake.sent)
    fake.send_callback(2001, ask.result["message_id"], "topic:meningioma.treatment", language_code="en")
    answer = (await fake.replies(2001, 1, start=start, methods=("sendMessage",)))[0]
    assert "treatment" in answer.text.lower()
    assert all(b.get("callback_data", "").startswith("topic:meningioma.") for b in _buttons(answer) if "url" not in b)
    await asyncio.sleep(0.3)
    assert bot.rows("SELECT topic, question FROM chat_context WHERE telegram_id = 2001") == [("meningioma", "treatment")]

    follow = await say(fake, 2001, "what are its symptoms?", lang="en")
    await asyncio.sleep(0.3)
    assert bot.rows("SELECT topic, question FROM chat_context WHERE telegram_id = 2001") == [("meningioma", "symptoms")]
    assert any(b.get("callback_data", "").startswith("topic:meningioma.") for b in _buttons(follow))


async def test_forget_deletes_the_conversation_context(harness):
    fake, bot = harness
    await say(fake, 2002, "¿qué es un glioma?")
    await asyncio.sleep(0.3)
    assert bot.rows("SELECT topic FROM chat_context WHERE telegram_id = 2002") == [("glioma",)]
    confirm = await say(fake, 2002, "/forget")
    start = len(fake.sent)
    fake.send_callback(2002, confirm.result["message_id"], "forget:yes")
    await fake.wait_for(lambda c: c.method == "editMessageText", start=start)
    await asyncio.sleep(0.3)
    assert bot.rows("SELECT COUNT(*) FROM chat_context WHERE telegram_id = 2002") == [(0,)]
