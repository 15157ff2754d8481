"""Load benchmark: the real `saveyourlife bot` process against the fake Bot API (not a test).

    .venv/bin/python -m bench.load_bench [--users 200] [--messages 5] [--photo-share 0.4]
                                         [--rate-limiter on|off] [--rate 0] [--bot-exe PATH] [--json]

What it does:

* starts :class:`tests.fake_telegram.FakeTelegram` on 127.0.0.1 in this process's event loop, and the real bot as
  a subprocess (`.venv/bin/saveyourlife bot`) pointed at it, with a throw-away SQLite log, the per-user image
  limit disabled (IMAGES_PER_MINUTE=100000) and TELEGRAM_RATE_LIMITER on/off;
* builds a seeded, deterministic plan: N users (one private chat each, 70 % Spanish, 30 % English), M messages
  each, exactly round(N*M*share) of them photos (real MRI JPEGs from
  ../shared/data/mri/kaggle4/Testing/*/, 5 per class; generated JPEGs when the folder is absent) and the rest
  questions from a list of 20 realistic ones;
* enqueues the updates. Default: a **burst** — every update is queued at once (user 1 msg 1, user 2 msg 1, ...,
  user 1 msg 2, ...), like N people who all type quickly at the same moment. `--rate R` instead streams them at
  R updates/s (sustained load, same order);
* matches each reply to its message. The bot handles updates concurrently (`concurrent_updates(256)`), so a
  user's quick text can overtake their earlier photo: replies are classified by content (a photo answer carries
  the `fb:` feedback buttons, or is a rejection text from messages.json; "error.generic" apologies are errors)
  and matched per chat, in send order, within their kind. Latency = enqueue (time.monotonic() after
  `send_raw`) → arrival of the bot's sendMessage at the fake (`SentCall.time`, same clock). A tumour/inconclusive
  result is followed by a sendPhoto heatmap: counted, timed separately, not part of the photo latency;
* reads the bot's RSS from /proc once it polls (everything loaded, no traffic yet); after the last reply, waits
  until the bot is idle, reads its RSS and CPU time again, stops it with SIGTERM, and counts the rows in the
  SQLite log against what the traffic must have written.

Everything is bounded: `--timeout` (default 300 s) for the traffic, 90 s for start-up, 30 s for shutdown;
the subprocess is always stopped in `finally`. Traffic only goes to 127.0.0.1.

Targets (from the issue): ≥ 500 texts/s and ≥ 50 photos/s sustained, 0 errors, 0 lost log rows. With
`--rate-limiter on` the bot deliberately caps *all* chat requests (sendChatAction included) at Telegram's
30/s, so the throughput targets only make sense with `--rate-limiter off`.

Exit code: 0 all targets met, 1 some target missed, 2 the bot could not be started / the harness failed.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import random
import shutil
import signal
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("SAVEYOURLIFE_DATA", REPO.parent / "shared" / "data"))
MRI_DIR = DATA_DIR / "mri" / "kaggle4" / "Testing"
# Shaped like a real token (digits:base64ish) so PTB and the fake accept it; it is never valid anywhere.
TOKEN = "123456:ABCdefGHIjklMNOpqrSTUvwxYZ0123456789_load"

TARGET_TEXTS_PER_S = 500.0
TARGET_PHOTOS_PER_S = 50.0
STARTUP_TIMEOUT_S = 90.0
SHUTDOWN_TIMEOUT_S = 30.0
IDLE_GIVE_UP_S = 30.0  # no bot activity at all for this long while replies are missing: stop waiting

QUESTIONS = {
    "es": [
        "Hola, ¿qué puedes hacer?",
        "¿Qué es un glioma?",
        "¿Qué síntomas tiene un tumor cerebral?",
        "¿El meningioma es benigno?",
        "¿Cómo te envío la imagen de mi resonancia?",
        "¿Qué significa el resultado que me has dado?",
        "¿Esto sustituye al diagnóstico de mi médico?",
        "¿Cómo se trata un tumor cerebral?",
        "Tengo mucho miedo, me han visto algo en la resonancia",
        "¿Qué datos guardas de mí?",
        "¿Qué es un tumor de hipófisis?",
        "¿Cuándo debo ir a urgencias por un dolor de cabeza?",
    ],
    "en": [
        "What is a meningioma?",
        "How accurate are your predictions?",
        "What are the symptoms of a pituitary tumor?",
        "How does the AI work?",
        "Is a glioma always cancer?",
        "What causes brain tumors?",
        "What is the prognosis for a glioma?",
        "Thanks a lot for the help!",
    ],
}
APOLOGY_MARKERS = ("algo ha fallado", "something went wrong")


# --------------------------------------------------------------------------- #
# The plan
# --------------------------------------------------------------------------- #


@dataclass
class Msg:
    chat_id: int
    seq: int  # position in the user's own sequence
    kind: str  # "text" | "photo"
    lang: str
    text: str | None = None
    image: int | None = None  # index into the image list
    enqueued: float | None = None
    replied: float | None = None
    outcome: str | None = None  # "answer" | "result" | "rejected"


@dataclass
class Plan:
    users: int
    per_user: int
    messages: list[Msg]  # in enqueue order
    by_chat: dict[int, list[Msg]]
    images: list[bytes]
    image_names: list[str]
    image_source: str

    def count(self, kind: str) -> int:
        return sum(1 for m in self.messages if m.kind == kind)


def load_images(n_per_class: int = 5, classes: tuple[str, ...] = ()) -> tuple[list[bytes], list[str], str]:
    files: list[Path] = []
    if MRI_DIR.is_dir():
        for folder in sorted(p for p in MRI_DIR.iterdir() if p.is_dir() and (not classes or p.name in classes)):
            found = sorted(folder.glob("*.jpg"))
            if found:
                step = max(1, len(found) // n_per_class)
                files += found[::step][:n_per_class]
    if files:
        return [f.read_bytes() for f in files], [f"{f.parent.name}/{f.name}" for f in files], str(MRI_DIR)
    return generated_images(4 * n_per_class), [f"generated_{i}.jpg" for i in range(4 * n_per_class)], "generated"


def generated_images(n: int) -> list[bytes]:
    """Brain-scan-like stand-ins (bright textured ellipse on black) when the real data is absent."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFilter

    out = []
    for i in range(n):
        rng = np.random.default_rng(1000 + i)
        side = 256 + 32 * (i % 4)
        img = Image.new("L", (side, side), 0)
        draw = ImageDraw.Draw(img)
        m = side // 8
        draw.ellipse((m, m + 8, side - m, side - m - 8), fill=int(rng.integers(90, 140)))
        blob = int(rng.integers(side // 3, side // 2))
        draw.ellipse((blob, blob, blob + side // 6, blob + side // 5), fill=int(rng.integers(180, 240)))
        noise = Image.fromarray((rng.random((side, side)) * 40).astype("uint8"))
        img = Image.blend(img, noise, 0.2).filter(ImageFilter.GaussianBlur(1.5))
        buf = io.BytesIO()
        img.convert("RGB").save(buf, format="JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def make_plan(users: int, per_user: int, photo_share: float, seed: int, classes: tuple[str, ...] = ()) -> Plan:
    rng = random.Random(seed)
    images, names, source = load_images(classes=classes)
    total = users * per_user
    n_photos = round(total * max(0.0, min(1.0, photo_share)))
    kinds = ["photo"] * n_photos + ["text"] * (total - n_photos)
    rng.shuffle(kinds)
    by_chat: dict[int, list[Msg]] = {}
    langs = {}
    for u in range(users):
        chat_id = 5_000_000 + u
        langs[chat_id] = "es" if rng.random() < 0.7 else "en"
        by_chat[chat_id] = []
    k = 0
    for seq in range(per_user):  # round-robin: every user's 1st message, then every user's 2nd, ...
        for chat_id in by_chat:
            kind, lang = kinds[k], langs[chat_id]
            k += 1
            if kind == "text":
                msg = Msg(chat_id, seq, kind, lang, text=rng.choice(QUESTIONS[lang]))
            else:
                msg = Msg(chat_id, seq, kind, lang, image=rng.randrange(len(images)))
            by_chat[chat_id].append(msg)
    order = [m for seq in range(per_user) for chat_id in by_chat for m in by_chat[chat_id] if m.seq == seq]
    return Plan(users, per_user, order, by_chat, images, names, source)


def user_obj(chat_id: int, lang: str) -> dict:
    return {"id": chat_id, "is_bot": False, "first_name": f"User{chat_id}", "username": f"user{chat_id}",
            "language_code": lang}


def build_update(msg: Msg, photo_sizes: list[list[dict]]) -> dict:
    """A private-chat Message update shaped like Telegram's (user message ids far from the bot's own)."""
    content: dict = {"text": msg.text} if msg.kind == "text" else {"photo": photo_sizes[msg.image]}
    return {"message": {"message_id": 1_000_000 + msg.seq, "from": user_obj(msg.chat_id, msg.lang),
                        "chat": {"id": msg.chat_id, "type": "private", "first_name": f"User{msg.chat_id}",
                                 "username": f"user{msg.chat_id}"},
                        "date": int(time.time()), **content}}


def register_photos(fake, images: list[bytes]) -> list[list[dict]]:
    """Store each JPEG once in the fake (getFile + download serve it) and return its PhotoSize list.

    One size per photo (the bot only reads the largest) so enqueuing 1000 updates costs no image work here.
    """
    from PIL import Image

    out = []
    for data in images:
        width, height = Image.open(io.BytesIO(data)).size
        f = fake.add_file(data, mime_type="image/jpeg")
        out.append([{"file_id": f["file_id"], "file_unique_id": f["file_unique_id"], "file_size": f["file_size"],
                     "width": width, "height": height}])
    return out


# --------------------------------------------------------------------------- #
# /proc helpers
# --------------------------------------------------------------------------- #

CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu_s(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime (all threads)
    except (OSError, IndexError, ValueError):
        return None


def proc_status(pid: int) -> dict[str, str]:
    try:
        with open(f"/proc/{pid}/status") as fh:
            return dict(line.rstrip("\n").split(":\t", 1) for line in fh if ":\t" in line)
    except OSError:
        return {}


def kb_to_mb(value: str | None) -> float | None:
    return round(int(value.split()[0]) / 1024, 1) if value else None


def system_busy_s() -> float:
    """Busy CPU seconds of the whole machine so far (all cores), from /proc/stat."""
    with open("/proc/stat") as fh:
        parts = [int(x) for x in fh.readline().split()[1:]]
    idle = parts[3] + (parts[4] if len(parts) > 4 else 0)
    return (sum(parts[:8]) - idle) / CLK_TCK


def self_cpu_s() -> float:
    t = os.times()
    return t.user + t.system


def other_cpu_hogs(exclude: set[int]) -> list[str]:
    """Processes (other than ours) that used > 50 % CPU over the last 1 s — e.g. a model training."""
    def snapshot() -> dict[int, tuple[float, str]]:
        out = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit() and int(entry) not in exclude:
                cpu = proc_cpu_s(int(entry))
                if cpu is not None:
                    try:
                        cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                    except OSError:
                        cmd = "?"
                    out[int(entry)] = (cpu, cmd.strip()[:80])
        return out

    first = snapshot()
    time.sleep(1.0)
    second = snapshot()
    return [f"pid {pid} {100 * (cpu - first[pid][0]):.0f}% {cmd}" for pid, (cpu, cmd) in second.items()
            if pid in first and cpu - first[pid][0] > 0.5]


# --------------------------------------------------------------------------- #
# Classifying the bot's calls
# --------------------------------------------------------------------------- #


def rejection_prefixes() -> list[str]:
    """Static beginnings of every text a photo can be answered with instead of a result."""
    catalogue = json.loads((REPO / "bot" / "messages.json").read_text(encoding="utf-8"))
    out = []
    for key, value in catalogue.items():
        if key.startswith("reject.") or key == "rate.limited":
            for text in value.values():
                head = text.split("{", 1)[0].strip()
                if len(head) >= 8:
                    out.append(head)
    return out


def classify_reply(params: dict, rejections: list[str]) -> str:
    """'apology' | 'result' | 'rejected' | 'answer' for one sendMessage."""
    text = str(params.get("text") or "")
    low = text.lower()
    if any(marker in low for marker in APOLOGY_MARKERS):
        return "apology"
    markup = params.get("reply_markup")
    if isinstance(markup, str):
        try:
            markup = json.loads(markup)
        except ValueError:
            markup = None
    if isinstance(markup, dict):
        for row in markup.get("inline_keyboard") or []:
            for button in row:
                if str(button.get("callback_data", "")).startswith("fb:"):
                    return "result"
    if any(text.startswith(prefix) for prefix in rejections):
        return "rejected"
    return "answer"


def chat_of(call) -> int | None:
    try:
        return int(call.params.get("chat_id"))
    except (TypeError, ValueError):
        return None


# --------------------------------------------------------------------------- #
# Running
# --------------------------------------------------------------------------- #


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def latency_stats(values_s: list[float]) -> dict:
    ms = [v * 1000 for v in values_s]
    return {key: (round(percentile(ms, q), 1) if ms else None)
            for key, q in (("p50_ms", 50), ("p95_ms", 95), ("p99_ms", 99), ("max_ms", 100))}


def bot_executable() -> Path:
    for candidate in (REPO / ".venv" / "bin" / "saveyourlife", Path(sys.executable).parent / "saveyourlife"):
        if candidate.exists():
            return candidate
    found = shutil.which("saveyourlife")
    if not found:
        raise SystemExit("saveyourlife console script not found; run `.venv/bin/pip install -e .` first")
    return Path(found)


async def stop_process(proc: asyncio.subprocess.Process) -> str:
    if proc.returncode is not None:
        return f"already exited ({proc.returncode})"
    proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), SHUTDOWN_TIMEOUT_S)
        return f"SIGTERM, exit {proc.returncode}"
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return f"did not stop within {SHUTDOWN_TIMEOUT_S:.0f}s of SIGTERM: killed"


def py_spy() -> str | None:
    for candidate in (os.environ.get("PY_SPY"), shutil.which("py-spy"), str(Path(sys.executable).parent / "py-spy")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


async def start_profiler(out: Path, pid: int) -> asyncio.subprocess.Process | None:
    """`py-spy record` on the bot for the load phase: .svg flame graph, .json speedscope, else collapsed stacks."""
    exe = py_spy()
    if exe is None:
        print("--profile: py-spy not found (pip install py-spy, or set PY_SPY=/path/to/py-spy)", file=sys.stderr)
        return None
    fmt = {".svg": "flamegraph", ".json": "speedscope"}.get(out.suffix, "raw")
    proc = await asyncio.create_subprocess_exec(exe, "record", "--pid", str(pid), "--rate", "200", "--threads",
                                                "--format", fmt, "--output", str(out),
                                                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    await asyncio.sleep(1.0)  # attach before the traffic starts
    return proc


async def stop_profiler(proc: asyncio.subprocess.Process, out: Path) -> str:
    if proc.returncode is None:
        proc.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
    try:
        _, err = await asyncio.wait_for(proc.communicate(), 60)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return "py-spy did not stop; killed"
    return str(out) if out.exists() else f"py-spy failed: {err.decode(errors='replace')[-300:]}"


async def run(args: argparse.Namespace) -> dict:
    sys.path.insert(0, str(REPO))
    from tests.fake_telegram import FakeTelegram

    plan = make_plan(args.users, args.messages, args.photo_share, args.seed, args.image_classes)
    rejections = rejection_prefixes()
    tmp = Path(tempfile.mkdtemp(prefix="syl-load-"))
    db_path, log_path = tmp / "load.db", tmp / "bot.log"
    report: dict = {
        "config": {"users": args.users, "messages_per_user": args.messages, "photo_share": args.photo_share,
                   "rate_limiter": args.rate_limiter, "mode": f"stream {args.rate:g}/s" if args.rate > 0 else "burst",
                   "seed": args.seed, "timeout_s": args.timeout, "texts": plan.count("text"),
                   "photos": plan.count("photo"), "images": plan.image_source,
                   "image_classes": list(args.image_classes) or "all", "distinct_images": len(plan.images),
                   "bot_env": dict(args.bot_env), "cpus": os.cpu_count()},
    }
    fake = FakeTelegram()
    proc: asyncio.subprocess.Process | None = None
    log_fh = None
    try:
        await fake.start()
        env = {**os.environ, "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": fake.api_url,
               "TELEGRAM_FILE_URL": fake.file_url, "DATABASE_URL": f"sqlite+aiosqlite:///{db_path}",
               "TELEGRAM_RATE_LIMITER": args.rate_limiter, "IMAGES_PER_MINUTE": "100000", "LOG_LEVEL": "WARNING",
               **dict(args.bot_env)}
        for key in ("WEBHOOK_URL", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
            env.pop(key, None)  # polling, and nothing may leave 127.0.0.1
        env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
        log_fh = log_path.open("wb")
        started = time.monotonic()
        exe = args.bot_exe or bot_executable()
        report["config"]["bot_exe"] = str(exe)
        # From the throw-away folder, not the repository: an installed bot must find its models and texts itself.
        proc = await asyncio.create_subprocess_exec(str(exe), "bot", cwd=tmp, env=env,
                                                    stdout=log_fh, stderr=asyncio.subprocess.STDOUT)
        poll = asyncio.ensure_future(fake.wait_for("getUpdates", timeout=STARTUP_TIMEOUT_S))
        died = asyncio.ensure_future(proc.wait())
        await asyncio.wait({poll, died}, return_when=asyncio.FIRST_COMPLETED)
        if not poll.done() or poll.exception() is not None:
            poll.cancel()
            died.cancel()
            tail = log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"the bot did not start polling (exit code {proc.returncode}). Log tail:\n{tail}")
        died.cancel()
        report["startup_s"] = round(time.monotonic() - started, 2)
        pid = proc.pid
        report["cpu_hogs_before"] = await asyncio.to_thread(other_cpu_hogs, {pid, os.getpid()})

        photo_sizes = register_photos(fake, plan.images)
        updates = [build_update(m, photo_sizes) for m in plan.messages]
        await asyncio.sleep(0.5)  # let start-up work (set_my_commands, first poll) settle
        started_status = proc_status(pid)  # memory with everything loaded, before any traffic
        report["startup_rss_mb"] = kb_to_mb(started_status.get("VmRSS"))
        report["startup_threads"] = int(started_status["Threads"]) if "Threads" in started_status else None
        bot_cpu0, self_cpu0, sys_busy0 = proc_cpu_s(pid) or 0.0, self_cpu_s(), system_busy_s()
        sent_mark = len(fake.sent)

        profiler = await start_profiler(args.profile, pid) if args.profile else None
        try:
            await drive(fake, plan, updates, rejections, proc, args)
        finally:
            if profiler is not None:
                report["profile"] = await stop_profiler(profiler, args.profile)

        t_end = time.monotonic()
        bot_cpu1, self_cpu1, sys_busy1 = proc_cpu_s(pid) or 0.0, self_cpu_s(), system_busy_s()
        status = proc_status(pid)
        first = min((m.enqueued for m in plan.messages if m.enqueued is not None), default=t_end)
        window = max(t_end - first, 1e-9)
        report["bot_process"] = {
            "pid": pid, "rss_mb": kb_to_mb(status.get("VmRSS")), "peak_rss_mb": kb_to_mb(status.get("VmHWM")),
            "threads": int(status["Threads"]) if "Threads" in status else None,
            "cpu_total_s": round(bot_cpu1, 2), "cpu_during_load_s": round(bot_cpu1 - bot_cpu0, 2),
            "avg_cores_during_load": round((bot_cpu1 - bot_cpu0) / window, 2),
        }
        bench_cpu = self_cpu1 - self_cpu0
        other = max(0.0, (sys_busy1 - sys_busy0) - (bot_cpu1 - bot_cpu0) - bench_cpu)
        report["machine"] = {"bench_process_cpu_s": round(bench_cpu, 2), "other_processes_cpu_s": round(other, 2),
                             "other_avg_cores": round(other / window, 2), "window_s": round(window, 2),
                             "loadavg": Path("/proc/loadavg").read_text().split()[:3]}
        report["shutdown"] = await stop_process(proc)
        analyse(report, fake, plan, rejections, sent_mark)
        count_rows(report, db_path, plan)
        log_text = log_path.read_text(errors="replace")
        errors = [line for line in log_text.splitlines() if " ERROR " in line or " CRITICAL " in line]
        report["bot_log"] = {"error_lines": len(errors), "first_errors": errors[:5],
                             "path": str(log_path) if args.keep else None}
        return report
    finally:
        if proc is not None and proc.returncode is None:
            await stop_process(proc)
        await fake.stop()
        if log_fh is not None:
            log_fh.close()
        if args.keep:
            print(f"kept {tmp} (load.db, bot.log)", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


async def drive(fake, plan: Plan, updates: list[dict], rejections: list[str],
                proc: asyncio.subprocess.Process, args: argparse.Namespace) -> None:
    """Enqueue the traffic, then wait (bounded) until every message has its reply and the bot is idle."""
    chats = plan.by_chat
    want = {c: {"text": sum(m.kind == "text" for m in ms), "photo": sum(m.kind == "photo" for m in ms)}
            for c, ms in chats.items()}
    got = {c: {"text": 0, "photo": 0, "apology": 0} for c in chats}
    outstanding = sum(len(ms) for ms in chats.values())
    deadline = time.monotonic() + args.timeout
    scanned = len(fake.sent)
    last_activity = time.monotonic()
    cpu_probe = (time.monotonic(), proc_cpu_s(proc.pid) or 0.0)

    def missing(c: int) -> int:
        g, w = got[c], want[c]
        return max(0, max(0, w["text"] - g["text"]) + max(0, w["photo"] - g["photo"]) - g["apology"])

    def absorb() -> None:
        nonlocal scanned, outstanding, last_activity
        end = len(fake.sent)
        for call in fake.sent[scanned:end]:
            if call.method == "getUpdates":
                continue
            last_activity = time.monotonic()
            c = chat_of(call)
            if call.method != "sendMessage" or c not in got:
                continue
            before = missing(c)
            kind = classify_reply(call.params, rejections)
            got[c]["apology" if kind == "apology" else "photo" if kind in ("result", "rejected") else "text"] += 1
            outstanding -= before - missing(c)
        scanned = end

    async def bot_busy() -> bool:
        nonlocal cpu_probe
        now, cpu = time.monotonic(), proc_cpu_s(proc.pid) or 0.0
        busy = (cpu - cpu_probe[1]) > 0.1 * max(now - cpu_probe[0], 1e-3)
        cpu_probe = (now, cpu)
        return busy

    # Enqueue: a burst (all at once), or a stream at --rate updates/s.
    t0 = time.monotonic()
    for i, (msg, update) in enumerate(zip(plan.messages, updates)):
        if args.rate > 0:
            due = t0 + i / args.rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
                absorb()
        fake.send_raw(update)
        msg.enqueued = time.monotonic()

    # Wait for every reply.
    while outstanding > 0 and time.monotonic() < deadline and proc.returncode is None:
        await asyncio.sleep(0.05)
        absorb()
        if time.monotonic() - last_activity > 1.0 and await bot_busy():
            last_activity = time.monotonic()
        if time.monotonic() - last_activity > IDLE_GIVE_UP_S:
            print(f"the bot has been idle for {IDLE_GIVE_UP_S:.0f}s with {outstanding} replies missing; giving up",
                  file=sys.stderr)
            break
    if outstanding > 0 and time.monotonic() >= deadline:
        print(f"timeout ({args.timeout:.0f}s) with {outstanding} replies missing", file=sys.stderr)

    # Then let trailing work (heatmaps after the result text) finish: no call in flight, no new call for 1 s,
    # and the bot's CPU quiet — still within the global deadline.
    await bot_busy()
    quiet_since = time.monotonic()
    while time.monotonic() < deadline and proc.returncode is None:
        await asyncio.sleep(0.25)
        before = scanned
        absorb()
        in_flight = any(c.ok is None and c.method != "getUpdates" for c in fake.sent[-200:])
        if scanned != before or in_flight or await bot_busy():
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= 1.0:
            break


def analyse(report: dict, fake, plan: Plan, rejections: list[str], sent_mark: int) -> None:
    chats = plan.by_chat
    pending = {c: {"text": [m for m in ms if m.kind == "text"], "photo": [m for m in ms if m.kind == "photo"]}
               for c, ms in chats.items()}
    apologies = {c: 0 for c in chats}
    heatmaps: list[float] = []
    last_heatmap = None
    unexpected = api_errors = 0
    api_error_samples: list[str] = []
    reply_times: list[float] = []
    for call in fake.sent[sent_mark:]:
        if call.method == "getUpdates":
            if call.ok is False and call.status != 409:
                api_errors += 1
            continue
        if call.ok is False:
            api_errors += 1
            if len(api_error_samples) < 5:
                api_error_samples.append(call.describe())
            continue
        c = chat_of(call)
        if c not in chats or call.ok is not True:
            continue
        if call.method == "sendPhoto":
            reply_times.append(call.time)
            last_heatmap = call.time
            # heatmap latency: from the enqueue of the chat's photo answered most recently before it
            answered = [m for m in chats[c] if m.kind == "photo" and m.replied is not None and m.replied <= call.time]
            if answered:
                heatmaps.append(call.time - max(answered, key=lambda m: m.replied).enqueued)
            continue
        if call.method != "sendMessage":
            continue
        reply_times.append(call.time)
        kind = classify_reply(call.params, rejections)
        if kind == "apology":
            apologies[c] += 1
            continue
        queue = pending[c]["photo" if kind in ("result", "rejected") else "text"]
        if not queue:
            unexpected += 1
            continue
        msg = queue.pop(0)
        msg.replied, msg.outcome = call.time, kind
    bad_downloads = sum(1 for d in fake.downloads if d.get("status") not in (200, None))
    api_errors += bad_downloads

    no_reply = sum(len(q["text"]) + len(q["photo"]) for q in pending.values())
    failed_msgs = sum(max(len(pending[c]["text"]) + len(pending[c]["photo"]), apologies[c]) for c in chats)
    errors = failed_msgs + api_errors + unexpected
    first = min(m.enqueued for m in plan.messages)

    def kind_block(kind: str) -> dict:
        msgs = [m for m in plan.messages if m.kind == kind]
        done = [m for m in msgs if m.replied is not None]
        last = max((m.replied for m in done), default=None)
        span = (last - first) if last is not None else None
        block = {"sent": len(msgs), "answered": len(done), **latency_stats([m.replied - m.enqueued for m in done]),
                 "span_s": round(span, 3) if span else None,
                 "per_s": round(len(done) / span, 1) if span else None}
        if kind == "photo":
            block["results"] = sum(m.outcome == "result" for m in done)
            block["rejected"] = sum(m.outcome == "rejected" for m in done)
        return block

    texts, photos = kind_block("text"), kind_block("photo")
    last_reply = max(reply_times, default=None)
    report["texts"] = texts
    report["photos"] = photos
    report["heatmaps"] = {"sent": len(heatmaps), **latency_stats(heatmaps),
                          "last_after_first_enqueue_s": round(last_heatmap - first, 3) if last_heatmap else None}
    report["overall"] = {"replies": len(reply_times),
                         "span_s": round(last_reply - first, 3) if last_reply else None,
                         "replies_per_s": round(len(reply_times) / (last_reply - first), 1) if last_reply else None,
                         "messages_per_s": round((texts["answered"] + photos["answered"]) / (last_reply - first), 1)
                         if last_reply else None}
    report["errors"] = {"total": errors, "no_reply": no_reply, "apologies": sum(apologies.values()),
                        "failed_messages": failed_msgs, "api_errors": api_errors, "bad_downloads": bad_downloads,
                        "unexpected_replies": unexpected, "api_error_samples": api_error_samples}


def count_rows(report: dict, db_path: Path, plan: Plan) -> None:
    photos = report["photos"]
    expected_msgs = 2 * len(plan.messages)
    expected_preds = photos["sent"] - photos.get("rejected", 0)
    rows: dict = {"expected_messages": expected_msgs, "expected_predictions": expected_preds}
    try:
        with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as conn:
            rows["messages"] = conn.execute("SELECT count(*) FROM messages").fetchone()[0]
            rows["predictions"] = conn.execute("SELECT count(*) FROM predictions").fetchone()[0]
            rows["users"] = conn.execute("SELECT count(*) FROM users").fetchone()[0]
            rows["by_kind"] = {f"{d}:{k}": n for d, k, n in conn.execute(
                "SELECT direction, kind, count(*) FROM messages GROUP BY direction, kind ORDER BY 1, 2")}
    except sqlite3.Error as exc:
        rows.update(messages=0, predictions=0, users=0, by_kind={}, error=str(exc))
    rows["lost"] = max(0, expected_msgs - rows["messages"]) + max(0, expected_preds - rows["predictions"])
    rows["extra"] = max(0, rows["messages"] - expected_msgs) + max(0, rows["predictions"] - expected_preds)
    report["rows"] = rows


# --------------------------------------------------------------------------- #
# Output
# --------------------------------------------------------------------------- #


def judge(report: dict) -> dict:
    t, p = report["texts"], report["photos"]
    return {
        "texts_per_s": {"target": f">= {TARGET_TEXTS_PER_S:g}", "value": t["per_s"],
                        "pass": (t["per_s"] or 0) >= TARGET_TEXTS_PER_S if t["sent"] else True},
        "photos_per_s": {"target": f">= {TARGET_PHOTOS_PER_S:g}", "value": p["per_s"],
                         "pass": (p["per_s"] or 0) >= TARGET_PHOTOS_PER_S if p["sent"] else True},
        "errors": {"target": "0", "value": report["errors"]["total"], "pass": report["errors"]["total"] == 0},
        "lost_rows": {"target": "0", "value": report["rows"]["lost"],
                      "pass": report["rows"]["lost"] == 0 and report["rows"]["extra"] == 0},
    }


def fmt(value, digits: int = 1) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def table(report: dict) -> str:
    cfg, t, p, h, o = report["config"], report["texts"], report["photos"], report["heatmaps"], report["overall"]
    e, r, b, m, targets = report["errors"], report["rows"], report["bot_process"], report["machine"], report["targets"]
    mark = {True: "PASS", False: "FAIL"}
    lines = [
        f"SaveYourLife load benchmark: {cfg['users']} users x {cfg['messages_per_user']} messages "
        f"({cfg['texts']} texts, {cfg['photos']} photos from {cfg['images']}"
        + (f" [{','.join(cfg['image_classes'])}]" if cfg["image_classes"] != "all" else "") + f"), {cfg['mode']}, "
        f"rate limiter {cfg['rate_limiter']}" + (f", bot env {cfg['bot_env']}" if cfg["bot_env"] else ""),
        f"bot {cfg['bot_exe']}: start-up {report['startup_s']} s; {cfg['cpus']} CPUs; load window {m['window_s']} s",
        "",
        f"{'':14}{'answered':>12}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}{'max ms':>10}{'per s':>9}"
        f"{'target':>9}  ",
        f"{'texts':14}{t['answered']:>6}/{t['sent']:<5}{fmt(t['p50_ms']):>10}{fmt(t['p95_ms']):>10}"
        f"{fmt(t['p99_ms']):>10}{fmt(t['max_ms']):>10}{fmt(t['per_s']):>9}"
        f"{'>=' + fmt(TARGET_TEXTS_PER_S, 0):>9}  {mark[targets['texts_per_s']['pass']]}",
        f"{'photos':14}{p['answered']:>6}/{p['sent']:<5}{fmt(p['p50_ms']):>10}{fmt(p['p95_ms']):>10}"
        f"{fmt(p['p99_ms']):>10}{fmt(p['max_ms']):>10}{fmt(p['per_s']):>9}"
        f"{'>=' + fmt(TARGET_PHOTOS_PER_S, 0):>9}  {mark[targets['photos_per_s']['pass']]}",
        f"{'heatmaps':14}{h['sent']:>12}{fmt(h['p50_ms']):>10}{fmt(h['p95_ms']):>10}{fmt(h['p99_ms']):>10}"
        f"{fmt(h['max_ms']):>10}",
        f"{'all replies':14}{o['replies']:>12}{'':40}{fmt(o['replies_per_s']):>9}"
        f"   (messages answered/s {fmt(o['messages_per_s'])}; last reply {fmt(o['span_s'], 2)} s after first enqueue)",
        f"photo outcomes: {p.get('results', 0)} results, {p.get('rejected', 0)} rejections; "
        f"last heatmap {fmt(h['last_after_first_enqueue_s'], 2)} s after first enqueue",
        "",
        f"errors {e['total']:>5}   (no reply {e['no_reply']}, apologies {e['apologies']}, API errors "
        f"{e['api_errors']} incl. {e['bad_downloads']} bad downloads, unexpected replies {e['unexpected_replies']})"
        f"{'target 0':>12}  {mark[targets['errors']['pass']]}",
    ]
    for sample in e["api_error_samples"]:
        lines.append(f"    {sample}")
    lines += [
        f"log rows: messages {r['messages']}/{r['expected_messages']}, predictions {r['predictions']}/"
        f"{r['expected_predictions']}, users {r['users']}/{cfg['users']} -> lost {r['lost']}, extra {r['extra']}"
        f"{'target 0':>12}  {mark[targets['lost_rows']['pass']]}",
        f"    by kind: {r['by_kind']}" + (f"  ERROR {r['error']}" if r.get("error") else ""),
        "",
        f"bot process: RSS after start {fmt(report['startup_rss_mb'])} MB ({report['startup_threads']} threads), "
        f"after the load {fmt(b['rss_mb'])} MB (peak {fmt(b['peak_rss_mb'])} MB), {b['threads']} threads, CPU "
        f"{b['cpu_total_s']} s total, {b['cpu_during_load_s']} s during the load = {b['avg_cores_during_load']} "
        f"cores on average; stopped: {report['shutdown']}",
        f"this process (fake Telegram + driver) CPU {m['bench_process_cpu_s']} s; other processes "
        f"{m['other_processes_cpu_s']} s = {m['other_avg_cores']} cores; loadavg {' '.join(m['loadavg'])}",
    ]
    if report.get("profile"):
        lines.append(f"profile: {report['profile']}")
    if report["bot_log"]["error_lines"]:
        lines.append(f"bot log: {report['bot_log']['error_lines']} ERROR lines, e.g.")
        lines += [f"    {line[:200]}" for line in report["bot_log"]["first_errors"]]
    if report.get("cpu_hogs_before") or m["other_avg_cores"] > 0.3:
        hogs = "; ".join(report.get("cpu_hogs_before") or []) or "none busy at the start"
        lines.append(f"WARNING: other processes used {m['other_avg_cores']} cores on average during the load "
                     f"({hogs}); these numbers are not representative" + (" (py-spy counts here)" if report.get("profile") else ""))
    if cfg["rate_limiter"] == "on":
        lines.append("note: with the rate limiter on, every chat request (sendChatAction, sendMessage, sendPhoto) "
                     "shares Telegram's 30 requests/s, so the throughput targets cannot be met by design.")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=200, help="simultaneous users (one private chat each)")
    parser.add_argument("--messages", type=int, default=5, help="messages per user")
    parser.add_argument("--photo-share", type=float, default=0.4, help="fraction of messages that are photos")
    parser.add_argument("--rate-limiter", choices=("on", "off"), default="off",
                        help="TELEGRAM_RATE_LIMITER for the bot (on = Telegram's real 30 msg/s cap)")
    parser.add_argument("--rate", type=float, default=0.0,
                        help="0 (default) = enqueue everything at once (burst); R > 0 = stream R updates/s")
    parser.add_argument("--timeout", type=float, default=300.0, help="global bound for the traffic phase (s)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--image-classes", default="", metavar="A,B",
                        help="only these Kaggle classes (e.g. notumor: few heatmaps); default all four")
    parser.add_argument("--bot-env", action="append", default=[], metavar="KEY=VALUE",
                        help="extra environment for the bot, e.g. INFERENCE_WORKERS=3 (repeatable)")
    parser.add_argument("--bot-exe", type=Path, metavar="PATH",
                        help="the saveyourlife script to run (default .venv's), e.g. a runtime-only install's")
    parser.add_argument("--profile", type=Path, metavar="OUT",
                        help="py-spy record the bot during the load (.svg flame graph, .json speedscope, else raw)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (load.db, bot.log)")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout (table on stderr)")
    args = parser.parse_args(argv)
    if args.users < 1 or args.messages < 1 or not 0 <= args.photo_share <= 1 or args.timeout <= 0:
        parser.error("need --users >= 1, --messages >= 1, 0 <= --photo-share <= 1, --timeout > 0")
    pairs = []
    for item in args.bot_env:
        key, sep, value = item.partition("=")
        if not sep or not key:
            parser.error(f"--bot-env wants KEY=VALUE, got {item!r}")
        pairs.append((key, value))
    args.bot_env = pairs
    args.image_classes = tuple(c for c in args.image_classes.split(",") if c)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        report = asyncio.run(run(args))
    except RuntimeError as exc:
        print(f"load benchmark failed: {exc}", file=sys.stderr)
        return 2
    report["targets"] = judge(report)
    report["all_targets_met"] = all(v["pass"] for v in report["targets"].values())
    text = table(report)
    if args.json:
        print(text, file=sys.stderr)
        print(json.dumps(report, ensure_ascii=False))
    else:
        print(text)
    return 0 if report["all_targets_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
