"""`saveyourlife ask [--json] [--lang es|en] [TEXT]` (stdin lines when TEXT is omitted)."""

from __future__ import annotations

import json
import sys

from inference.intents import IntentModel
from inference.manifest import ManifestError, load_manifest

from ..chat import ChatRouter
from ..knowledge import load_knowledge


def build_router(models_dir) -> ChatRouter:
    manifest = load_manifest(models_dir)
    return ChatRouter(load_knowledge(), IntentModel.from_manifest(manifest), manifest)


def run_ask(args, settings) -> int:
    try:
        router = build_router(settings.models_dir)
    except ManifestError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    questions = [" ".join(args.text)] if args.text else (line.rstrip("\n") for line in sys.stdin)
    for question in questions:
        reply = router.answer(question, lang=args.lang)
        if args.json:
            print(json.dumps({"text": question, "lang": reply.lang, "intent": reply.intent,
                              "confidence": reply.confidence, "answer": reply.text}, ensure_ascii=False), flush=True)
        else:
            print(reply.text + ("\n→ " + reply.links[0].url if reply.links else "") + "\n", flush=True)
    return 0
