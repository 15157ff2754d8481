"""The message catalogue (messages.json): every user-facing UI text, in Spanish and English."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

CATALOGUE_FILE = Path(__file__).with_name("messages.json")
DEFAULT_LANG = "es"


@lru_cache(maxsize=1)
def _catalogue() -> dict[str, dict[str, str]]:
    return json.loads(CATALOGUE_FILE.read_text(encoding="utf-8"))


def t(key: str, lang: str, **values) -> str:
    """The text for `key` in `lang` (falling back to Spanish), with {placeholders} filled."""
    entry = _catalogue().get(key)
    if entry is None:
        raise KeyError(f"message '{key}' is not in {CATALOGUE_FILE.name}")
    text = entry.get(lang) or entry[DEFAULT_LANG]
    return text.format(**values) if values else text


def has(key: str) -> bool:
    return key in _catalogue()


def percent(value: float | None, lang: str) -> str:
    if value is None:
        return t("common.not_available", lang)
    text = f"{value * 100:.1f}"
    return (text.replace(".", ",") if lang == "es" else text) + " %"
