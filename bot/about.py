"""/about: what the project is, its data, measured accuracy (overall and per kind of slice) and limits."""

from __future__ import annotations

import html

from inference.manifest import Manifest

from .chat import accuracy_values
from .messages import t


def about_html(manifest: Manifest, lang: str) -> str:
    """The catalogue's /about text, filled with the manifest's figures (the same ones the chat's accuracy answer
    gives); /about is sent as HTML, so the plain-text figures are escaped."""
    values = {key: html.escape(value) for key, value in accuracy_values(manifest, lang).items()}
    return t("cmd.about", lang, **values)
