"""/about: what the project is, its data, measured accuracy and limits (from the manifest)."""

from __future__ import annotations

from inference.manifest import Manifest

from .chat import accuracy_values
from .messages import t


def about_html(manifest: Manifest, lang: str) -> str:
    return t("cmd.about", lang, **accuracy_values(manifest, lang))
