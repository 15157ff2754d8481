"""The knowledge base: intents, patterns, answers, sources, links and red flags (intents.json)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

KNOWLEDGE_FILE = Path(__file__).with_name("intents.json")
LANGS = ("es", "en")


@dataclass(frozen=True)
class Link:
    title: str
    url: str


@dataclass(frozen=True)
class Intent:
    tag: str
    category: str
    content: bool
    patterns: dict[str, tuple[str, ...]]
    responses: dict[str, tuple[str, ...]]
    sources: tuple[str, ...]
    links: dict[str, tuple[Link, ...]]
    follow_ups: tuple[str, ...]


@dataclass(frozen=True)
class KnowledgeBase:
    intents: dict[str, Intent]
    red_flags: dict[str, tuple[tuple[str, ...], ...]]
    sources: dict[str, dict]
    allowed_link_domains: tuple[str, ...]
    meta: dict

    def training_samples(self) -> list[tuple[str, str, str]]:
        """(text, lang, tag) for every pattern."""
        return [(p, lang, tag) for tag, it in self.intents.items() for lang in LANGS for p in it.patterns.get(lang, ())]

    def link_allowed(self, url: str) -> bool:
        parsed = urlparse(url)
        host = (parsed.hostname or "").lower()
        return parsed.scheme == "https" and any(host == d or host.endswith("." + d) for d in self.allowed_link_domains)


def load_knowledge(path: Path = KNOWLEDGE_FILE) -> KnowledgeBase:
    raw = json.loads(path.read_text(encoding="utf-8"))
    intents = {}
    for item in raw["intents"]:
        intents[item["tag"]] = Intent(
            tag=item["tag"],
            category=item.get("category", ""),
            content=bool(item.get("content", False)),
            patterns={lang: tuple(v) for lang, v in item.get("patterns", {}).items()},
            responses={lang: tuple(v) for lang, v in item.get("responses", {}).items()},
            sources=tuple(item.get("sources", ())),
            links={lang: tuple(Link(l["title"], l["url"]) for l in v) for lang, v in item.get("links", {}).items()},
            follow_ups=tuple(item.get("follow_ups", ())),
        )
    meta = raw.get("meta", {})
    return KnowledgeBase(
        intents=intents,
        red_flags={lang: tuple(tuple(words) for words in v) for lang, v in raw.get("red_flags", {}).items()},
        sources=meta.get("sources", {}),
        allowed_link_domains=tuple(meta.get("allowed_link_domains", ())),
        meta=meta,
    )
