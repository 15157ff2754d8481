"""A catalogue of malformed inputs, each sent to the real bot process with its expected reply."""

from __future__ import annotations

import asyncio
import io
import zipfile

import numpy as np
import pytest
import pytest_asyncio
from PIL import Image

from .bot_harness import say, send_and_reply, start_bot, stop_bot
from .conftest import jpeg_bytes, landscape_photo, png_bytes
from .fake_telegram import FakeTelegram
from .test_dicom import make_dataset, to_bytes
from .test_imaging import bomb_png

pytestmark = pytest.mark.asyncio(loop_scope="module")
_chat = iter(range(5000, 6000))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def bot(tmp_path_factory):
    async with FakeTelegram() as fake:
        process = await start_bot(fake, tmp_path_factory.mktemp("bad"), {"IMAGES_PER_MINUTE": "1000"})
        try:
            yield fake, process
        finally:
            await stop_bot(process)


def brain_like(size=(200, 200), mode="L") -> Image.Image:
    """A generated grey ellipse on black: enough for the decoder, we only check the bot answers."""
    h, w = size[1], size[0]
    yy, xx = np.mgrid[:h, :w]
    inside = ((yy - h / 2) / (h * 0.4)) ** 2 + ((xx - w / 2) / (w * 0.35)) ** 2 < 1
    arr = np.where(inside, 120 + 40 * np.sin(xx / 7.0), 0).astype(np.uint8)
    return Image.fromarray(arr, "L").convert(mode)


def saved(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def animated(fmt: str) -> bytes:
    frames = [Image.new("RGB", (64, 64), (i * 80, 20, 20)) for i in range(3)]
    return saved(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)


def zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("scan.jpg", jpeg_bytes(brain_like()))
    return buf.getvalue()


RESULT = "Probabilidades"
DOCUMENTS = [
    # (id, bytes, file name, mime type, expected substring of the reply)
    ("truncated_jpeg", jpeg_bytes(landscape_photo())[:700], "scan.jpg", "image/jpeg", "dañada"),
    ("decompression_bomb_png", bomb_png(), "bomb.png", "image/png", "demasiados píxeles"),
    ("zero_bytes", b"", "empty.png", "image/png", "vacío"),
    ("one_by_one", png_bytes(Image.new("L", (1, 1))), "dot.png", "image/png", "demasiado pequeña"),
    ("thirty_thousand_by_ten", png_bytes(Image.new("L", (30000, 10))), "strip.png", "image/png", "demasiado pequeña"),
    ("very_long_and_thin", png_bytes(Image.new("L", (2000, 100))), "long.png", "image/png", "alargada"),
    ("cmyk_jpeg", saved(brain_like(mode="CMYK"), "JPEG"), "cmyk.jpg", "image/jpeg", RESULT),
    ("sixteen_bit_png", png_bytes(Image.fromarray(np.asarray(brain_like(), dtype=np.uint16) * 256)), "deep.png", "image/png", RESULT),
    ("twelve_bit_png", png_bytes(Image.fromarray(np.asarray(brain_like(), dtype=np.uint16) * 16)), "twelve.png", "image/png", RESULT),
    ("palette_png", png_bytes(brain_like(mode="RGB").convert("P")), "palette.png", "image/png", RESULT),
    ("animated_gif", animated("GIF"), "moving.gif", "image/gif", "animadas"),
    ("animated_webp", animated("WEBP"), "moving.webp", "image/webp", "animadas"),
    ("svg", b'<svg xmlns="http://www.w3.org/2000/svg"><circle r="4"/></svg>', "pic.svg", "image/svg+xml", "no es una imagen"),
    ("pdf", b"%PDF-1.4\n1 0 obj <<>> endobj\n%%EOF", "report.pdf", "application/pdf", "application/pdf"),
    ("zip", zip_bytes(), "scans.zip", "application/zip", "application/zip"),
    ("pdf_renamed_as_jpeg", b"%PDF-1.4\n%%EOF", "scan.jpg", "image/jpeg", "PDF"),
    ("polyglot_jpeg_with_zip_tail", jpeg_bytes(brain_like()) + zip_bytes(), "poly.jpg", "image/jpeg", RESULT),
    ("png_with_jpg_extension", png_bytes(brain_like()), "scan.jpg", "image/jpeg", RESULT),
    ("jpeg_named_dcm", jpeg_bytes(brain_like()), "scan.dcm", "application/dicom", RESULT),
    ("plain_text_as_image", b"just some words, not pixels" * 10, "notes.png", "image/png", "dañada"),
    ("dicom_without_pixels", to_bytes(make_dataset(None)), "empty.dcm", "application/dicom", "no contiene imagen"),
    ("dicom_truncated", to_bytes(make_dataset(np.asarray(brain_like(), dtype=np.uint16)))[:600], "cut.dcm",
     "application/dicom", "no contiene imagen"),
]


def _jpeg_ls_dicom() -> bytes:
    from pydicom.encaps import encapsulate

    ds = make_dataset(np.asarray(brain_like(), dtype=np.uint16), transfer_syntax="1.2.840.10008.1.2.4.80")
    ds.PixelData = encapsulate([b"\xff\xd8\xff\xf7" + b"\x00" * 64])
    ds["PixelData"].VR = "OB"
    return to_bytes(ds)


DOCUMENTS.append(("dicom_jpeg_ls", _jpeg_ls_dicom(), "ls.dcm", "application/dicom", "descomprimir"))


@pytest.mark.parametrize("case", DOCUMENTS, ids=[c[0] for c in DOCUMENTS])
async def test_malformed_documents_get_a_clear_reply(bot, case):
    fake, process = bot
    name, data, file_name, mime, expected = case
    chat = next(_chat)
    reply = await send_and_reply(fake, chat, fake.send_document, data, file_name, mime)
    assert expected in reply.text, reply.text
    await asyncio.sleep(0.2)
    rows = process.rows("SELECT direction FROM messages m JOIN users u ON u.id = m.user_id WHERE u.telegram_id = ?", chat)
    assert ("in",) in rows and ("out",) in rows  # the conversation log keeps a row for it


async def test_a_truncated_photo_gets_a_clear_reply(bot):
    fake, _ = bot
    reply = await send_and_reply(fake, next(_chat), fake.send_photo, jpeg_bytes(landscape_photo())[:900])
    assert "dañada" in reply.text


async def test_a_file_over_20_mb_is_refused_before_downloading(bot):
    fake, _ = bot
    chat = next(_chat)
    start = len(fake.sent)
    reply = await send_and_reply(fake, chat, fake.send_document, b"\xff\xd8" + b"\0" * (21 * 1024 * 1024), "huge.jpg", "image/jpeg")
    assert "demasiado grande" in reply.text
    assert not any(c.method == "getFile" for c in fake.sent[start:])


TEXTS = [
    ("four_thousand_plus_chars", "¿qué es un glioma? " + "bla " * 1200, "glioma"),
    ("rtl_arabic", "ما هو الورم الدبقي؟", "tumores cerebrales"),
    ("control_characters", "\u0007\u001b[31mhola\u202e que es un meningioma", "meningioma"),
    ("html_injection", "<b>hola</b><script>alert('x')</script> que es un glioma", "glioma"),
    ("markdown_injection", "*negrita* _cursiva_ [enlace](http://evil.example) `code` ¿qué es un glioma?", "glioma"),
    ("sql_looking", "'; DROP TABLE users; -- que es un meningioma", "meningioma"),
    ("null_bytes", "hola\x00\x00 que es un tumor hipofisario", "hipófisis"),
    ("emoji_only", "🧠🤔💭", "No he encontrado texto"),
    # German: neither language's words decide, the user has no language_code, so the character n-grams pick one;
    # either way the reply says what the bot knows about.
    ("another_language", "Was ist ein Hirntumor und wie wird er behandelt?", ("tumores cerebrales", "brain tumours")),
    ("unknown_command", "/foobar", "No conozco ese comando"),
    ("about_with_arguments", "/about please now", "no necesita"),
    ("lang_with_bad_argument", "/lang klingon", "/lang es"),
]


@pytest.mark.parametrize("case", TEXTS, ids=[c[0] for c in TEXTS])
async def test_odd_texts_get_a_polite_reply(bot, case):
    fake, _ = bot
    _, text, expected = case
    reply = await say(fake, next(_chat), text)
    options = expected if isinstance(expected, tuple) else (expected,)
    assert any(option.lower() in reply.text.lower() for option in options), reply.text


async def test_sql_looking_text_leaves_the_tables_intact(bot):
    fake, process = bot
    await say(fake, next(_chat), "'); DELETE FROM messages; DROP TABLE users; --")
    assert process.rows("SELECT COUNT(*) FROM users")[0][0] > 0


async def test_a_video_and_a_contact_get_a_polite_reply(bot):
    fake, _ = bot
    chat = next(_chat)
    video = {"message_id": 1, "date": 0, "chat": {"id": chat, "type": "private"},
             "from": {"id": chat, "is_bot": False, "first_name": "U", "language_code": "es"},
             "video": {"file_id": "v1", "file_unique_id": "v1u", "width": 10, "height": 10, "duration": 3}}
    start = len(fake.sent)
    fake.send_raw({"message": video})
    reply = (await fake.replies(chat, 1, start=start))[0]
    assert "vídeos" in reply.text
    contact = dict(video, message_id=2, contact={"phone_number": "+34600000000", "first_name": "Ana"})
    contact.pop("video")
    start = len(fake.sent)
    fake.send_raw({"message": contact})
    reply = (await fake.replies(chat, 1, start=start))[0]
    assert "contactos" in reply.text


async def test_a_flood_of_100_messages_from_one_user_is_answered_and_logged(bot):
    fake, process = bot
    chat = next(_chat)
    start = len(fake.sent)
    for i in range(100):
        fake.send_text(chat, f"hola {i}")
    replies = await fake.replies(chat, 100, start=start, timeout=120)
    assert len(replies) == 100
    await asyncio.sleep(0.5)
    count = process.rows("SELECT COUNT(*) FROM messages m JOIN users u ON u.id = m.user_id WHERE u.telegram_id = ?", chat)
    assert count == [(200,)]


async def test_the_per_user_image_rate_limit_answers_politely(tmp_path):
    async with FakeTelegram() as fake:
        process = await start_bot(fake, tmp_path, {"IMAGES_PER_MINUTE": "3"})
        try:
            texts = []
            for _ in range(4):
                texts.append((await send_and_reply(fake, 77, fake.send_photo, jpeg_bytes(landscape_photo()))).text)
            assert all("resonancia" in t for t in texts[:3])
            assert "Espera" in texts[3]
        finally:
            await stop_bot(process)
