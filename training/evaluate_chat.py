"""Score the chat router on the evaluation sets in tests/data/chat and write models/cards/chat/metrics.json.

    .venv/bin/python -m training.evaluate_chat [--test] [--holdout] [--languages LIBDIR]

The sets were written separately from the patterns and are never trained on. Scored: dev paraphrases
(top-1 topic × question, per topic, per question, per language), red flags (recall per category on the
development sets; the newest blind pair only with --holdout), false alarms on ordinary questions, out-of-scope fallbacks,
language of short messages, follow-up dialogues through the real router (contexts included), and the p50
latency of one answer. --languages also compares language-ID libraries found in LIBDIR (a pip --target
folder), with their accuracy, added memory and latency.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data" / "chat"
CARD = REPO / "models" / "cards" / "chat" / "metrics.json"
# The blind pairs (red_flags_<pair>.json, ordinary_<pair>.json), in the order they were written. Each became a
# development set once scored; what each scored is in the README's chat table and CHANGELOG.md. The newest pair
# (NEWEST_PAIR, still to be written) is scored once, with --holdout.
BLIND_PAIRS = ("holdout", *(f"holdout{k}" for k in range(2, 36)))
NEWEST_PAIR = BLIND_PAIRS[-1]


def _load(name: str, data_dir: Path = DATA):
    path = data_dir / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def _share(hits: list[bool]) -> float | None:
    return round(sum(hits) / len(hits), 4) if hits else None


def _grouped(items: list[dict], hits: list[bool], key: str) -> dict:
    groups: dict[str, list[bool]] = defaultdict(list)
    for item, hit in zip(items, hits):
        groups[str(item.get(key))].append(hit)
    return {k: {"n": len(v), "accuracy": _share(v)} for k, v in sorted(groups.items())}


def score_dev(router, items: list[dict]) -> dict:
    replies = [router.answer(i["text"]) for i in items]
    hits = [r.topic == i["topic"] and r.question == i["question"] for r, i in zip(replies, items)]
    misses = [{"text": i["text"], "want": f"{i['topic']}.{i['question']}", "got": r.intent, "kind": r.kind}
              for r, i in zip(replies, items) if not (r.topic == i["topic"] and r.question == i["question"])]
    return {"n": len(items), "top1": _share(hits), "by_lang": _grouped(items, hits, "lang"),
            "by_topic": _grouped(items, hits, "topic"), "by_question": _grouped(items, hits, "question"),
            "topic_right": _share([r.topic == i["topic"] for r, i in zip(replies, items)]),
            "fallbacks": sum(r.kind == "fallback" for r in replies), "misses": misses}


def score_red_flags(router, items: list[dict]) -> dict:
    replies = [router.answer(i["text"]) for i in items]
    hits = [r.kind == "emergency" for r in replies]
    crisis = [r.intent == "crisis" for r, i in zip(replies, items) if i.get("category") == "self_harm"]
    ruled = [router.safety.ruled(i["text"]) is not None for i in items]
    return {"n": len(items), "recall": _share(hits), "rules_alone": _share(ruled),
            "by_category": _grouped(items, hits, "category"),
            "by_lang": _grouped(items, hits, "lang"), "self_harm_given_crisis_lines": _share(crisis),
            "missed": [i["text"] for i, h in zip(items, hits) if not h]}


def score_false_alarms(router, items: list[dict]) -> dict:
    alarms = [i["text"] for i in items if router.answer(i["text"]).kind == "emergency"]
    return {"n": len(items), "false_alarms": len(alarms), "rate": round(len(alarms) / len(items), 4) if items else None,
            "texts": alarms}


def score_out_of_scope(router, items: list[dict]) -> dict:
    replies = [router.answer(i["text"]) for i in items]
    hits = [r.kind == "fallback" for r in replies]
    return {"n": len(items), "fallback": _share(hits), "by_lang": _grouped(items, hits, "lang"),
            "answered": [f"{i['text']} -> {r.intent}" for i, r in zip(items, replies) if r.kind != "fallback"]}


def score_language(router, items: list[dict]) -> dict:
    hits = [router.language_of(i["text"]) == i["lang"] for i in items]
    return {"n": len(items), "accuracy": _share(hits), "by_lang": _grouped(items, hits, "lang"),
            "wrong": [i["text"] for i, h in zip(items, hits) if not h]}


def run_dialogue(router, dialogue: dict, now: dt.datetime) -> list[tuple[dict, object]]:
    """Each user turn through router.answer with the context the previous turns left; (expectation, reply)."""
    from bot.chat_context import ChatContext

    context, out = ChatContext(), []
    for step, turn in enumerate(dialogue["turns"]):
        at = now + dt.timedelta(seconds=30 * step)
        if "image_result" in turn:
            image = turn["image_result"]
            context = context.with_image(image["verdict"], image.get("tumor_type"), image.get("sequence"), at)
            continue
        reply = router.answer(turn["user"], context=context, now=at)
        context = reply.context or context
        out.append((turn.get("expect", {}), reply))
    return out


def turn_resolved(expect: dict, reply) -> bool:
    if reply.kind in ("fallback", "clarify", "empty"):
        return False
    return ((expect.get("topic") is None or reply.topic == expect["topic"])
            and (expect.get("question") is None or reply.question == expect["question"])
            and bool(expect.get("about_result", False)) == reply.about_result)


def score_dialogues(router, dialogues: list[dict]) -> dict:
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    turns, dialogue_ok, failed = [], [], []
    for d in dialogues:
        results = [(e, r, turn_resolved(e, r)) for e, r in run_dialogue(router, d, now)]
        turns += [ok for _, _, ok in results]
        dialogue_ok.append(all(ok for _, _, ok in results))
        failed += [{"user": next((t["user"] for t in d["turns"] if t.get("expect") is e), ""), "want": e,
                    "got": {"topic": r.topic, "question": r.question, "about_result": r.about_result, "kind": r.kind}}
                   for e, r, ok in results if not ok]
    return {"dialogues": len(dialogues), "turns": len(turns), "turns_resolved": _share(turns),
            "dialogues_fully_resolved": _share(dialogue_ok), "failed": failed}


def p50_ms(router, texts: list[str]) -> dict:
    router.answer(texts[0])
    times = []
    for text in texts:
        started = time.perf_counter()
        router.answer(text)
        times.append((time.perf_counter() - started) * 1000)
    return {"n": len(times), "p50_ms": round(statistics.median(times), 3),
            "p95_ms": round(sorted(times)[int(len(times) * 0.95) - 1], 3)}


_LIB_PROBE = r"""
import json, sys, time
sys.path.insert(0, sys.argv[2])
def rss():
    for line in open('/proc/self/status'):
        if line.startswith('VmRSS'):
            return int(line.split()[1]) / 1024
items = json.load(open(sys.argv[3]))
base = rss()
if sys.argv[1] == 'lingua':
    from lingua import Language, LanguageDetectorBuilder
    det = LanguageDetectorBuilder.from_languages(Language.SPANISH, Language.ENGLISH).build()
    guess = lambda s: 'en' if det.detect_language_of(s) == Language.ENGLISH else 'es'
else:
    import py3langid
    py3langid.set_languages(['es', 'en'])
    guess = lambda s: py3langid.classify(s)[0]
guess('hola')
times, hits = [], 0
for item in items:
    t0 = time.perf_counter(); hits += guess(item['text']) == item['lang']; times.append((time.perf_counter() - t0) * 1000)
times.sort()
print(json.dumps({'accuracy': round(hits / len(items), 4), 'p50_ms': round(times[len(times) // 2], 4),
                  'added_rss_mb': round(rss() - base, 1)}))
"""

_OURS_PROBE = r"""
import json, sys, time
def rss():
    for line in open('/proc/self/status'):
        if line.startswith('VmRSS'):
            return int(line.split()[1]) / 1024
items = json.load(open(sys.argv[1]))
from bot.knowledge import load_knowledge
kb = load_knowledge()
base = rss()
from bot.nlu.language import LanguageGuesser
from inference.text import detect_language
guesser = LanguageGuesser(kb)
added = rss() - base
out = {}
for name, guess in (('function_words', detect_language), ('ours', guesser.guess)):
    times, hits = [], 0
    for item in items:
        t0 = time.perf_counter(); hits += guess(item['text']) == item['lang']; times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    out[name] = {'accuracy': round(hits / len(items), 4), 'p50_ms': round(times[len(times) // 2], 4)}
out['ours']['added_rss_mb'] = round(added, 1)
out['function_words']['added_rss_mb'] = 0.0
print(json.dumps(out))
"""


def compare_language_libraries(lib_dir: Path, data_dir: Path = DATA) -> dict:
    """Each candidate in its own process, so its memory is its own."""
    path = str(data_dir / "language.json")
    ours = json.loads(subprocess.run([sys.executable, "-c", _OURS_PROBE, path], cwd=REPO, capture_output=True,
                                     text=True, check=True).stdout.splitlines()[-1])
    out = {"function_words (inference.text.detect_language)": ours["function_words"],
           "function words + knowledge-base words + character n-grams (bot.nlu.language, chosen)": ours["ours"]}
    for lib in ("py3langid", "lingua"):
        run = subprocess.run([sys.executable, "-c", _LIB_PROBE, lib, str(lib_dir), path], capture_output=True, text=True)
        out[lib] = json.loads(run.stdout.splitlines()[-1]) if run.returncode == 0 else {"error": run.stderr[-300:]}
    return out


def dev_summary(models_dir: Path, data_dir: Path = DATA) -> dict:
    """The figures the manifest's intents entry keeps (dev top-1 per language)."""
    from bot.loader import chat_router

    router = chat_router(models_dir)
    dev = score_dev(router, _load("dev", data_dir) or [])
    return {"dev_n": dev["n"], "dev_top1": dev["top1"],
            "dev_top1_by_lang": {k: v["accuracy"] for k, v in dev["by_lang"].items()}}


def evaluate_chat(models_dir: Path, data_dir: Path = DATA, test: bool = False, lib_dir: Path | None = None,
                  holdout: bool = False) -> dict:
    from bot.loader import chat_router

    router = chat_router(models_dir)
    report: dict = {"measured_at": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
                    "command": "python -m training.evaluate_chat" + (" --test" if test else "")
                    + (" --holdout" if holdout else "")
                    + (f" --languages {lib_dir}" if lib_dir else "")}
    if (dev := _load("dev", data_dir)) is not None:
        report["dev"] = score_dev(router, dev)
    # (report key, file, scorer, scored in this run)
    sets = [
        ("red_flags_dev", "red_flags_dev", score_red_flags, True),
        ("red_flags_test", "red_flags_test", score_red_flags, test),
        ("false_alarms_ordinary", "ordinary", score_false_alarms, True),
        *(entry for pair in BLIND_PAIRS for entry in (
            (f"red_flags_{pair}", f"red_flags_{pair}", score_red_flags, holdout or pair != NEWEST_PAIR),
            (f"false_alarms_{pair}", f"ordinary_{pair}", score_false_alarms, holdout or pair != NEWEST_PAIR))),
        ("out_of_scope", "out_of_scope", score_out_of_scope, True),
        ("language", "language", score_language, True),
        ("follow_ups", "dialogues", score_dialogues, True),
    ]
    for key, name, score, wanted in sets:
        if wanted and (items := _load(name, data_dir)) is not None:
            report[key] = score(router, items)
    texts = [i["text"] for i in (dev or [])[:: max(1, len(dev or []) // 300)]] or ["que es un glioma"]
    report["latency"] = p50_ms(router, texts)
    if lib_dir is not None:
        report["language_id_comparison"] = compare_language_libraries(lib_dir, data_dir)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=REPO / "models")
    parser.add_argument("--test", action="store_true", help="also score red_flags_test.json (the final, scored run)")
    parser.add_argument("--holdout", action="store_true",
                        help=f"also score red_flags_{NEWEST_PAIR}.json and ordinary_{NEWEST_PAIR}.json (written blind; "
                             "scored once)")
    parser.add_argument("--languages", type=Path, help="folder with py3langid and lingua installed (pip --target)")
    parser.add_argument("--out", type=Path, default=CARD)
    args = parser.parse_args(argv)
    report = evaluate_chat(args.models, test=args.test, lib_dir=args.languages, holdout=args.holdout)
    if args.out.exists():  # keep the last scored test runs when re-measuring the rest
        previous = json.loads(args.out.read_text())
        for key in ("red_flags_test", f"red_flags_{NEWEST_PAIR}", f"false_alarms_{NEWEST_PAIR}", "language_id_comparison"):
            if key in previous and key not in report:
                report[key] = previous[key]
                origin = previous.get("carried_over", {}).get(key) or {
                    "measured_at": previous["measured_at"], "command": previous["command"]}
                report.setdefault("carried_over", {})[key] = origin
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    summary = {k: v for k, v in {
        "dev_top1": report.get("dev", {}).get("top1"),
        "dev_by_lang": {k: v["accuracy"] for k, v in report.get("dev", {}).get("by_lang", {}).items()},
        "red_flags_dev": report.get("red_flags_dev", {}).get("recall"),
        "red_flags_test": report.get("red_flags_test", {}).get("recall"),
        **{f"red_flags_{p}": report.get(f"red_flags_{p}", {}).get("recall") for p in BLIND_PAIRS},
        "false_alarms": report.get("false_alarms_ordinary", {}).get("rate"),
        **{f"false_alarms_{p}": report.get(f"false_alarms_{p}", {}).get("rate") for p in BLIND_PAIRS},
        "out_of_scope": report.get("out_of_scope", {}).get("fallback"),
        "language": report.get("language", {}).get("accuracy"),
        "follow_ups": report.get("follow_ups", {}).get("turns_resolved"),
        "p50_ms": report["latency"]["p50_ms"]}.items()}
    print(json.dumps(summary, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
