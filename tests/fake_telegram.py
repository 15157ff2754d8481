"""In-process fake of the Telegram Bot API for end-to-end tests.

:class:`FakeTelegram` is a small :mod:`aiohttp.web` server bound to ``127.0.0.1``
(random free port by default) that speaks the Bot API wire protocol closely
enough for the real ``python-telegram-bot`` (PTB 22) client to run against it:

* ``/bot<token>/<method>`` -- GET or POST; parameters as a JSON body,
  ``application/x-www-form-urlencoded`` (what PTB sends normally) or
  ``multipart/form-data`` (what PTB sends when uploading files).
* ``/file/bot<token>/<file_path>`` -- file downloads (what ``File.download_*``
  fetches).

Replies use Telegram's envelopes: ``{"ok": true, "result": ...}`` and
``{"ok": false, "error_code": 400, "description": "Bad Request: ..."}``
(429 adds ``"parameters": {"retry_after": N}``). Unknown methods answer 404
``Not Found`` exactly like Telegram (PTB turns that into ``InvalidToken``).

Typical use (the server and the bot share the pytest event loop)::

    async with FakeTelegram() as fake:
        app = (ApplicationBuilder().token("123:ABC")
               .base_url(fake.api_url).base_file_url(fake.file_url).build())
        ...
        fake.send_text(chat_id=42, text="/start")
        [reply] = await fake.replies(42, 1)
        assert "Hola" in reply.params["text"]

Implemented methods: getMe, getUpdates, sendMessage, sendPhoto, sendDocument,
sendMediaGroup, sendChatAction, editMessageText, editMessageReplyMarkup,
answerCallbackQuery, getFile, setWebhook, deleteWebhook, getWebhookInfo,
setMyCommands, deleteMyCommands, getMyCommands, close, logOut.

Realistic checks performed (each answers 400 with Telegram's wording, so the bot
under test sees the same ``telegram.error.BadRequest`` it would in production):
empty / too long text or caption, ``parse_mode`` HTML / MarkdownV2 / Markdown
markup that Telegram cannot parse (``can't parse entities: ...``),
``callback_data`` over 64 bytes, editing a message that does not exist or with
identical content (``message is not modified``), replying to an unknown message,
answering an unknown or already answered callback query, unknown ``file_id``,
``getFile`` on files over 20 MB, undecodable photos (when Pillow is installed),
invalid chat actions / bot commands, ``getUpdates`` while a webhook is set or
while another ``getUpdates`` is pending (409 Conflict).

Deliberate simplifications: any well-formed token is accepted (pass
``valid_tokens`` to get 401s), any chat id is accepted (use :meth:`block_chat`
for 403s), the largest PhotoSize of a photo holds the original bytes (Telegram
would recompress them), message text is echoed without whitespace trimming,
webhook URLs may be plain ``http://``.

Every API call lands in :attr:`FakeTelegram.sent` as a :class:`SentCall` the
moment it arrives (``ok is None`` until answered), getUpdates included, so
``await fake.wait_for("getUpdates")`` tells you the bot has started polling.

Everything is single-event-loop: call the test-side helpers from the loop the
server runs in (i.e. from your async test). Nothing here spins: long polls and
``wait_for`` block on :class:`asyncio.Event` objects with timeouts.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import html
import io
import itertools
import json
import logging
import mimetypes
import re
import secrets
import time
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from aiohttp import ClientSession, ClientTimeout, web

try:  # Pillow is a dependency of the bot; keep the fake usable without it anyway.
    from PIL import Image
except ImportError:  # pragma: no cover
    Image = None  # type: ignore[assignment]

__all__ = ["ApiError", "FakeTelegram", "Fault", "SentCall", "StoredFile", "REPLY_METHODS"]

log = logging.getLogger(__name__)

#: Methods counted by :meth:`FakeTelegram.replies`.
REPLY_METHODS = frozenset({"sendMessage", "sendPhoto", "sendDocument", "editMessageText"})

#: Telegram's limit for files that bots may download via getFile.
MAX_DOWNLOAD_SIZE = 20 * 1024 * 1024

#: Parameters that are always strings on the wire and must never be JSON-decoded
#: from form fields (``text="123"`` must stay ``"123"``, not become ``123``).
STRING_FIELDS = frozenset(
    {
        "text", "caption", "parse_mode", "callback_query_id", "inline_message_id", "url",
        "file_id", "secret_token", "ip_address", "language_code", "action", "title",
        "description", "short_description", "name", "emoji", "query", "message_effect_id",
        "business_connection_id", "photo", "document", "video", "audio", "voice",
        "animation", "sticker", "thumbnail", "video_note", "certificate", "explanation",
        "question", "address", "foursquare_id", "phone_number", "first_name", "last_name",
    }
)

#: Parameters that hold JSON objects/arrays; normalised even when a JSON body
#: carries them as JSON-encoded strings.
JSON_FIELDS = frozenset(
    {
        "reply_markup", "reply_parameters", "entities", "caption_entities", "media",
        "commands", "scope", "allowed_updates", "link_preview_options",
    }
)

CHAT_ACTIONS = frozenset(
    {
        "typing", "upload_photo", "record_video", "upload_video", "record_voice",
        "upload_voice", "upload_document", "choose_sticker", "find_location",
        "record_video_note", "upload_video_note",
    }
)

DEFAULT_DESCRIPTIONS = {
    400: "Bad Request: injected failure",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    409: "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}

_COMMAND_RE = re.compile(r"^/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?")
_BOT_COMMAND_NAME_RE = re.compile(r"^[a-z0-9_]{1,32}$")
_TOKEN_RE = re.compile(r"^\d+:[A-Za-z0-9_-]+$")


# --------------------------------------------------------------------------- #
# Records
# --------------------------------------------------------------------------- #


class ApiError(Exception):
    """A Bot API error reply: HTTP ``status`` + Telegram's ``description``."""

    def __init__(self, status: int, description: str, parameters: dict | None = None):
        super().__init__(f"{status} {description}")
        self.status = status
        self.description = description
        self.parameters = parameters

    def payload(self) -> dict:
        body: dict[str, Any] = {"ok": False, "error_code": self.status, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def bad_request(message: str) -> ApiError:
    """Shorthand for a 400 ``Bad Request: <message>`` error."""
    return ApiError(400, f"Bad Request: {message}")


@dataclasses.dataclass
class SentCall:
    """One request the bot made to the fake.

    Attribute access and dict-style access both work (``call.method`` ==
    ``call["method"]``).

    Attributes:
        method: canonical Bot API method name (``"sendMessage"``), or the raw name
            for unknown methods.
        params: decoded parameters. Form/multipart strings are JSON-decoded where
            Telegram expects numbers/booleans/objects (``chat_id`` -> int,
            ``reply_markup`` -> dict), free-text fields stay strings.
        files: uploaded file parts, part name -> bytes (``"photo"`` for
            sendPhoto, ``"attached<hex>"`` for sendMediaGroup items).
        file_info: part name -> ``{"filename", "content_type"}`` for uploads.
        time: ``time.monotonic()`` when the request arrived (before any injected
            delay), handy for measuring retry back-off.
        token: bot token from the URL.
        http_method: ``"GET"`` / ``"POST"``.
        ok: ``True`` if the fake answered ``ok: true``; ``False`` for API errors,
            injected faults and dropped connections; ``None`` while the call is
            still being handled (pending long poll, injected delay).
        status: HTTP status sent (``None`` when the connection was dropped).
        result: the ``result`` returned (Message dict, list, ``True``...).
        error: the error JSON returned, if any.
        fault: the :class:`Fault` that was applied, if any.
    """

    method: str
    params: dict[str, Any]
    files: dict[str, bytes]
    time: float
    token: str = ""
    http_method: str = "POST"
    file_info: dict[str, dict[str, str | None]] = dataclasses.field(default_factory=dict)
    ok: bool | None = None
    status: int | None = None
    result: Any = None
    error: dict | None = None
    fault: Fault | None = None

    def __getitem__(self, key: str) -> Any:
        try:
            return getattr(self, key)
        except AttributeError:
            raise KeyError(key) from None

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default)

    @property
    def chat_id(self) -> Any:
        """``params["chat_id"]`` or ``None``."""
        return self.params.get("chat_id")

    @property
    def text(self) -> str | None:
        """``text`` or ``caption`` parameter (what a human would read)."""
        return self.params.get("text", self.params.get("caption"))

    @property
    def upload(self) -> bytes | None:
        """Bytes of the first uploaded file part, if any."""
        return next(iter(self.files.values()), None)

    def describe(self) -> str:
        """One-line human readable summary (used in timeout messages)."""
        bits = [self.method]
        if self.chat_id is not None:
            bits.append(f"chat_id={self.chat_id!r}")
        if self.text is not None:
            txt = str(self.text)
            bits.append(repr(txt if len(txt) <= 80 else txt[:77] + "..."))
        for key in ("message_id", "callback_query_id", "action", "file_id", "url", "offset", "timeout"):
            if key in self.params:
                bits.append(f"{key}={self.params[key]!r}")
        if self.files:
            bits.append("files=" + ",".join(f"{k}({len(v)}B)" for k, v in self.files.items()))
        if self.fault is not None:
            bits.append(f"FAULT[{self.fault.describe()}]")
        if self.ok is False and self.error:
            bits.append(f"-> {self.error.get('error_code')} {self.error.get('description')!r}")
        elif self.ok is False:
            bits.append("-> connection dropped")
        return " ".join(bits)


@dataclasses.dataclass
class Fault:
    """A pending injected fault, see :meth:`FakeTelegram.fail_next`."""

    method: str
    status: int | None
    remaining: int
    retry_after: int | None = None
    delay: float = 0.0
    drop_connection: bool = False
    description: str | None = None

    def describe(self) -> str:
        parts = []
        if self.delay:
            parts.append(f"delay={self.delay}s")
        if self.drop_connection:
            parts.append("drop")
        elif self.status:
            parts.append(str(self.status))
        if self.retry_after is not None:
            parts.append(f"retry_after={self.retry_after}")
        return " ".join(parts) or "noop"

    def error(self) -> ApiError:
        status = int(self.status or 500)
        params = None
        if status == 429:
            retry = 1 if self.retry_after is None else int(self.retry_after)
            desc = self.description or f"Too Many Requests: retry after {retry}"
            params = {"retry_after": retry}
        else:
            desc = self.description or DEFAULT_DESCRIPTIONS.get(status)
            if desc is None:
                try:
                    desc = HTTPStatus(status).phrase
                except ValueError:
                    desc = f"Error {status}"
            if self.retry_after is not None:
                params = {"retry_after": int(self.retry_after)}
        return ApiError(status, desc, params)


@dataclasses.dataclass
class StoredFile:
    """A file the fake can serve: uploaded by the bot or registered by a test."""

    file_id: str
    file_unique_id: str
    data: bytes
    file_path: str
    file_name: str | None = None
    mime_type: str | None = None
    width: int | None = None
    height: int | None = None

    @property
    def file_size(self) -> int:
        return len(self.data)

    def as_file(self) -> dict:
        """The Bot API ``File`` object (what getFile returns)."""
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": self.file_size,
            "file_path": self.file_path,
        }


# --------------------------------------------------------------------------- #
# Text formatting (parse_mode) -- enough of Telegram's parser to reject what it
# rejects and to echo plain text + entities.
# --------------------------------------------------------------------------- #


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units (Telegram's unit for entity offsets)."""
    return len(text.encode("utf-16-le")) // 2


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))


class _Builder:
    """Accumulates plain text and entities while parsing markup."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.len16 = 0
        self.entities: list[dict] = []

    def add(self, chunk: str) -> None:
        self.parts.append(chunk)
        self.len16 += utf16_len(chunk)

    def entity(self, etype: str, start16: int, **extra: Any) -> None:
        length = self.len16 - start16
        if length > 0:
            self.entities.append({"type": etype, "offset": start16, "length": length, **extra})

    def result(self) -> tuple[str, list[dict]]:
        ents = sorted(self.entities, key=lambda e: (e["offset"], -e["length"]))
        return "".join(self.parts), ents


_HTML_TAGS = {
    "b": "bold", "strong": "bold", "i": "italic", "em": "italic", "u": "underline",
    "ins": "underline", "s": "strikethrough", "strike": "strikethrough",
    "del": "strikethrough", "span": "spoiler", "tg-spoiler": "spoiler", "a": "text_link",
    "code": "code", "pre": "pre", "blockquote": "blockquote", "tg-emoji": "custom_emoji",
}
_HTML_ATTR_RE = re.compile(r"""([a-zA-Z_:-]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?""")
_HTML_ENTITY_RE = re.compile(r"&(#[xX][0-9a-fA-F]{1,8}|#[0-9]{1,10}|[a-zA-Z]{2,8});")


def parse_html(text: str) -> tuple[str, list[dict]]:
    """Parse Telegram-flavoured HTML; raise :class:`ApiError` where Telegram would."""
    prefix = "can't parse entities: "
    out = _Builder()
    stack: list[tuple[str, str, int, dict]] = []  # (tag, entity type, start16, extra)
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "<":
            if text.startswith("</", i):
                j = text.find(">", i)
                if j == -1:
                    raise bad_request(prefix + f"Unclosed end tag at byte offset {_byte_offset(text, i)}")
                name = text[i + 2 : j].strip().lower()
                if not stack:
                    raise bad_request(prefix + f'Unexpected end tag at byte offset {_byte_offset(text, i)}')
                tag, etype, start16, extra = stack.pop()
                if name != tag:
                    raise bad_request(
                        prefix + f'Unmatched end tag at byte offset {_byte_offset(text, i)}, '
                        f'expected "</{tag}>", found "</{name}>"'
                    )
                if etype == "pre" and extra.get("_code_lang"):
                    extra = {"language": extra["_code_lang"]}
                if etype == "code" and stack and stack[-1][1] == "pre":
                    pass  # <pre><code class="language-x"> is a single pre entity
                elif etype:
                    out.entity(etype, start16, **{k: v for k, v in extra.items() if not k.startswith("_")})
                i = j + 1
                continue
            m = re.match(r"<([a-zA-Z0-9-]*)", text[i:])
            name = (m.group(1) if m else "").lower()
            if name not in _HTML_TAGS:
                raise bad_request(prefix + f'Unsupported start tag "{name}" at byte offset {_byte_offset(text, i)}')
            j = i + 1 + len(name)
            quote = None
            while j < n and (text[j] != ">" or quote):
                if text[j] in "\"'":
                    quote = None if quote == text[j] else (quote or text[j])
                j += 1
            if j >= n:
                raise bad_request(prefix + f"Unclosed start tag at byte offset {_byte_offset(text, i)}")
            attrs = {
                a.group(1).lower(): html.unescape(a.group(2) or a.group(3) or a.group(4) or "")
                for a in _HTML_ATTR_RE.finditer(text[i + 1 + len(name) : j])
            }
            etype = _HTML_TAGS[name]
            extra: dict[str, Any] = {}
            if name == "span" and attrs.get("class") != "tg-spoiler":
                raise bad_request(prefix + f'Tag "span" must have class "tg-spoiler" at byte offset {_byte_offset(text, i)}')
            if name == "a":
                if attrs.get("href"):
                    extra["url"] = attrs["href"]
                else:
                    etype = ""
            if name == "tg-emoji":
                if not attrs.get("emoji-id"):
                    raise bad_request(prefix + f'Tag "tg-emoji" must have attribute "emoji-id" at byte offset {_byte_offset(text, i)}')
                extra["custom_emoji_id"] = attrs["emoji-id"]
            if name == "blockquote" and "expandable" in attrs:
                etype = "expandable_blockquote"
            if name == "code" and stack and stack[-1][1] == "pre":
                lang = attrs.get("class", "")
                if lang.startswith("language-"):
                    stack[-1][3]["_code_lang"] = lang[len("language-") :]
            stack.append((name, etype, out.len16, extra))
            i = j + 1
        elif c == "&":
            m = _HTML_ENTITY_RE.match(text, i)
            decoded = None
            if m:
                ref = m.group(1)
                if ref[0] == "#":
                    try:
                        code = int(ref[2:], 16) if ref[1] in "xX" else int(ref[1:])
                        decoded = chr(code) if 0 < code < 0x110000 else None
                    except ValueError:
                        decoded = None
                else:
                    decoded = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}.get(ref.lower())
            if decoded is not None:
                out.add(decoded)
                i = m.end()  # type: ignore[union-attr]
            else:  # Telegram keeps unknown / bare ampersands verbatim
                out.add("&")
                i += 1
        else:
            j = i
            while j < n and text[j] not in "<&":
                j += 1
            out.add(text[i:j])
            i = j
    if stack:
        raise bad_request(prefix + f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    return out.result()


_MDV2_RESERVED = set("_*[]()~`>#+-=|{}.!")
_MDV2_NAMES = {
    "bold": "Bold", "italic": "Italic", "underline": "Underline", "strikethrough": "Strikethrough",
    "spoiler": "Spoiler", "code": "Code", "pre": "Pre", "text_link": "TextUrl",
}


def parse_markdown_v2(text: str) -> tuple[str, list[dict]]:
    """Parse MarkdownV2; unescaped reserved characters / unclosed entities raise like Telegram."""
    prefix = "can't parse entities: "
    out = _Builder()
    stack: list[tuple[str, str, int, int]] = []  # (marker, type, start16, index)
    markers = (("||", "spoiler"), ("__", "underline"), ("*", "bold"), ("_", "italic"), ("~", "strikethrough"))
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        top = stack[-1] if stack else None
        if c == "\\":
            if i + 1 < n and 0 < ord(text[i + 1]) <= 126:
                out.add(text[i + 1])
                i += 2
            else:  # a backslash before non-ASCII / at the end is kept literally
                out.add(c)
                i += 1
            continue
        if top and top[1] in ("code", "pre"):
            if top[1] == "pre" and text.startswith("```", i):
                stack.pop()
                out.entity("pre", top[2], **({"language": top[0][3:]} if len(top[0]) > 3 else {}))
                i += 3
            elif top[1] == "code" and c == "`":
                stack.pop()
                out.entity("code", top[2])
                i += 1
            else:
                out.add(c)
                i += 1
            continue
        if text.startswith("```", i):
            nl = text.find("\n", i + 3)
            lang = text[i + 3 : nl].strip() if nl != -1 else ""
            if nl != -1 and lang and " " not in lang:
                stack.append(("```" + lang, "pre", out.len16, i))
                i = nl + 1
            else:
                stack.append(("```", "pre", out.len16, i))
                i += 3
                if i < n and text[i] == "\n":
                    i += 1
            continue
        if c == "`":
            stack.append(("`", "code", out.len16, i))
            i += 1
            continue
        matched = False
        for marker, etype in markers:
            if text.startswith(marker, i):
                matched = True
                if top and top[0] == marker:
                    stack.pop()
                    out.entity(etype, top[2])
                elif any(s[0] == marker for s in stack):
                    raise bad_request(
                        prefix + f"Can't find end of {_MDV2_NAMES.get(top[1], top[1])} entity at byte offset "
                        f"{_byte_offset(text, top[3])}"  # type: ignore[index]
                    )
                else:
                    stack.append((marker, etype, out.len16, i))
                i += len(marker)
                break
        if matched:
            continue
        if c == "!" and text.startswith("![", i):  # custom emoji: ![👍](tg://emoji?id=...)
            i += 1
            continue
        if c == "[":
            stack.append(("[", "text_link", out.len16, i))
            i += 1
            continue
        if c == "]" and top and top[0] == "[":
            if i + 1 < n and text[i + 1] == "(":
                j, url = i + 2, []
                while j < n and text[j] != ")":
                    if text[j] == "\\" and j + 1 < n:
                        j += 1
                    url.append(text[j])
                    j += 1
                if j >= n:
                    raise bad_request(prefix + f"Can't find end of a URL at byte offset {_byte_offset(text, i + 1)}")
                stack.pop()
                link = "".join(url)
                if link.startswith("tg://emoji?id="):
                    out.entity("custom_emoji", top[2], custom_emoji_id=link[len("tg://emoji?id="):])
                else:
                    out.entity("text_link", top[2], url=link)
                i = j + 1
                continue
            raise bad_request(prefix + "Character ']' is reserved and must be escaped with the preceding '\\'")
        if c == ">" and (i == 0 or text[i - 1] == "\n"):
            i += 1  # block quotation marker; quoted text is kept, entity omitted
            continue
        if c in _MDV2_RESERVED:
            raise bad_request(prefix + f"Character '{c}' is reserved and must be escaped with the preceding '\\'")
        out.add(c)
        i += 1
    if stack:
        marker, etype, _, idx = stack[-1]
        raise bad_request(
            prefix + f"Can't find end of {_MDV2_NAMES.get(etype, etype)} entity at byte offset {_byte_offset(text, idx)}"
        )
    return out.result()


def parse_markdown_legacy(text: str) -> tuple[str, list[dict]]:
    """Parse legacy ``Markdown``: only unclosed entities are errors."""
    out = _Builder()
    i, n = 0, len(text)
    simple = {"*": "bold", "_": "italic", "`": "code"}
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n and text[i + 1] in "_*`[":
            out.add(text[i + 1])
            i += 2
        elif text.startswith("```", i):
            end = text.find("```", i + 3)
            if end == -1:
                raise bad_request(f"can't parse entities: Can't find end of the entity starting at byte offset {_byte_offset(text, i)}")
            start16 = out.len16
            out.add(text[i + 3 : end])
            out.entity("pre", start16)
            i = end + 3
        elif c in simple:
            end = text.find(c, i + 1)
            if end == -1:
                raise bad_request(f"can't parse entities: Can't find end of the entity starting at byte offset {_byte_offset(text, i)}")
            start16 = out.len16
            out.add(text[i + 1 : end])
            out.entity(simple[c], start16)
            i = end + 1
        elif c == "[":
            m = re.compile(r"\[([^\]]*)\]\(([^)]*)\)").match(text, i)
            if not m:
                raise bad_request(f"can't parse entities: Can't find end of the entity starting at byte offset {_byte_offset(text, i)}")
            start16 = out.len16
            out.add(m.group(1))
            out.entity("text_link", start16, url=m.group(2))
            i = m.end()
        else:
            out.add(c)
            i += 1
    return out.result()


def format_text(text: str, parse_mode: str | None, entities: list | None) -> tuple[str, list[dict]]:
    """Apply ``parse_mode`` (or explicit ``entities``) -> (plain text, entities)."""
    if not parse_mode:
        return text, list(entities or [])
    mode = str(parse_mode).lower()
    if mode == "html":
        return parse_html(text)
    if mode == "markdownv2":
        return parse_markdown_v2(text)
    if mode == "markdown":
        return parse_markdown_legacy(text)
    raise bad_request("unsupported parse_mode")


# --------------------------------------------------------------------------- #
# The server
# --------------------------------------------------------------------------- #


class FakeTelegram:
    """A fake Telegram Bot API server. See the module docstring for an overview.

    Args:
        host: interface to bind (default ``127.0.0.1``).
        port: TCP port, ``0`` = pick a free one.
        bot_username / bot_first_name: identity returned by getMe and used as
            ``from`` of every message the bot sends.
        valid_tokens: if given, well-formed tokens not in this set get
            ``401 Unauthorized`` (malformed ones always get ``404 Not Found``).
        validate_markup: parse ``parse_mode`` text like Telegram and reject bad
            markup with ``can't parse entities``; also echo plain text +
            entities. Set ``False`` to echo text verbatim.
        strict_images: reject bot-uploaded photos Pillow cannot decode with
            ``IMAGE_PROCESS_FAILED`` (only when Pillow is importable).
        webhook_delivery: when the bot calls setWebhook, POST pending updates to
            that URL (with ``X-Telegram-Bot-Api-Secret-Token``) like Telegram does.
        max_poll_timeout: upper bound for getUpdates ``timeout`` (seconds).

    Test-side state you may inspect: :attr:`sent`, :attr:`get_updates_calls`,
    :attr:`downloads`, :attr:`messages`, :attr:`files`, :attr:`callback_queries`,
    :attr:`commands`, :attr:`webhook`, :attr:`pending_updates`.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        bot_username: str = "fake_test_bot",
        bot_first_name: str = "Fake Bot",
        valid_tokens: Iterable[str] | None = None,
        validate_markup: bool = True,
        strict_images: bool = True,
        webhook_delivery: bool = True,
        max_poll_timeout: float = 60.0,
    ) -> None:
        self.host = host
        self.port = port
        self.bot_username = bot_username
        self.bot_first_name = bot_first_name
        self.valid_tokens = set(valid_tokens) if valid_tokens is not None else None
        self.validate_markup = validate_markup
        self.strict_images = strict_images
        self.webhook_delivery = webhook_delivery
        self.max_poll_timeout = max_poll_timeout

        #: Every API call the bot made, in arrival order, appended as soon as its
        #: parameters are read (``ok`` is ``None`` while in flight, e.g. a pending
        #: long poll), including failed / faulted ones (``ok`` False).
        self.sent: list[SentCall] = []
        #: The getUpdates calls again, bounded (``result`` holds the returned updates).
        self.get_updates_calls: collections.deque[SentCall] = collections.deque(maxlen=1000)
        #: Bounded log of file downloads: dicts {file_path, status, truncated, time}.
        self.downloads: collections.deque[dict] = collections.deque(maxlen=1000)
        #: (chat_id, message_id) -> Message dict, both user and bot messages.
        self.messages: dict[tuple[Any, int], dict] = {}
        #: file_id -> :class:`StoredFile`.
        self.files: dict[str, StoredFile] = {}
        #: callback query id -> {"query": dict, "answer": params or None}.
        self.callback_queries: dict[str, dict] = {}
        #: (scope JSON, language_code) -> list of BotCommand dicts.
        self.commands: dict[tuple[str, str], list[dict]] = {}
        #: Current webhook config ({} when none): url, secret_token, max_connections,
        #: allowed_updates, ip_address, has_custom_certificate, last_error_*.
        self.webhook: dict[str, Any] = {}
        #: Chats whose sends answer 403 (see :meth:`block_chat`).
        self.blocked_chats: set[Any] = set()

        self._updates: list[dict] = []
        self._update_ids = itertools.count(100001)
        self._chat_msg_ids: dict[Any, itertools.count] = {}
        self._counter = itertools.count(1)
        self._chats: dict[Any, dict] = {}
        self._files_by_path: dict[str, StoredFile] = {}
        self._faults: list[Fault] = []
        self._truncate_downloads = 0
        self._update_waiters: set[asyncio.Event] = set()
        self._sent_waiters: set[asyncio.Event] = set()
        self._poll_generation = 0
        self._closing = False
        self._runner: web.AppRunner | None = None
        self._webhook_task: asyncio.Task | None = None
        self._webhook_wakeup: asyncio.Event | None = None
        self._http: ClientSession | None = None

        self._handlers: dict[str, Callable[[SentCall], Any]] = {
            "getMe": self._m_get_me,
            "getUpdates": self._m_get_updates,
            "sendMessage": self._m_send_message,
            "sendPhoto": self._m_send_photo,
            "sendDocument": self._m_send_document,
            "sendMediaGroup": self._m_send_media_group,
            "sendChatAction": self._m_send_chat_action,
            "editMessageText": self._m_edit_message_text,
            "editMessageReplyMarkup": self._m_edit_message_reply_markup,
            "answerCallbackQuery": self._m_answer_callback_query,
            "getFile": self._m_get_file,
            "setWebhook": self._m_set_webhook,
            "deleteWebhook": self._m_delete_webhook,
            "getWebhookInfo": self._m_get_webhook_info,
            "setMyCommands": self._m_set_my_commands,
            "deleteMyCommands": self._m_delete_my_commands,
            "getMyCommands": self._m_get_my_commands,
            "close": self._m_true,
            "logOut": self._m_true,
        }
        self._handlers_lower = {name.lower(): name for name in self._handlers}

    # ------------------------------------------------------------------ #
    # Lifecycle
    # ------------------------------------------------------------------ #

    async def start(self) -> FakeTelegram:
        """Start listening. Returns ``self``. Idempotent."""
        if self._runner is not None:
            return self
        self._closing = False
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{file_path:.+}", self._handle_download)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self._webhook_wakeup = asyncio.Event()
        self._webhook_task = asyncio.create_task(self._webhook_loop(), name="fake-telegram-webhook")
        return self

    async def stop(self) -> None:
        """Stop the server; pending long polls return ``[]``. Idempotent."""
        if self._runner is None:
            return
        self._closing = True
        self._wake(self._update_waiters)
        self._wake(self._sent_waiters)
        if self._webhook_task is not None:
            self._webhook_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._webhook_task
            self._webhook_task = None
        if self._http is not None:
            await self._http.close()
            self._http = None
        runner, self._runner = self._runner, None
        await runner.cleanup()

    async def __aenter__(self) -> FakeTelegram:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def base(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        """Value for PTB ``base_url`` / ``TELEGRAM_API_URL`` (PTB appends the token)."""
        return f"{self.base}/bot"

    @property
    def file_url(self) -> str:
        """Value for PTB ``base_file_url`` / ``TELEGRAM_FILE_URL``."""
        return f"{self.base}/file/bot"

    # ------------------------------------------------------------------ #
    # Test-side helpers: files and chats
    # ------------------------------------------------------------------ #

    def add_file(self, data: bytes, file_name: str | None = None, mime_type: str | None = None) -> dict:
        """Register downloadable bytes; returns ``{file_id, file_unique_id, file_size, file_path}``."""
        folder = "documents"
        if mime_type and mime_type.startswith("image/"):
            folder = "photos"
        stored = self._store_file(bytes(data), folder, file_name=file_name, mime_type=mime_type)
        return stored.as_file()

    def get_file_bytes(self, file_id: str) -> bytes:
        """Bytes stored under ``file_id`` (KeyError if unknown)."""
        return self.files[file_id].data

    def block_chat(self, chat_id: Any, blocked: bool = True) -> None:
        """Make sends to ``chat_id`` answer ``403 Forbidden: bot was blocked by the user``."""
        (self.blocked_chats.add if blocked else self.blocked_chats.discard)(chat_id)

    def bot_messages(self, chat_id: Any) -> list[dict]:
        """Messages (current state, after edits) the bot sent to ``chat_id``, oldest first."""
        return [
            m for (cid, _), m in sorted(self.messages.items(), key=lambda kv: kv[0][1])
            if cid == chat_id and m.get("from", {}).get("is_bot")
        ]

    # ------------------------------------------------------------------ #
    # Test-side helpers: incoming updates
    # ------------------------------------------------------------------ #

    @property
    def pending_updates(self) -> list[dict]:
        """Updates not yet confirmed by the bot (copy)."""
        return list(self._updates)

    def send_raw(self, update: dict) -> int:
        """Enqueue an arbitrary Update dict (``update_id`` assigned if missing); returns its id."""
        update = dict(update)
        if "update_id" not in update:
            update["update_id"] = next(self._update_ids)
        else:
            uid = int(update["update_id"])
            current = next(self._update_ids)
            self._update_ids = itertools.count(max(current, uid + 1))
        self._updates.append(update)
        self._updates.sort(key=lambda u: u["update_id"])
        self._wake(self._update_waiters)
        if self._webhook_wakeup is not None:
            self._webhook_wakeup.set()
        return update["update_id"]

    def send_text(
        self,
        chat_id: int,
        text: str,
        user_id: int | None = None,
        language_code: str | None = "es",
        chat_type: str = "private",
        *,
        entities: list[dict] | None = None,
        reply_to_message_id: int | None = None,
    ) -> int:
        """A user sends ``text``. A leading ``/command`` gets a ``bot_command`` entity."""
        content: dict[str, Any] = {"text": text}
        ents = list(entities or [])
        m = _COMMAND_RE.match(text)
        if m and not any(e.get("type") == "bot_command" for e in ents):
            ents.insert(0, {"type": "bot_command", "offset": 0, "length": utf16_len(m.group(0))})
        if ents:
            content["entities"] = ents
        msg = self._user_message(chat_id, user_id, language_code, chat_type, content, reply_to_message_id)
        return self.send_raw({"message": msg})

    def send_photo(
        self,
        chat_id: int,
        data: bytes,
        caption: str | None = None,
        user_id: int | None = None,
        language_code: str | None = "es",
        media_group_id: str | None = None,
        *,
        chat_type: str = "private",
    ) -> int:
        """A user sends a photo: 3 PhotoSize entries (small/medium/largest).

        The largest holds ``data`` verbatim; the smaller ones are downscaled JPEG
        copies when Pillow can decode ``data``, otherwise the same bytes with
        nominal dimensions. ``file_size`` always matches the served bytes.
        """
        sizes = self._photo_sizes(bytes(data), strict=False)
        content: dict[str, Any] = {"photo": sizes}
        if caption is not None:
            content["caption"] = caption
        if media_group_id is not None:
            content["media_group_id"] = str(media_group_id)
        msg = self._user_message(chat_id, user_id, language_code, chat_type, content)
        return self.send_raw({"message": msg})

    def send_document(
        self,
        chat_id: int,
        data: bytes,
        file_name: str | None = "file.bin",
        mime_type: str | None = None,
        caption: str | None = None,
        user_id: int | None = None,
        language_code: str | None = "es",
        media_group_id: str | None = None,
        *,
        chat_type: str = "private",
    ) -> int:
        """A user sends a file as a document (no recompression, any bytes)."""
        if mime_type is None and file_name:
            mime_type = mimetypes.guess_type(file_name)[0] or "application/octet-stream"
        stored = self._store_file(bytes(data), "documents", file_name=file_name, mime_type=mime_type)
        content: dict[str, Any] = {"document": self._document_obj(stored)}
        if caption is not None:
            content["caption"] = caption
        if media_group_id is not None:
            content["media_group_id"] = str(media_group_id)
        msg = self._user_message(chat_id, user_id, language_code, chat_type, content)
        return self.send_raw({"message": msg})

    def send_callback(self, chat_id: int, message_id: int, data: str, user_id: int | None = None,
                      language_code: str | None = "es") -> int:
        """A user presses an inline button with ``data`` on message ``message_id``.

        The message must be one the fake knows (normally one the bot sent);
        raises ``LookupError`` otherwise. The query id is stored in
        :attr:`callback_queries` (and is ``update["callback_query"]["id"]``).
        """
        msg = self.messages.get((chat_id, message_id))
        if msg is None:
            known = [m["message_id"] for m in self.bot_messages(chat_id)]
            raise LookupError(f"no message {message_id} in chat {chat_id}; bot messages there: {known}")
        user = self._user_obj(self._default_user(chat_id, user_id), language_code)
        query_id = str(next(self._counter) * 1_000_003 + 7_000_000_000_000_000)
        query = {
            "id": query_id,
            "from": user,
            "message": json.loads(json.dumps(msg)),
            "chat_instance": str(abs(hash(("chat_instance", chat_id))) % 10**18),
            "data": data,
        }
        self.callback_queries[query_id] = {"query": query, "answer": None}
        return self.send_raw({"callback_query": query})

    def send_sticker(self, chat_id: int, user_id: int | None = None, emoji: str = "\N{THUMBS UP SIGN}",
                     language_code: str | None = "es") -> int:
        """A user sends a (static, 512x512 webp) sticker."""
        stored = self._store_file(b"RIFF\x00\x00\x00\x00WEBPVP8 fake-sticker", "stickers", ext=".webp",
                                  mime_type="image/webp")
        sticker = {
            "file_id": stored.file_id, "file_unique_id": stored.file_unique_id, "type": "regular",
            "width": 512, "height": 512, "is_animated": False, "is_video": False,
            "emoji": emoji, "set_name": "FakeStickers", "file_size": stored.file_size,
        }
        msg = self._user_message(chat_id, user_id, language_code, "private", {"sticker": sticker})
        return self.send_raw({"message": msg})

    def send_voice(self, chat_id: int, user_id: int | None = None, duration: int = 2,
                   data: bytes = b"OggS\x00fake-voice", language_code: str | None = "es") -> int:
        """A user sends a voice note (ogg/opus)."""
        stored = self._store_file(bytes(data), "voice", ext=".oga", mime_type="audio/ogg")
        voice = {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id,
                 "duration": duration, "mime_type": "audio/ogg", "file_size": stored.file_size}
        msg = self._user_message(chat_id, user_id, language_code, "private", {"voice": voice})
        return self.send_raw({"message": msg})

    def send_location(self, chat_id: int, latitude: float = 40.4168, longitude: float = -3.7038,
                      user_id: int | None = None, language_code: str | None = "es") -> int:
        """A user shares a location (Madrid by default)."""
        msg = self._user_message(chat_id, user_id, language_code, "private",
                                 {"location": {"latitude": latitude, "longitude": longitude}})
        return self.send_raw({"message": msg})

    # ------------------------------------------------------------------ #
    # Test-side helpers: observing the bot
    # ------------------------------------------------------------------ #

    async def wait_for(self, predicate: Callable[[SentCall], bool] | str, timeout: float = 30.0,
                       *, start: int = 0) -> SentCall:
        """Return the first call in ``sent[start:]`` matching ``predicate``, waiting for it.

        ``predicate`` may be a method name (``"sendMessage"``) instead of a callable.
        Calls appear at arrival (``ok is None`` while in flight) and are re-checked
        when they complete, so predicates may test ``c.ok`` / ``c.result``.
        Predicates raising KeyError/TypeError/AttributeError/IndexError count as
        "no match". Raises ``TimeoutError`` listing every recorded call.
        Use ``start=len(fake.sent)`` to only consider calls made from now on.
        """
        if isinstance(predicate, str):
            name = predicate
            predicate = lambda c: c.method == name  # noqa: E731

        def matches(call: SentCall) -> bool:
            try:
                return bool(predicate(call))  # type: ignore[operator]
            except (KeyError, TypeError, AttributeError, IndexError):
                return False

        deadline = time.monotonic() + timeout
        settled = start  # sent[start:settled] are finished calls that did not match
        while True:
            in_flight_seen = False
            for idx in range(settled, len(self.sent)):
                call = self.sent[idx]
                if matches(call):
                    return call
                if call.ok is None:  # may still match once it completes: re-check later
                    in_flight_seen = True
                elif not in_flight_seen:
                    settled = idx + 1
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._closing:
                raise TimeoutError(f"no matching call within {timeout}s. {self.describe_sent(start)}")
            await self._wait_event(self._sent_waiters, remaining)

    async def replies(self, chat_id: Any, n: int = 1, timeout: float = 30.0, *, start: int = 0,
                      methods: Iterable[str] = REPLY_METHODS) -> list[SentCall]:
        """Wait until >= ``n`` successful reply calls (sendMessage, sendPhoto,
        sendDocument, editMessageText by default) to ``chat_id`` exist in
        ``sent[start:]``; return all of them (oldest first)."""
        wanted = set(methods)
        deadline = time.monotonic() + timeout
        while True:
            found = [
                c for c in self.sent[start:]
                if c.ok and c.method in wanted and str(c.params.get("chat_id")) == str(chat_id)
            ]
            if len(found) >= n:
                return found
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._closing:
                raise TimeoutError(
                    f"expected {n} replies to chat {chat_id}, got {len(found)} within {timeout}s. "
                    f"{self.describe_sent(start)}"
                )
            await self._wait_event(self._sent_waiters, remaining)

    def describe_sent(self, start: int = 0) -> str:
        """Multi-line listing of recorded calls (for assertion messages)."""
        indexed = [(start + k, c) for k, c in enumerate(self.sent[start:])]
        polls = sum(1 for _, c in indexed if c.method == "getUpdates")
        shown = [(k, c) for k, c in indexed if c.method != "getUpdates"]
        if not shown:
            return (f"The bot made no calls besides {polls} getUpdates" if polls else "The bot made no calls") + (
                f" after index {start}." if start else ".")
        lines = [f"{len(shown)} recorded call(s) (+{polls} getUpdates not listed):"]
        if len(shown) > 50:
            lines.append(f"  ... {len(shown) - 50} older call(s) omitted")
        lines += [f"  [{k}] {c.describe()}" for k, c in shown[-50:]]
        return "\n".join(lines)

    def calls(self, method: str | None = None, chat_id: Any = None) -> list[SentCall]:
        """Recorded calls filtered by method and/or chat (no waiting)."""
        return [
            c for c in self.sent
            if (method is None or c.method == method)
            and (chat_id is None or str(c.params.get("chat_id")) == str(chat_id))
        ]

    def clear_sent(self) -> None:
        """Forget recorded calls (messages, files and updates are kept)."""
        self.sent.clear()

    # ------------------------------------------------------------------ #
    # Fault injection
    # ------------------------------------------------------------------ #

    def fail_next(self, method: str, status: int | None = 500, count: int = 1, retry_after: int | None = None,
                  delay: float = 0.0, drop_connection: bool = False, description: str | None = None) -> Fault:
        """Make the next ``count`` calls of ``method`` misbehave.

        Each affected call first sleeps ``delay`` seconds, then either closes the
        TCP connection without answering (``drop_connection=True``), or answers
        HTTP ``status`` with Telegram's error JSON (429 carries
        ``parameters.retry_after``, default 1), or -- with ``status`` ``None``/
        ``0``/``200`` -- is processed normally (pure latency injection).

        ``method`` is matched case-insensitively; ``"*"`` matches any API method,
        ``"download"`` matches file downloads. Faults queue up in order.
        """
        if count < 1:
            raise ValueError("count must be >= 1")
        fault = Fault(method=method, status=status, remaining=count, retry_after=retry_after,
                      delay=float(delay), drop_connection=drop_connection, description=description)
        self._faults.append(fault)
        return fault

    def truncate_next_download(self, count: int = 1) -> None:
        """Next ``count`` downloads send the full Content-Length but only half the bytes, then close."""
        self._truncate_downloads += count

    def clear_faults(self) -> None:
        """Drop all pending injected faults and truncations."""
        self._faults.clear()
        self._truncate_downloads = 0

    def _take_fault(self, method: str) -> Fault | None:
        for fault in self._faults:
            if fault.method == "*" and method != "download" or fault.method.lower() == method.lower():
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    # ------------------------------------------------------------------ #
    # HTTP plumbing
    # ------------------------------------------------------------------ #

    @staticmethod
    def _wake(waiters: set[asyncio.Event]) -> None:
        for ev in list(waiters):
            ev.set()

    @staticmethod
    async def _wait_event(waiters: set[asyncio.Event], timeout: float) -> None:
        ev = asyncio.Event()
        waiters.add(ev)
        try:
            await asyncio.wait_for(ev.wait(), timeout)
        except TimeoutError:
            pass
        finally:
            waiters.discard(ev)

    def _record(self, call: SentCall) -> None:
        self.sent.append(call)
        if call.method == "getUpdates":
            self.get_updates_calls.append(call)
        self._wake(self._sent_waiters)

    @staticmethod
    def _json_response(status: int, body: dict) -> web.Response:
        return web.Response(status=status, body=json.dumps(body, ensure_ascii=False).encode(),
                            content_type="application/json")

    @staticmethod
    def _drop(request: web.Request) -> web.Response:
        transport = request.transport
        if transport is not None:
            transport.close()
        # aiohttp fails to write this on the closed transport and silently gives up.
        return web.Response(status=500)

    async def _parse_params(self, request: web.Request) -> tuple[dict, dict, dict]:
        raw: dict[str, str] = dict(request.query)
        typed: dict[str, Any] = {}
        files: dict[str, bytes] = {}
        info: dict[str, dict[str, str | None]] = {}
        if request.can_read_body:
            ctype = request.content_type
            if ctype == "application/json":
                body = await request.json()
                if not isinstance(body, dict):
                    raise bad_request("parameters must be a JSON object")
                typed.update(body)
            elif ctype == "multipart/form-data":
                reader = await request.multipart()
                while True:
                    part = await reader.next()
                    if part is None:
                        break
                    if part.filename is not None:  # type: ignore[union-attr]
                        files[part.name] = bytes(await part.read())  # type: ignore[union-attr,index]
                        info[part.name] = {  # type: ignore[index]
                            "filename": part.filename,  # type: ignore[union-attr]
                            "content_type": part.headers.get("Content-Type"),
                        }
                    else:
                        raw[part.name] = await part.text()  # type: ignore[union-attr,index]
            else:
                form = await request.post()
                for key, value in form.items():
                    if isinstance(value, str):
                        raw[key] = value
                    else:  # FileField in an urlencoded body cannot happen, but be safe
                        files[key] = value.file.read()
                        info[key] = {"filename": value.filename, "content_type": value.content_type}
        params = {key: self._decode_field(key, value) for key, value in raw.items()}
        params.update(typed)
        for key in JSON_FIELDS & params.keys():
            if isinstance(params[key], str):
                with contextlib.suppress(ValueError):
                    params[key] = json.loads(params[key])
        return params, files, info

    @staticmethod
    def _decode_field(key: str, value: str) -> Any:
        if key in STRING_FIELDS:
            return value
        try:
            return json.loads(value)
        except ValueError:
            return value

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        token = request.match_info["token"]
        raw_method = request.match_info["method"]
        canonical = self._handlers_lower.get(raw_method.lower())
        call = SentCall(method=canonical or raw_method, params={}, files={}, time=time.monotonic(),
                        token=token, http_method=request.method)
        parse_error: ApiError | None = None
        try:
            call.params, call.files, call.file_info = await self._parse_params(request)
        except ApiError as exc:
            parse_error = exc
        except Exception as exc:  # malformed body
            parse_error = bad_request(f"can't parse request: {exc}")
        # Visible in `sent` from arrival on (ok=None while in flight), so e.g.
        # wait_for("getUpdates") fires as soon as the bot starts long polling.
        self._record(call)
        if parse_error is not None:
            return self._finish(call, parse_error)

        fault = self._take_fault(call.method)
        if fault is not None:
            call.fault = fault
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.drop_connection:
                call.ok = False
                self._wake(self._sent_waiters)
                return self._drop(request)
            if fault.status and fault.status != 200:
                return self._finish(call, fault.error())

        if not _TOKEN_RE.match(token):
            return self._finish(call, ApiError(404, "Not Found"))
        if self.valid_tokens is not None and token not in self.valid_tokens:
            return self._finish(call, ApiError(401, "Unauthorized"))
        if canonical is None:
            return self._finish(call, ApiError(404, "Not Found"))
        try:
            result = await self._handlers[canonical](call)
        except ApiError as exc:
            return self._finish(call, exc)
        except Exception as exc:  # a bug in the fake: make it loud but keep serving
            log.exception("FakeTelegram: error handling %s", canonical)
            return self._finish(call, ApiError(500, f"Internal Server Error: fake failed: {exc!r}"))
        return self._finish(call, result)

    def _finish(self, call: SentCall, outcome: Any) -> web.Response:
        if isinstance(outcome, ApiError):
            call.ok, call.status, call.error = False, outcome.status, outcome.payload()
            body = call.error
        else:
            description = None
            if isinstance(outcome, _WithDescription):
                outcome, description = outcome.result, outcome.description
            call.ok, call.status, call.result = True, 200, outcome
            body = {"ok": True, "result": outcome}
            if description:
                body["description"] = description
        self._wake(self._sent_waiters)
        return self._json_response(call.status, body)  # type: ignore[arg-type]

    async def _handle_download(self, request: web.Request) -> web.StreamResponse:
        file_path = request.match_info["file_path"]
        entry = {"file_path": file_path, "time": time.monotonic(), "status": None, "truncated": False}
        self.downloads.append(entry)
        fault = self._take_fault("download")
        if fault is not None:
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.drop_connection:
                return self._drop(request)
            if fault.status and fault.status != 200:
                err = fault.error()
                entry["status"] = err.status
                return self._json_response(err.status, err.payload())
        stored = self._files_by_path.get(file_path)
        if stored is None or not _TOKEN_RE.match(request.match_info["token"]):
            entry["status"] = 404
            return self._json_response(404, {"ok": False, "error_code": 404, "description": "Not Found"})
        entry["status"] = 200
        if self._truncate_downloads > 0:
            self._truncate_downloads -= 1
            entry["truncated"] = True
            resp = web.StreamResponse(status=200, headers={"Content-Type": "application/octet-stream"})
            resp.content_length = stored.file_size
            await resp.prepare(request)
            await resp.write(stored.data[: stored.file_size // 2])
            if request.transport is not None:
                request.transport.close()
            return resp
        return web.Response(status=200, body=stored.data, content_type="application/octet-stream")

    # ------------------------------------------------------------------ #
    # Object builders
    # ------------------------------------------------------------------ #

    def _bot_id(self, token: str) -> int:
        head = token.split(":", 1)[0]
        return int(head) if head.isdigit() else 1234567890

    def _bot_user(self, token: str) -> dict:
        return {"id": self._bot_id(token), "is_bot": True, "first_name": self.bot_first_name,
                "username": self.bot_username}

    def _user_obj(self, user_id: int, language_code: str | None) -> dict:
        user = {"id": user_id, "is_bot": False, "first_name": f"User{user_id}", "username": f"user{user_id}"}
        if language_code:
            user["language_code"] = language_code
        return user

    @staticmethod
    def _default_user(chat_id: Any, user_id: int | None) -> int:
        if user_id is not None:
            return user_id
        return chat_id if isinstance(chat_id, int) and chat_id > 0 else 777000111

    @staticmethod
    def _norm_chat_id(chat_id: Any) -> Any:
        if isinstance(chat_id, str) and re.fullmatch(r"-?\d+", chat_id.strip()):
            return int(chat_id)
        return chat_id

    def _chat_obj(self, chat_id: Any, chat_type: str | None = None) -> dict:
        chat_id = self._norm_chat_id(chat_id)
        chat = self._chats.get(chat_id)
        if chat is not None and (chat_type is None or chat["type"] == chat_type):
            return dict(chat)
        if chat_type is None:
            if isinstance(chat_id, str):
                chat_type = "channel"
            elif chat_id > 0:
                chat_type = "private"
            else:
                chat_type = "supergroup" if str(chat_id).startswith("-100") else "group"
        if isinstance(chat_id, str):  # "@channelusername"
            chat = {"id": -1000000000000 - (abs(hash(chat_id)) % 10**9), "type": chat_type,
                    "title": chat_id.lstrip("@"), "username": chat_id.lstrip("@")}
        elif chat_type == "private":
            chat = {"id": chat_id, "type": "private", "first_name": f"User{chat_id}", "username": f"user{chat_id}"}
        else:
            chat = {"id": chat_id, "type": chat_type, "title": f"Test {chat_type} {chat_id}"}
        self._chats[chat_id] = chat
        return dict(chat)

    def _next_message_id(self, chat_id: Any) -> int:
        counter = self._chat_msg_ids.setdefault(self._norm_chat_id(chat_id), itertools.count(1))
        return next(counter)

    def _user_message(self, chat_id: int, user_id: int | None, language_code: str | None, chat_type: str,
                      content: dict, reply_to_message_id: int | None = None) -> dict:
        chat = self._chat_obj(chat_id, chat_type)
        msg: dict[str, Any] = {
            "message_id": self._next_message_id(chat_id),
            "from": self._user_obj(self._default_user(chat_id, user_id), language_code),
            "chat": chat,
            "date": int(time.time()),
            **content,
        }
        if reply_to_message_id is not None and (chat_id, reply_to_message_id) in self.messages:
            msg["reply_to_message"] = self._shallow(self.messages[(chat_id, reply_to_message_id)])
        self.messages[(chat_id, msg["message_id"])] = msg
        return msg

    @staticmethod
    def _shallow(msg: dict) -> dict:
        """Copy of a message without its own ``reply_to_message`` (Telegram nests one level)."""
        copy = json.loads(json.dumps(msg))
        copy.pop("reply_to_message", None)
        return copy

    def _store_file(self, data: bytes, folder: str, *, file_name: str | None = None, mime_type: str | None = None,
                    ext: str | None = None, width: int | None = None, height: int | None = None) -> StoredFile:
        n = next(self._counter)
        if ext is None:
            ext = ""
            if file_name and "." in file_name:
                ext = "." + file_name.rsplit(".", 1)[1]
            elif mime_type:
                ext = mimetypes.guess_extension(mime_type) or ""
        stored = StoredFile(
            file_id=f"FAKE{folder[:3].upper()}{n:06d}{secrets.token_urlsafe(12)}",
            file_unique_id=f"U{n:06d}{secrets.token_hex(4)}",
            data=data,
            file_path=f"{folder}/file_{n}{ext}",
            file_name=file_name,
            mime_type=mime_type,
            width=width,
            height=height,
        )
        self.files[stored.file_id] = stored
        self._files_by_path[stored.file_path] = stored
        return stored

    @staticmethod
    def _document_obj(stored: StoredFile) -> dict:
        doc: dict[str, Any] = {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id,
                               "file_size": stored.file_size}
        if stored.file_name:
            doc["file_name"] = stored.file_name
        if stored.mime_type:
            doc["mime_type"] = stored.mime_type
        return doc

    def _photo_sizes(self, data: bytes, *, strict: bool) -> list[dict]:
        """Register 3 sizes of a photo and return the PhotoSize list (largest last)."""
        width = height = None
        image = None
        if Image is not None:
            try:
                image = Image.open(io.BytesIO(data))
                width, height = image.size
            except Exception:
                image = None
        if image is None and strict and self.strict_images and Image is not None:
            raise bad_request("IMAGE_PROCESS_FAILED")
        sizes: list[dict] = []
        for limit in (90, 320):
            blob, w, h = data, limit, limit
            if image is not None and width and height:
                scale = min(1.0, limit / max(width, height))
                w, h = max(1, round(width * scale)), max(1, round(height * scale))
                if scale < 1.0:
                    try:
                        thumb = image.convert("RGB")
                        thumb.thumbnail((limit, limit))
                        w, h = thumb.size
                        buf = io.BytesIO()
                        thumb.save(buf, format="JPEG", quality=80)
                        blob = buf.getvalue()
                    except Exception:
                        blob = data
            stored = self._store_file(blob, "photos", ext=".jpg", mime_type="image/jpeg", width=w, height=h)
            sizes.append(self._photo_size_obj(stored))
        big = self._store_file(data, "photos", ext=".jpg", mime_type="image/jpeg",
                               width=width or 800, height=height or 800)
        sizes.append(self._photo_size_obj(big))
        return sizes

    @staticmethod
    def _photo_size_obj(stored: StoredFile) -> dict:
        return {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id,
                "file_size": stored.file_size, "width": stored.width, "height": stored.height}

    # ------------------------------------------------------------------ #
    # Shared validation for outgoing messages
    # ------------------------------------------------------------------ #

    def _target_chat(self, params: dict) -> Any:
        if "chat_id" not in params or params["chat_id"] in ("", None):
            raise bad_request("chat_id is empty")
        chat_id = self._norm_chat_id(params["chat_id"])
        if chat_id in self.blocked_chats:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        return chat_id

    def _formatted(self, text: Any, params: dict, *, caption: bool) -> tuple[str, list[dict]]:
        text = "" if text is None else str(text)
        ents = params.get("caption_entities" if caption else "entities")
        if self.validate_markup:
            plain, entities = format_text(text, params.get("parse_mode"), ents)
        else:
            plain, entities = text, list(ents or [])
        limit = 1024 if caption else 4096
        if utf16_len(plain) > limit:
            raise bad_request("message caption is too long" if caption else "message is too long")
        return plain, entities

    def _inline_markup(self, params: dict) -> dict | None:
        markup = params.get("reply_markup")
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise bad_request("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" not in markup:
            return None  # reply keyboards are accepted but never echoed in the Message
        rows = markup["inline_keyboard"]
        if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
            raise bad_request("field \"inline_keyboard\" of the InlineKeyboardMarkup must be an Array of Arrays")
        for row in rows:
            for button in row:
                if not isinstance(button, dict) or not button.get("text"):
                    raise bad_request("can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard")
                data = button.get("callback_data")
                if data is not None and not (1 <= len(str(data).encode()) <= 64):
                    raise bad_request("BUTTON_DATA_INVALID")
        return markup

    def _reply_target(self, chat_id: Any, params: dict) -> dict | None:
        rp = params.get("reply_parameters")
        if not isinstance(rp, dict):
            rp = {"message_id": params["reply_to_message_id"]} if params.get("reply_to_message_id") else None
            if rp is not None:
                rp["allow_sending_without_reply"] = params.get("allow_sending_without_reply", False)
        if not rp or not rp.get("message_id"):
            return None
        target_chat = self._norm_chat_id(rp.get("chat_id", chat_id))
        found = self.messages.get((target_chat, int(rp["message_id"])))
        if found is None:
            if rp.get("allow_sending_without_reply"):
                return None
            raise bad_request("message to be replied not found")
        return self._shallow(found)

    def _bot_message(self, call: SentCall, chat_id: Any, content: dict, *, reply_to: dict | None = None,
                     markup: dict | None = None, media_group_id: str | None = None) -> dict:
        msg: dict[str, Any] = {
            "message_id": self._next_message_id(chat_id),
            "from": self._bot_user(call.token),
            "chat": self._chat_obj(chat_id),
            "date": int(time.time()),
        }
        if media_group_id is not None:
            msg["media_group_id"] = media_group_id
        if reply_to is not None:
            msg["reply_to_message"] = reply_to
        msg.update(content)
        if markup is not None:
            msg["reply_markup"] = markup
        self.messages[(chat_id, msg["message_id"])] = msg
        return json.loads(json.dumps(msg))

    def _input_file(self, call: SentCall, field: str, value: Any, kind: str) -> tuple[StoredFile | None, str | None, str | None]:
        """Resolve a media parameter -> (stored file or None for new upload, data source info).

        Returns (existing StoredFile, None, None) for a known file_id, or
        (None, part_name, url) describing new bytes to register.
        """
        if isinstance(value, str) and value.startswith("attach://"):
            part = value[len("attach://"):]
            if part not in call.files:
                raise bad_request("wrong file identifier/HTTP URL specified")
            return None, part, None
        if value is None and field in call.files:
            return None, field, None
        if isinstance(value, str) and value in self.files:
            return self.files[value], None, None
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            return None, None, value
        if value is None:
            raise bad_request(f"there is no {kind} in the request")
        raise bad_request("wrong file identifier/HTTP URL specified")

    def _media_content(self, call: SentCall, field: str, value: Any, kind: str,
                       extra: dict | None = None) -> dict:
        """Build the message content for one photo/document/video/audio item."""
        existing, part, url = self._input_file(call, field, value, kind)
        extra = extra or {}
        if kind == "photo":
            if existing is not None:
                data = existing.data
            elif part is not None:
                data = call.files[part]
            else:
                data = b""  # URL: we cannot fetch it; an empty placeholder photo
            if existing is None and not data and url is None:
                raise bad_request("file must be non-empty")
            # Only fresh uploads are checked: re-sending a known file_id never fails.
            return {"photo": self._photo_sizes(data, strict=part is not None)}
        if existing is not None:
            stored = existing
        elif part is not None:
            info = call.file_info.get(part, {})
            name = extra.get("file_name") or info.get("filename")
            mime = info.get("content_type")
            if not mime or mime == "application/octet-stream":
                mime = (mimetypes.guess_type(name)[0] if name else None) or mime or "application/octet-stream"
            if not call.files[part]:
                raise bad_request("file must be non-empty")
            stored = self._store_file(call.files[part], "documents" if kind == "document" else kind + "s",
                                      file_name=name, mime_type=mime)
        else:
            name = url.rsplit("/", 1)[-1] if url else None  # type: ignore[union-attr]
            stored = self._store_file(b"", "documents", file_name=name,
                                      mime_type=mimetypes.guess_type(name or "")[0])
        obj = self._document_obj(stored)
        if kind == "video":
            obj.update(width=extra.get("width") or 640, height=extra.get("height") or 360,
                       duration=extra.get("duration") or 1)
        elif kind == "audio":
            obj.update(duration=extra.get("duration") or 1)
        return {kind: obj}

    def _caption_content(self, params: dict) -> dict:
        if params.get("caption") in (None, ""):
            return {}
        plain, ents = self._formatted(params["caption"], params, caption=True)
        content: dict[str, Any] = {"caption": plain}
        if ents:
            content["caption_entities"] = ents
        return content

    # ------------------------------------------------------------------ #
    # Bot API methods
    # ------------------------------------------------------------------ #

    async def _m_true(self, call: SentCall) -> bool:
        return True

    async def _m_get_me(self, call: SentCall) -> dict:
        return {
            **self._bot_user(call.token),
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _m_get_updates(self, call: SentCall) -> list[dict]:
        params = call.params
        if self.webhook.get("url"):
            raise ApiError(409, "Conflict: can't use getUpdates method while webhook is active; "
                                "use deleteWebhook to delete the webhook first")
        offset = params.get("offset")
        limit = params.get("limit") or 100
        try:
            limit = max(1, min(100, int(limit)))
            timeout = max(0.0, min(self.max_poll_timeout, float(params.get("timeout") or 0)))
        except (TypeError, ValueError):
            raise bad_request("wrong parameter in request") from None
        if offset is not None:
            offset = int(offset)
            if offset < 0:  # -N: forget everything but the last N updates
                keep = self._updates[offset:] if abs(offset) <= len(self._updates) else list(self._updates)
                self._updates[:] = keep
            else:
                self._updates[:] = [u for u in self._updates if u["update_id"] >= offset]

        self._poll_generation += 1
        generation = self._poll_generation
        self._wake(self._update_waiters)  # tell an older pending poll it has been superseded
        deadline = time.monotonic() + timeout
        while True:
            if generation != self._poll_generation:
                raise ApiError(409, DEFAULT_DESCRIPTIONS[409])
            if self._updates or self._closing:
                return json.loads(json.dumps(self._updates[:limit]))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            await self._wait_event(self._update_waiters, remaining)

    async def _m_send_message(self, call: SentCall) -> dict:
        p = call.params
        chat_id = self._target_chat(p)
        if p.get("text") in (None, ""):
            raise bad_request("message text is empty")
        plain, ents = self._formatted(p["text"], p, caption=False)
        if not plain.strip():
            raise bad_request("message text is empty")
        markup = self._inline_markup(p)
        reply_to = self._reply_target(chat_id, p)
        content: dict[str, Any] = {"text": plain}
        if ents:
            content["entities"] = ents
        if isinstance(p.get("link_preview_options"), dict):
            content["link_preview_options"] = p["link_preview_options"]
        return self._bot_message(call, chat_id, content, reply_to=reply_to, markup=markup)

    async def _m_send_photo(self, call: SentCall) -> dict:
        p = call.params
        chat_id = self._target_chat(p)
        caption = self._caption_content(p)
        markup = self._inline_markup(p)
        reply_to = self._reply_target(chat_id, p)
        content = self._media_content(call, "photo", p.get("photo"), "photo")
        content.update(caption)
        if p.get("has_spoiler"):
            content["has_media_spoiler"] = True
        return self._bot_message(call, chat_id, content, reply_to=reply_to, markup=markup)

    async def _m_send_document(self, call: SentCall) -> dict:
        p = call.params
        chat_id = self._target_chat(p)
        caption = self._caption_content(p)
        markup = self._inline_markup(p)
        reply_to = self._reply_target(chat_id, p)
        content = self._media_content(call, "document", p.get("document"), "document")
        content.update(caption)
        return self._bot_message(call, chat_id, content, reply_to=reply_to, markup=markup)

    async def _m_send_media_group(self, call: SentCall) -> list[dict]:
        p = call.params
        chat_id = self._target_chat(p)
        media = p.get("media")
        if not isinstance(media, list) or not media:
            raise bad_request("parameter \"media\" is required")
        if len(media) > 10:
            raise bad_request("too many messages to send as an album")
        reply_to = self._reply_target(chat_id, p)
        group_id = str(10**17 + next(self._counter))
        contents = []
        for item in media:
            if not isinstance(item, dict) or item.get("type") not in ("photo", "video", "document", "audio"):
                raise bad_request("wrong media type specified")
            content = self._media_content(call, item["type"], item.get("media"), item["type"], extra=item)
            content.update(self._caption_content(item))
            contents.append(content)
        return [self._bot_message(call, chat_id, c, reply_to=reply_to, media_group_id=group_id) for c in contents]

    async def _m_send_chat_action(self, call: SentCall) -> bool:
        self._target_chat(call.params)
        if call.params.get("action") not in CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        return True

    def _editable(self, call: SentCall) -> tuple[Any, dict] | None:
        p = call.params
        if p.get("inline_message_id"):
            return None
        if p.get("chat_id") in (None, ""):
            raise bad_request("chat_id is empty")
        if not p.get("message_id"):
            raise bad_request("message identifier is not specified")
        chat_id = self._norm_chat_id(p["chat_id"])
        msg = self.messages.get((chat_id, int(p["message_id"])))
        if msg is None:
            raise bad_request("message to edit not found")
        if not msg.get("from", {}).get("is_bot"):
            raise bad_request("message can't be edited")
        return chat_id, msg

    _NOT_MODIFIED = ("message is not modified: specified new message content and reply markup are exactly "
                     "the same as a current content and reply markup of the message")

    async def _m_edit_message_text(self, call: SentCall) -> Any:
        p = call.params
        target = self._editable(call)
        if p.get("text") in (None, ""):
            raise bad_request("message text is empty")
        plain, ents = self._formatted(p["text"], p, caption=False)
        if not plain.strip():
            raise bad_request("message text is empty")
        markup = self._inline_markup(p)
        if target is None:
            return True
        _, msg = target
        if "text" not in msg:
            raise bad_request("there is no text in the message to edit")
        if msg["text"] == plain and msg.get("entities", []) == ents and msg.get("reply_markup") == markup:
            raise bad_request(self._NOT_MODIFIED)
        msg["text"] = plain
        msg.pop("entities", None)
        if ents:
            msg["entities"] = ents
        msg.pop("reply_markup", None)
        if markup is not None:
            msg["reply_markup"] = markup
        msg["edit_date"] = int(time.time())
        return json.loads(json.dumps(msg))

    async def _m_edit_message_reply_markup(self, call: SentCall) -> Any:
        markup = self._inline_markup(call.params)
        target = self._editable(call)
        if target is None:
            return True
        _, msg = target
        if msg.get("reply_markup") == markup:
            raise bad_request(self._NOT_MODIFIED)
        msg.pop("reply_markup", None)
        if markup is not None:
            msg["reply_markup"] = markup
        msg["edit_date"] = int(time.time())
        return json.loads(json.dumps(msg))

    async def _m_answer_callback_query(self, call: SentCall) -> bool:
        query_id = str(call.params.get("callback_query_id", ""))
        entry = self.callback_queries.get(query_id)
        if entry is None or entry["answer"] is not None:
            raise bad_request("query is too old and response timeout expired or query ID is invalid")
        if len(str(call.params.get("text", ""))) > 200:
            raise bad_request("MESSAGE_TOO_LONG")
        entry["answer"] = dict(call.params)
        return True

    async def _m_get_file(self, call: SentCall) -> dict:
        file_id = call.params.get("file_id")
        if not file_id:
            raise bad_request("file_id not specified")
        stored = self.files.get(str(file_id))
        if stored is None:
            raise bad_request("invalid file_id")
        if stored.file_size > MAX_DOWNLOAD_SIZE:
            raise bad_request("file is too big")
        return stored.as_file()

    async def _m_set_webhook(self, call: SentCall) -> _WithDescription:
        p = call.params
        url = p.get("url") or ""
        if not url:
            self.webhook = {}
            return _WithDescription(True, "Webhook was deleted")
        if not str(url).startswith(("http://", "https://")):
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        secret = p.get("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", str(secret)):
            raise bad_request("secret token contains unallowed characters")
        if p.get("drop_pending_updates"):
            self._updates.clear()
        already = self.webhook.get("url") == url
        self.webhook = {
            "url": url,
            "secret_token": secret,
            "max_connections": int(p.get("max_connections") or 40),
            "allowed_updates": p.get("allowed_updates"),
            "ip_address": p.get("ip_address"),
            "has_custom_certificate": "certificate" in call.files,
        }
        self._wake(self._update_waiters)
        if self._webhook_wakeup is not None:
            self._webhook_wakeup.set()
        return _WithDescription(True, "Webhook is already set" if already else "Webhook was set")

    async def _m_delete_webhook(self, call: SentCall) -> _WithDescription:
        if call.params.get("drop_pending_updates"):
            self._updates.clear()
        had = bool(self.webhook.get("url"))
        self.webhook = {}
        return _WithDescription(True, "Webhook was deleted" if had else "Webhook is already deleted")

    async def _m_get_webhook_info(self, call: SentCall) -> dict:
        info: dict[str, Any] = {
            "url": self.webhook.get("url", ""),
            "has_custom_certificate": bool(self.webhook.get("has_custom_certificate")),
            "pending_update_count": len(self._updates),
        }
        if self.webhook.get("url"):
            info["max_connections"] = self.webhook["max_connections"]
            for key in ("ip_address", "allowed_updates", "last_error_date", "last_error_message"):
                if self.webhook.get(key):
                    info[key] = self.webhook[key]
        return info

    @staticmethod
    def _commands_key(params: dict) -> tuple[str, str]:
        scope = params.get("scope") or {"type": "default"}
        return json.dumps(scope, sort_keys=True), str(params.get("language_code") or "")

    async def _m_set_my_commands(self, call: SentCall) -> bool:
        commands = call.params.get("commands")
        if not isinstance(commands, list):
            raise bad_request("parameter \"commands\" is required")
        if len(commands) > 100:
            raise bad_request("too many commands")
        for cmd in commands:
            if not isinstance(cmd, dict) or not _BOT_COMMAND_NAME_RE.match(str(cmd.get("command", ""))):
                raise bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(str(cmd.get("description", ""))) <= 256:
                raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        self.commands[self._commands_key(call.params)] = [
            {"command": c["command"], "description": c["description"]} for c in commands
        ]
        return True

    async def _m_delete_my_commands(self, call: SentCall) -> bool:
        self.commands.pop(self._commands_key(call.params), None)
        return True

    async def _m_get_my_commands(self, call: SentCall) -> list[dict]:
        return list(self.commands.get(self._commands_key(call.params), []))

    # ------------------------------------------------------------------ #
    # Webhook delivery
    # ------------------------------------------------------------------ #

    async def _webhook_loop(self) -> None:
        """Deliver pending updates to the webhook URL, one at a time, like Telegram."""
        assert self._webhook_wakeup is not None
        while not self._closing:
            await self._webhook_wakeup.wait()
            self._webhook_wakeup.clear()
            while self.webhook_delivery and self.webhook.get("url") and self._updates and not self._closing:
                update = self._updates[0]
                ok = await self._deliver(update)
                if ok:
                    if self._updates and self._updates[0] is update:
                        self._updates.pop(0)
                else:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._webhook_wakeup.wait(), 0.5)
                    self._webhook_wakeup.clear()

    async def _deliver(self, update: dict) -> bool:
        if self._http is None:
            self._http = ClientSession(timeout=ClientTimeout(total=10))
        headers = {"Content-Type": "application/json"}
        if self.webhook.get("secret_token"):
            headers["X-Telegram-Bot-Api-Secret-Token"] = self.webhook["secret_token"]
        try:
            async with self._http.post(self.webhook["url"], data=json.dumps(update), headers=headers) as resp:
                await resp.read()
                if 200 <= resp.status < 300:
                    return True
                error = f"Wrong response from the webhook: {resp.status} {resp.reason}"
        except Exception as exc:  # connection refused, timeout, ...
            error = f"Connection error: {exc!r}"
        self.webhook["last_error_date"] = int(time.time())
        self.webhook["last_error_message"] = error
        return False


@dataclasses.dataclass
class _WithDescription:
    """A successful result that also carries a top-level ``description`` (setWebhook & co)."""

    result: Any
    description: str
