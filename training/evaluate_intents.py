"""Score the chat router on the held-out paraphrases in tests/data/intents_eval.json."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np


def evaluate_intents(models_dir: Path, eval_file: Path) -> dict:
    from bot.loader import chat_router

    router = chat_router(models_dir)
    data = json.loads(eval_file.read_text(encoding="utf-8"))
    in_scope = data.get("in_scope", [])
    replies = [router.answer(item["text"], lang=item["lang"]) for item in in_scope]
    truth = [item["intent"] for item in in_scope]
    correct = [r.intent == want or (want == "out_of_scope" and r.intent is None) for r, want in zip(replies, truth)]
    real_topics = [i for i, want in enumerate(truth) if want != "out_of_scope"]
    fell_back = [replies[i].intent is None for i in real_topics]
    oos = [router.answer(item["text"], lang=item.get("lang")) for item in data.get("out_of_scope", [])]
    flags = [router.answer(item["text"], lang=item["lang"]) for item in data.get("red_flags", [])]
    calm = [router.answer(item["text"], lang=item["lang"]) for item in data.get("not_red_flags", [])]
    per_lang = {}
    for lang in ("es", "en"):
        idx = [i for i, item in enumerate(in_scope) if item["lang"] == lang]
        per_lang[lang] = round(float(np.mean([correct[i] for i in idx])), 4) if idx else None

    timings = []
    sample = [item["text"] for item in in_scope[:200]]
    for text in sample:
        started = time.perf_counter()
        router.answer(text)
        timings.append((time.perf_counter() - started) * 1000)
    return {
        "in_scope_n": len(in_scope),
        "top1_accuracy": round(float(np.mean(correct)), 4) if correct else None,
        "top1_accuracy_by_lang": per_lang,
        "fallback_rate_in_scope": round(float(np.mean(fell_back)), 4) if fell_back else None,
        "out_of_scope_n": len(oos),
        "out_of_scope_fallback": round(float(np.mean([r.intent is None for r in oos])), 4) if oos else None,
        "red_flags_n": len(flags),
        "red_flags_routed": round(float(np.mean([r.kind == "emergency" for r in flags])), 4) if flags else None,
        "not_red_flags_n": len(calm),
        "false_alarms": round(float(np.mean([r.kind == "emergency" for r in calm])), 4) if calm else None,
        "p50_ms": round(float(np.median(timings)), 3) if timings else None,
    }
