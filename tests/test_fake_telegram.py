"""Self-tests for :mod:`fake_telegram`, driven by the real python-telegram-bot client.

Note: PTB strips the ``Bad Request: `` prefix and capitalises error messages,
hence the case-insensitive ``(?i)`` match patterns below.

No mocks: every test talks HTTP to a live :class:`FakeTelegram` through
``telegram.Bot`` (and one through a full ``telegram.ext.Application`` polling
loop), so a passing run proves PTB 22 accepts the fake's wire format.
The whole module runs in a few seconds and is CPU-light.
"""

from __future__ import annotations

import asyncio
import io
import time

import pytest
import telegram
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, InputMediaPhoto
from telegram.error import BadRequest, EndPointNotFound, NetworkError, RetryAfter, TelegramError

try:
    from .fake_telegram import FakeTelegram
except ImportError:  # pragma: no cover - tests/ not imported as a package
    from fake_telegram import FakeTelegram

pytestmark = pytest.mark.timeout(30)

TOKEN = "123:ABC"
CHAT = 4242


def make_png(width: int = 400, height: int = 300, color: str = "navy") -> bytes:
    """A small real PNG (Pillow), so photo size / downscaling logic is exercised."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
async def fake():
    async with FakeTelegram() as server:
        yield server


@pytest.fixture
async def bot(fake):
    b = telegram.Bot(token=TOKEN, base_url=fake.api_url, base_file_url=fake.file_url)
    await b.initialize()
    try:
        yield b
    finally:
        await b.shutdown()


async def test_urls_and_get_me(fake, bot):
    assert fake.api_url == f"http://127.0.0.1:{fake.port}/bot"
    assert fake.file_url == f"http://127.0.0.1:{fake.port}/file/bot"
    me = await bot.get_me()
    assert me.is_bot and me.id == 123 and me.username == fake.bot_username
    assert fake.sent[0].method == "getMe"  # from bot.initialize()


async def test_send_message_echoes_text_markup_and_parses_html(fake, bot):
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("Sí", callback_data="yes")]])
    first = await bot.send_message(CHAT, "Hola 123", reply_markup=markup)
    assert isinstance(first, telegram.Message)
    assert first.text == "Hola 123" and first.chat.id == CHAT
    assert first.from_user.is_bot and first.reply_markup == markup

    second = await bot.send_message(CHAT, "<b>negrita</b> &amp; más", parse_mode="HTML")
    assert second.message_id > first.message_id
    assert second.text == "negrita & más"
    assert second.entities[0].type == "bold" and second.entities[0].length == 7

    call = await fake.wait_for(lambda c: c.method == "sendMessage" and c.params["text"] == "Hola 123")
    assert call.params["chat_id"] == CHAT and call.params["text"] == "Hola 123"  # "123" not JSON-decoded
    assert call.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "yes"

    with pytest.raises(BadRequest, match="(?i)can't parse entities"):
        await bot.send_message(CHAT, "a <b>b", parse_mode="HTML")
    with pytest.raises(BadRequest, match="(?i)reserved"):
        await bot.send_message(CHAT, "Precio: 1.5", parse_mode="MarkdownV2")
    with pytest.raises(BadRequest, match="(?i)text is empty"):
        await bot.send_message(CHAT, "   ")
    assert len(await fake.replies(CHAT, 2, timeout=1)) == 2  # failed calls do not count


async def test_send_photo_keeps_uploaded_bytes(fake, bot):
    png = make_png()
    msg = await bot.send_photo(CHAT, png, caption="resultado")
    assert msg.caption == "resultado"
    assert len(msg.photo) == 3
    assert [p.width for p in msg.photo] == sorted(p.width for p in msg.photo)
    assert (msg.photo[-1].width, msg.photo[-1].height) == (400, 300)
    assert msg.photo[-1].file_size == len(png)

    call = await fake.wait_for("sendPhoto")
    assert call.files["photo"] == png and call.upload == png
    assert fake.get_file_bytes(msg.photo[-1].file_id) == png

    with pytest.raises(BadRequest, match="(?i)IMAGE_PROCESS_FAILED"):
        await bot.send_photo(CHAT, b"not an image")


async def test_get_file_downloads_registered_bytes(fake, bot):
    payload = bytes(range(256)) * 10
    info = fake.add_file(payload, file_name="scan.dcm", mime_type="application/dicom")
    assert set(info) == {"file_id", "file_unique_id", "file_size", "file_path"}
    assert info["file_size"] == len(payload)

    tg_file = await bot.get_file(info["file_id"])
    assert tg_file.file_path.endswith(info["file_path"])
    assert bytes(await tg_file.download_as_bytearray()) == payload

    with pytest.raises(BadRequest, match="(?i)invalid file_id"):
        await bot.get_file("nope")

    fake.truncate_next_download()
    with pytest.raises(NetworkError):
        await tg_file.download_as_bytearray()
    assert fake.downloads[-1]["truncated"] is True
    assert bytes(await tg_file.download_as_bytearray()) == payload  # only the next one


async def test_get_updates_text_photo_and_offset(fake, bot):
    png = make_png(1000, 800)
    text_id = fake.send_text(CHAT, "/start hola")
    photo_id = fake.send_photo(CHAT, png, caption="mi resonancia")
    assert photo_id == text_id + 1

    updates = await bot.get_updates(timeout=0)
    assert [u.update_id for u in updates] == [text_id, photo_id]
    text_msg = updates[0].message
    assert text_msg.text == "/start hola" and text_msg.from_user.language_code == "es"
    assert text_msg.entities[0].type == "bot_command" and text_msg.entities[0].length == 6
    assert text_msg.chat.type == "private" and text_msg.from_user.id == CHAT

    photo_msg = updates[1].message
    assert photo_msg.caption == "mi resonancia"
    sizes = photo_msg.photo
    assert len(sizes) == 3 and sizes[0].width < sizes[1].width < sizes[2].width
    assert (sizes[-1].width, sizes[-1].height) == (1000, 800)
    largest = await (await bot.get_file(sizes[-1].file_id)).download_as_bytearray()
    assert bytes(largest) == png
    small = await (await bot.get_file(sizes[0].file_id)).download_as_bytearray()
    assert len(small) == sizes[0].file_size

    # offset confirms: updates below it are dropped for good
    again = await bot.get_updates(offset=photo_id, timeout=0)
    assert [u.update_id for u in again] == [photo_id]
    assert await bot.get_updates(offset=photo_id + 1, timeout=0) == ()
    assert fake.pending_updates == []
    assert len(fake.get_updates_calls) == 3


async def test_other_update_kinds_parse(fake, bot):
    fake.send_document(CHAT, b"%PDF-1.4 fake", "informe.pdf")
    fake.send_sticker(CHAT)
    fake.send_voice(CHAT)
    fake.send_location(CHAT)
    fake.send_text(-100123, "hola grupo", user_id=7, chat_type="supergroup")
    fake.send_raw({"message": {"message_id": 999, "date": 0, "chat": {"id": 1, "type": "private"}, "text": "raw"}})
    ups = await bot.get_updates(timeout=0)
    assert ups[0].message.document.file_name == "informe.pdf"
    assert ups[0].message.document.mime_type == "application/pdf"
    assert ups[1].message.sticker is not None and ups[2].message.voice is not None
    assert ups[3].message.location.latitude == pytest.approx(40.4168)
    assert ups[4].message.chat.type == "supergroup" and ups[4].message.from_user.id == 7
    assert ups[5].message.text == "raw"


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # PTB's RetryAfter.retry_after int->timedelta notice
async def test_429_raises_retry_after(fake, bot):
    fake.fail_next("sendMessage", 429, retry_after=3)
    with pytest.raises(RetryAfter) as exc:
        await bot.send_message(CHAT, "hola")
    assert "3" in str(exc.value)
    failed = fake.sent[-1]
    assert failed.ok is False and failed.status == 429
    assert failed.error == {
        "ok": False, "error_code": 429, "description": "Too Many Requests: retry after 3",
        "parameters": {"retry_after": 3},
    }
    assert (await bot.send_message(CHAT, "hola")).text == "hola"  # fault consumed


async def test_500_and_dropped_connection_raise_network_errors(fake, bot):
    fake.fail_next("sendChatAction", 500, count=2)
    for _ in range(2):
        with pytest.raises((NetworkError, TelegramError)):
            await bot.send_chat_action(CHAT, "typing")
    assert await bot.send_chat_action(CHAT, "typing") is True

    fake.fail_next("sendMessage", drop_connection=True)
    with pytest.raises(NetworkError):
        await bot.send_message(CHAT, "x")
    assert fake.sent[-1].ok is False and fake.sent[-1].status is None

    fake.fail_next("getMe", None, delay=0.3)  # pure latency
    started = time.monotonic()
    await bot.get_me()
    assert time.monotonic() - started >= 0.3

    with pytest.raises(EndPointNotFound):
        await bot.do_api_request("noSuchMethod")
    assert fake.sent[-1].error == {"ok": False, "error_code": 404, "description": "Not Found"}


async def test_callback_query_answer_and_edits(fake, bot):
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("Ver", callback_data="show")]])
    sent = await bot.send_message(CHAT, "¿Ver detalle?", reply_markup=markup)
    fake.send_callback(CHAT, sent.message_id, "show")
    [update] = await bot.get_updates(timeout=0)
    query = update.callback_query
    assert query.data == "show" and query.message.message_id == sent.message_id

    assert await bot.answer_callback_query(query.id, text="ok") is True
    assert fake.callback_queries[query.id]["answer"]["text"] == "ok"
    with pytest.raises(BadRequest, match="(?i)query is too old"):
        await bot.answer_callback_query(query.id)

    edited = await bot.edit_message_text("Detalle", chat_id=CHAT, message_id=sent.message_id)
    assert edited.text == "Detalle" and edited.reply_markup is None  # edit without markup drops it
    with pytest.raises(BadRequest, match="(?i)message is not modified"):
        await bot.edit_message_text("Detalle", chat_id=CHAT, message_id=sent.message_id)
    again = await bot.edit_message_reply_markup(chat_id=CHAT, message_id=sent.message_id, reply_markup=markup)
    assert again.reply_markup == markup
    with pytest.raises(BadRequest, match="(?i)message to edit not found"):
        await bot.edit_message_text("x", chat_id=CHAT, message_id=9999)
    replies = await fake.replies(CHAT, 2, timeout=1)
    assert [c.method for c in replies] == ["sendMessage", "editMessageText"]


async def test_long_polling_timeout_and_wakeup(fake, bot):
    started = time.monotonic()
    assert await bot.get_updates(timeout=1) == ()
    assert 0.9 <= time.monotonic() - started < 3

    mark = len(fake.sent)
    poll = asyncio.create_task(bot.get_updates(timeout=5))
    pending = await fake.wait_for("getUpdates", timeout=2, start=mark)  # visible on arrival
    assert pending.ok is None and pending.params["timeout"] == 5
    uid = fake.send_text(CHAT, "despierta")
    started = time.monotonic()
    updates = await poll
    assert [u.update_id for u in updates] == [uid]
    assert time.monotonic() - started < 1
    done = await fake.wait_for(lambda c: c.method == "getUpdates" and c.ok, timeout=1, start=mark)
    assert done is pending and done.result[0]["update_id"] == uid


async def test_media_group_webhook_and_commands(fake, bot):
    png = make_png(64, 64)
    msgs = await bot.send_media_group(CHAT, [InputMediaPhoto(png), InputMediaPhoto(png, caption="b")])
    assert len(msgs) == 2 and msgs[0].media_group_id == msgs[1].media_group_id
    assert msgs[1].caption == "b"

    assert await bot.set_my_commands([("start", "Empezar"), ("help", "Ayuda")]) is True
    assert [c.command for c in await bot.get_my_commands()] == ["start", "help"]
    assert await bot.set_my_commands([("start", "Iniciar")], language_code="es") is True
    assert [c.description for c in await bot.get_my_commands(language_code="es")] == ["Iniciar"]
    assert await bot.delete_my_commands() is True
    assert await bot.get_my_commands() == ()

    fake.webhook_delivery = False  # nothing listens at the URL below
    assert await bot.set_webhook("https://example.invalid/hook", secret_token="s3cret") is True
    info = await bot.get_webhook_info()
    assert info.url == "https://example.invalid/hook"
    with pytest.raises(telegram.error.Conflict):
        await bot.get_updates(timeout=0)
    assert await bot.delete_webhook(drop_pending_updates=True) is True
    assert (await bot.get_webhook_info()).url == ""
    assert await bot.close() is True and await bot.log_out() is True


async def test_webhook_delivery_to_real_ptb_webhook_server(fake):
    """setWebhook makes the fake POST pending updates to the bot's webhook (with the secret)."""
    pytest.importorskip("tornado")
    import socket

    from telegram.ext import ApplicationBuilder, CommandHandler

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    async def start(update, context):
        await update.message.reply_text("pong")

    app = ApplicationBuilder().token(TOKEN).base_url(fake.api_url).base_file_url(fake.file_url).build()
    app.add_handler(CommandHandler("start", start))
    await app.initialize()
    await app.start()
    await app.updater.start_webhook(listen="127.0.0.1", port=port, url_path="hook",
                                    webhook_url=f"http://127.0.0.1:{port}/hook", secret_token="s3cret")
    try:
        assert fake.webhook["secret_token"] == "s3cret"
        fake.send_text(CHAT, "/start")
        [reply] = await fake.replies(CHAT, 1, timeout=10)
        assert reply.params["text"] == "pong"
        assert fake.pending_updates == []
    finally:
        await app.updater.stop()
        await app.stop()
        await app.shutdown()


async def test_wait_for_timeout_lists_calls(fake, bot):
    await bot.send_message(CHAT, "algo")
    with pytest.raises(TimeoutError) as exc:
        await fake.wait_for(lambda c: c.method == "sendPhoto", timeout=0.2)
    assert "sendMessage chat_id=4242 'algo'" in str(exc.value)


async def test_full_application_polling_round_trip(fake):
    """A real PTB Application polling the fake and replying to /start."""
    from telegram.ext import ApplicationBuilder, CommandHandler

    async def start(update, context):
        await update.message.reply_text(f"Hola {update.effective_user.first_name}")

    app = (
        ApplicationBuilder().token(TOKEN).base_url(fake.api_url).base_file_url(fake.file_url).build()
    )
    app.add_handler(CommandHandler("start", start))
    await app.initialize()
    await app.start()
    await app.updater.start_polling(poll_interval=0.0, timeout=1, drop_pending_updates=True)
    try:
        fake.send_text(CHAT, "/start")
        [reply] = await fake.replies(CHAT, 1, timeout=10)
        assert reply.params["text"] == f"Hola User{CHAT}"
    finally:
        await app.updater.stop()
        await app.stop()
        await app.shutdown()
    assert any(c.method == "deleteWebhook" for c in fake.sent)
