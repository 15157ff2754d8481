"""`saveyourlife chat`: the same assistant as the bot, in a terminal (user id 0)."""

from __future__ import annotations

import asyncio
import shlex
import sys
from pathlib import Path

from .chat_session import converse
from .db.context import ContextStore
from .messages import t
from .render import picture_html, rejection_html, to_plain
from .service import Assistant
from .settings import Settings

CONSOLE_USER = 0


async def _loop(settings: Settings, lines) -> None:
    assistant = await Assistant.create(settings)
    lang = "es"
    chosen = False  # until /lang, each question's language is detected from its text
    print(t("console.welcome", lang), flush=True)
    try:
        for raw in lines:
            line = raw.strip()
            if not line:
                continue
            if line in ("/quit", "/exit"):
                break
            if line.startswith("/lang"):
                parts = line.split()
                if len(parts) > 1 and parts[1] in ("es", "en"):
                    lang, chosen = parts[1], True
                print(t("cmd.lang_set", lang) if len(parts) > 1 and parts[1] in ("es", "en") else t("cmd.lang_usage", lang))
                continue
            if line.startswith("/photo"):
                args = shlex.split(line[len("/photo"):]) or [""]
                path = Path(args[0]).expanduser()
                if not path.is_file():
                    print(t("console.no_file", lang, path=str(path)), flush=True)
                    continue
                outcome = await assistant.analyse(CONSOLE_USER, path.read_bytes(), path.name, "document", lang)
                if outcome.rejection:
                    print(to_plain(rejection_html(outcome.rejection, lang)), flush=True)
                else:
                    print(to_plain(picture_html(outcome.analysis, lang, outcome.scan.warnings, outcome.scan.dicom)), flush=True)
                    result = outcome.result
                    sequence = getattr(result, "sequence", None)
                    await ContextStore(assistant.db).remember_image(CONSOLE_USER, result.verdict, result.tumor_type,
                                                                    sequence if isinstance(sequence, str) else None)
                continue
            if line.startswith("/"):
                key = {"/start": "cmd.start", "/help": "cmd.help"}.get(line.split()[0], "cmd.unknown")
                print(to_plain(t(key, lang)), flush=True)
                continue
            reply = await converse(assistant, CONSOLE_USER, line, lang=lang if chosen else None)
            lang = reply.lang
            print(reply.text + (f"\n→ {reply.links[0].url}" if reply.links else ""), flush=True)
    finally:
        await assistant.close()


def run_console(settings: Settings) -> int:
    from .logging_setup import configure_logging

    configure_logging("WARNING", [settings.token or ""])
    lines = sys.stdin
    if sys.stdin.isatty():
        def prompt():
            while True:
                try:
                    yield input("> ")
                except EOFError:
                    return
        lines = prompt()
    asyncio.run(_loop(settings, lines))
    return 0
