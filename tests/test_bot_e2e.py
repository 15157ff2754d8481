"""The real `saveyourlife bot` process against a fake Bot API over loopback HTTP."""

from __future__ import annotations

import asyncio
import sqlite3

import numpy as np
import pytest
import pytest_asyncio

from .bot_harness import TOKEN, running_bot, say, start_bot, stop_bot
from .conftest import jpeg_bytes, landscape_photo, pick, png_bytes
from .fake_telegram import FakeTelegram
from .pg import free_port

ALBUM_SETTLE_S = 2.0
pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def harness(tmp_path_factory):
    async with running_bot(tmp_path_factory.mktemp("e2e")) as (fake, bot):
        yield fake, bot


async def test_start_explains_the_bot_privacy_and_that_it_is_not_a_medical_device(harness):
    fake, bot = harness
    reply = await say(fake, 1001, "/start")
    assert "SaveYourLife" in reply.text and "No soy un dispositivo médico" in reply.text
    assert "/forget" in reply.text
    assert bot.rows("SELECT consent_at IS NOT NULL FROM users WHERE telegram_id = 1001") == [(1,)]


async def test_a_question_gets_an_answer_in_the_users_language_with_a_source_button(harness):
    fake, _ = harness
    reply = await say(fake, 1002, "what is a meningioma?", lang="en")
    assert "meningioma" in reply.text.lower()
    buttons = [b for row in reply.params["reply_markup"]["inline_keyboard"] for b in row]
    assert any(b.get("url", "").startswith("https://") and b["text"] == "Learn more" for b in buttons)


async def test_a_real_mri_photo_is_classified_with_notice_and_feedback_buttons(harness, manifest_rows):
    fake, bot = harness
    scan = pick(manifest_rows, 1, source="kaggle4", label="glioma")[0]
    start = len(fake.sent)
    fake.send_photo(1003, scan.read_bytes())
    reply = (await fake.replies(1003, 1, start=start, methods=("sendMessage",)))[0]
    assert any(c.method == "sendChatAction" for c in fake.sent[start:])
    assert "glioma" in reply.text.lower() and "no es un diagnóstico" in reply.text.lower()
    assert "%" in reply.text
    data = [b.get("callback_data", "") for row in reply.params["reply_markup"]["inline_keyboard"] for b in row]
    feedback = next(d for d in data if d.startswith("fb:") and d.endswith(":1"))
    fake.send_callback(1003, reply.result["message_id"], feedback)
    answer = await fake.wait_for(lambda c: c.method == "answerCallbackQuery", start=start)
    assert "Gracias" in answer.params.get("text", "")
    await asyncio.sleep(0.3)
    assert bot.rows("SELECT f.helpful FROM feedback f JOIN users u ON u.id = f.user_id WHERE u.telegram_id = 1003") == [(1,)]
    assert bot.rows("SELECT image_bytes IS NULL, length(image_sha256) FROM predictions p JOIN users u ON u.id = p.user_id "
                    "WHERE u.telegram_id = 1003") == [(1, 64)]


async def test_a_generated_holiday_photo_is_not_an_mri(harness):
    fake, _ = harness
    start = len(fake.sent)
    fake.send_photo(1004, jpeg_bytes(landscape_photo(seed=3)))
    reply = (await fake.replies(1004, 1, start=start))[0]
    assert "no parece una resonancia" in reply.text


async def test_an_image_document_and_a_corrupt_file_get_clear_replies(harness, manifest_rows):
    fake, _ = harness
    from PIL import Image

    scan = pick(manifest_rows, 1, source="kaggle4", label="notumor")[0]
    start = len(fake.sent)
    fake.send_document(1005, png_bytes(Image.open(scan)), "slice.png", "image/png")
    reply = (await fake.replies(1005, 1, start=start))[0]
    assert "Probabilidades" in reply.text
    start = len(fake.sent)
    fake.send_document(1005, jpeg_bytes(landscape_photo())[:300], "broken.jpg", "image/jpeg")
    reply = (await fake.replies(1005, 1, start=start))[0]
    assert "dañada" in reply.text
    start = len(fake.sent)
    fake.send_document(1005, b"%PDF-1.4\n%...", "informe.pdf", "application/pdf")
    reply = (await fake.replies(1005, 1, start=start))[0]
    assert "application/pdf" in reply.text


async def test_forget_deletes_every_row_after_confirmation(harness, manifest_rows):
    fake, bot = harness
    await say(fake, 1006, "hola")
    start = len(fake.sent)
    fake.send_photo(1006, pick(manifest_rows, 1, source="kaggle4", label="pituitary")[0].read_bytes())
    await fake.replies(1006, 1, start=start)
    assert bot.rows("SELECT COUNT(*) FROM messages m JOIN users u ON u.id = m.user_id WHERE u.telegram_id = 1006")[0][0] >= 4
    confirm = await say(fake, 1006, "/forget")
    assert "borrar" in confirm.text
    start = len(fake.sent)
    fake.send_callback(1006, confirm.result["message_id"], "forget:yes")
    done = await fake.wait_for(lambda c: c.method == "editMessageText", start=start)
    assert "borrado" in done.params["text"]
    await asyncio.sleep(0.3)
    assert bot.rows("SELECT COUNT(*) FROM users WHERE telegram_id = 1006") == [(0,)]
    assert bot.rows("SELECT COUNT(*) FROM predictions WHERE user_id NOT IN (SELECT id FROM users)") == [(0,)]
    assert bot.rows("SELECT COUNT(*) FROM messages WHERE user_id NOT IN (SELECT id FROM users)") == [(0,)]


async def test_stickers_voice_and_locations_get_a_polite_reply(harness):
    fake, _ = harness
    for send, expected in ((fake.send_sticker, "sticker"), (fake.send_voice, "voz"), (fake.send_location, "ubicaciones")):
        start = len(fake.sent)
        send(1007)
        reply = (await fake.replies(1007, 1, start=start))[0]
        assert expected in reply.text


async def test_the_log_keeps_a_row_for_every_message_and_never_the_token(harness):
    fake, bot = harness
    await say(fake, 1008, "x" * 5000)
    await asyncio.sleep(0.3)
    kinds = bot.rows("SELECT direction, kind FROM messages m JOIN users u ON u.id = m.user_id WHERE u.telegram_id = 1008")
    assert ("in", "text") in kinds and len(kinds) == 2
    assert TOKEN not in bot.log_text()
    assert TOKEN.split(":")[1] not in bot.log_text()


async def test_an_album_of_slices_gets_one_combined_reply(harness, manifest_rows):
    fake, _ = harness
    slices = pick(manifest_rows, 2, source="kaggle4", label="meningioma") + pick(manifest_rows, 1, source="kaggle4", label="notumor")
    start = len(fake.sent)
    for path in slices:
        fake.send_photo(1009, path.read_bytes(), media_group_id="album-1")
    reply = (await fake.replies(1009, 1, start=start, methods=("sendMessage",)))[0]
    assert "3 cortes analizados" in reply.text
    assert reply.text.count("• Corte") == 3
    assert "En conjunto" in reply.text
    await asyncio.sleep(ALBUM_SETTLE_S)
    assert len([c for c in fake.sent[start:] if c.method == "sendMessage" and c.chat_id == 1009]) == 1


async def test_a_dicom_file_is_analysed_and_patient_tags_never_reach_the_database(harness, manifest_rows):
    fake, bot = harness
    from PIL import Image

    from .test_dicom import make_dataset, to_bytes

    pixels = np.asarray(Image.open(pick(manifest_rows, 1, source="kaggle4", label="glioma")[0]).convert("L"), dtype=np.uint16) * 16
    data = to_bytes(make_dataset(pixels, Modality="MR", BodyPartExamined="BRAIN"))
    start = len(fake.sent)
    fake.send_document(1010, data, "IM000001", "application/octet-stream")
    reply = (await fake.replies(1010, 1, start=start, methods=("sendMessage",)))[0]
    assert "Probabilidades" in reply.text
    ct = to_bytes(make_dataset(pixels, Modality="CT", BodyPartExamined="CHEST"))
    start = len(fake.sent)
    fake.send_document(1010, ct, "ct.dcm", "application/dicom")
    warned = (await fake.replies(1010, 1, start=start, methods=("sendMessage",)))[0]
    assert "no es resonancia" in warned.text and "no es la cabeza" in warned.text
    await asyncio.sleep(0.3)
    dump = "\n".join(sqlite3.connect(bot.db_path).iterdump())
    for secret in ("Doe", "Jane", "ID-12345", "19800101"):
        assert secret not in dump
        assert secret not in bot.log_text()


async def test_history_lang_and_about(harness, manifest_rows):
    fake, _ = harness
    chat = 1011
    empty = await say(fake, chat, "/history")
    assert "Todavía no tengo resultados" in empty.text
    start = len(fake.sent)
    fake.send_photo(chat, pick(manifest_rows, 1, source="kaggle4", label="notumor")[0].read_bytes())
    await fake.replies(chat, 1, start=start, methods=("sendMessage",))
    listed = await say(fake, chat, "/history")
    assert "Tus últimos resultados" in listed.text and listed.text.count("•") == 1
    switched = await say(fake, chat, "/lang en")
    assert "English" in switched.text
    answer = await say(fake, chat, "¿qué es un glioma?")  # stored preference beats the text's language
    assert "glioma" in answer.text.lower() and "tumour" in answer.text.lower()
    about = await say(fake, chat, "/about")
    assert "not a medical device" in about.text and "models/cards/" in about.text
    assert "%" in about.text and "{" not in about.text


async def test_in_groups_the_bot_answers_commands_and_mentions_only(harness):
    fake, _ = harness
    group = -100123
    start = len(fake.sent)
    fake.send_text(group, "qué es un glioma", user_id=1012, chat_type="group")
    fake.send_text(group, "@fake_test_bot qué es un meningioma", user_id=1012, chat_type="group")
    reply = (await fake.replies(group, 1, start=start))[0]
    assert "meningioma" in reply.text.lower()
    await asyncio.sleep(1.0)
    assert len([c for c in fake.sent[start:] if c.method == "sendMessage" and c.chat_id == group]) == 1


async def test_webhook_mode_receives_updates_with_the_secret_token(tmp_path):
    """`saveyourlife bot` with WEBHOOK_URL set: PTB's webhook server, registered with a secret token."""
    port = free_port()
    secret = "s3cret-Token_for-webhooks"
    async with FakeTelegram() as fake:
        bot = await start_bot(fake, tmp_path, {"WEBHOOK_URL": f"http://127.0.0.1:{port}", "WEBHOOK_LISTEN": "127.0.0.1",
                                               "WEBHOOK_PORT": str(port), "WEBHOOK_SECRET": secret}, ready="setWebhook")
        try:
            registered = next(c for c in fake.sent if c.method == "setWebhook")
            assert registered.params["url"] == f"http://127.0.0.1:{port}/telegram"
            assert registered.params["secret_token"] == secret
            reply = await say(fake, 1013, "hola")
            assert "Hola" in reply.text
            assert not any(c.method == "getUpdates" for c in fake.sent)
            assert secret not in bot.log_text()
        finally:
            await stop_bot(bot)


async def test_a_film_sheet_photo_gets_per_slice_verdicts_and_an_annotated_thumbnail(harness, manifest_rows):
    from PIL import Image

    from training.film_sheet import compose_sheet

    fake, _ = harness
    slices = [Image.open(p).convert("RGB") for p in pick(manifest_rows, 12, source="kaggle4", label="meningioma")]
    sheet, _ = compose_sheet(slices, 3, 4, seed=5)
    start = len(fake.sent)
    fake.send_photo(1012, jpeg_bytes(sheet))
    reply = (await fake.replies(1012, 1, start=start, methods=("sendMessage",)))[0]
    assert "placa con 12 cortes" in reply.text and reply.text.count("• Corte") == 12
    assert "En conjunto" in reply.text and "no es un diagnóstico" in reply.text.lower()
    thumbnail = await fake.wait_for(lambda c: c.method == "sendPhoto" and c.chat_id == 1012, start=start)
    assert "Tu placa" in thumbnail.params.get("caption", "")
