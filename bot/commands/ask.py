"""`saveyourlife ask [--json] [--lang es|en] [TEXT]` (stdin lines when TEXT is omitted).

Each line is answered with the context the previous lines left, as one conversation would be.
"""

from __future__ import annotations

import json
import sys

from inference.intents import IntentModel
from inference.manifest import ManifestError, load_manifest

from ..chat import ChatRouter
from ..knowledge import load_knowledge


def build_router(models_dir) -> ChatRouter:
    # The chat gates nothing: it only quotes the gating table, and says so when the image side has not fitted it.
    manifest = load_manifest(models_dir, require_gating=False)
    return ChatRouter(load_knowledge(), IntentModel.from_manifest(manifest), manifest)


def run_ask(args, settings) -> int:
    try:
        router = build_router(settings.models_dir)
    except ManifestError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    questions = [" ".join(args.text)] if args.text else (line.rstrip("\n") for line in sys.stdin)
    context = None
    for question in questions:
        reply = router.answer(question, lang=args.lang, context=context)
        context = reply.context
        if args.json:
            print(json.dumps({"text": question, "lang": reply.lang, "intent": reply.intent,
                              "topic": reply.topic, "question": reply.question, "kind": reply.kind,
                              "red_flag": reply.red_flag, "confidence": reply.confidence, "answer": reply.text},
                             ensure_ascii=False), flush=True)
        else:
            print(reply.text + ("\n→ " + reply.links[0].url if reply.links else "") + "\n", flush=True)
    return 0
