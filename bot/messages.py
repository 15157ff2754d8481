"""The message catalogue: every user-facing UI text, in Spanish and English.

Two files, one catalogue: messages.json and the chat's messages_chat.json. A key in both is a bug and
fails loudly at the first lookup.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib.resources import files
from pathlib import Path

PACKAGE = Path(str(files("bot")))
CATALOGUE_FILE = PACKAGE / "messages.json"
CATALOGUE_FILES = (CATALOGUE_FILE, PACKAGE / "messages_chat.json")
DEFAULT_LANG = "es"


@lru_cache(maxsize=1)
def _catalogue() -> dict[str, dict[str, str]]:
    merged: dict[str, dict[str, str]] = {}
    for path in CATALOGUE_FILES:
        part = json.loads(path.read_text(encoding="utf-8"))
        clash = sorted(set(part) & set(merged))
        if clash:
            raise ValueError(f"message keys defined twice (in {path.name} and an earlier catalogue file): {clash}")
        merged.update(part)
    return merged


def t(key: str, lang: str, **values) -> str:
    """The text for `key` in `lang` (falling back to Spanish), with {placeholders} filled."""
    entry = _catalogue().get(key)
    if entry is None:
        raise KeyError(f"message '{key}' is not in {', '.join(p.name for p in CATALOGUE_FILES)}")
    text = entry.get(lang) or entry[DEFAULT_LANG]
    return text.format(**values) if values else text


def has(key: str) -> bool:
    return key in _catalogue()


def percent(value: float | None, lang: str) -> str:
    if value is None:
        return t("common.not_available", lang)
    text = f"{value * 100:.1f}"
    return (text.replace(".", ",") if lang == "es" else text) + " %"
