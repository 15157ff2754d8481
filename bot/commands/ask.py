"""`saveyourlife ask [--json] [--lang es|en] [TEXT]` (stdin lines when TEXT is omitted).

Each line is answered with the context the previous lines left, as one conversation would be.
"""

from __future__ import annotations

import json
import sys

from ..loader import load_models


def run_ask(args, settings) -> int:
    router = load_models(settings, images=False).router
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
