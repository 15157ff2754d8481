"""Scaling benchmark for `saveyourlife serve`: 1 worker, then 2, driven by signed webhook POSTs (not a test).

    .venv/bin/python -m bench.scale_bench [--updates 120] [--photo-share 0.3] [--dup-share 0.1]
                                          [--workers 1,2] [--concurrency 16] [--db sqlite|postgres] [--json]

For each worker count it:

* starts a FakeTelegram on 127.0.0.1 in this process (the bot's TELEGRAM_API_URL / TELEGRAM_FILE_URL) and
  `saveyourlife serve --workers W` on a free 127.0.0.1 port, with a throw-away database (SQLite file, or a
  throw-away PostgreSQL cluster with `--db postgres`), TELEGRAM_RATE_LIMITER off (we measure the bot, not
  Telegram's 30 msg/s cap) and the per-user image limit out of the way;
* builds the traffic: `--updates` unique updates, one per user (so "replies per update" is "replies per
  chat"), `--photo-share` of them photos (real MRI JPEGs from ../shared/data/mri/kaggle4/Testing when
  present, generated JPEGs otherwise) and the rest questions; then `--dup-share` of them are delivered a
  second time with the same update_id, a few positions later (Telegram's re-delivery, possibly landing on
  the other worker while the first copy is still being handled);
* POSTs every delivery to /telegram with the X-Telegram-Bot-Api-Secret-Token header from `--concurrency`
  senders as fast as the server acknowledges them (a burst), and waits for the replies at the fake;
* reports throughput (unique updates answered per second, first POST to last reply), p50/p95 latency (first
  POST of an update -> the bot's sendMessage arriving at the fake; one clock), split by text/photo, the
  webhook acknowledgement p95, and duplicate safety: every unique update must get exactly one reply.

Bounded everywhere: at most 2000 updates, `--timeout` for the traffic, 90 s to start, 30 s to stop; the server
is always stopped. Traffic goes to 127.0.0.1 only. The CPU load of other processes (e.g. a training job) is
measured and printed, since it skews every number.

Exit code: 0 if every run was duplicate-safe and complete, 1 otherwise, 2 if the harness failed.
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
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DATA_DIR = Path(os.environ.get("SAVEYOURLIFE_DATA", REPO.parent / "shared" / "data"))
MRI_DIR = DATA_DIR / "mri" / "kaggle4" / "Testing"
TOKEN = "123456:ABCdefGHIjklMNOpqrSTUvwxYZ0123456789_scale"
SECRET = "scale-bench-secret_0123456789"
HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_UPDATES = 2000
STARTUP_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0
QUESTIONS = ["¿Qué es un glioma?", "¿Qué síntomas tiene un tumor cerebral?", "¿El meningioma es benigno?",
             "¿Cómo te envío la imagen?", "what is a pituitary tumour?", "is a meningioma cancer?",
             "how do I send my scan?", "¿Qué datos guardas de mí?"]


@dataclass
class Delivery:
    update_id: int
    chat: int
    kind: str  # "text" | "photo"
    body: bytes
    duplicate: bool = False


def load_images(per_class: int = 4) -> tuple[list[bytes], str]:
    files = []
    if MRI_DIR.is_dir():
        for folder in sorted(p for p in MRI_DIR.iterdir() if p.is_dir()):
            files += sorted(folder.glob("*.jpg"))[:per_class]
    if files:
        return [f.read_bytes() for f in files], f"{len(files)} real MRI JPEGs from {MRI_DIR}"
    import numpy as np
    from PIL import Image

    out = []
    for i in range(per_class * 4):
        rng = np.random.default_rng(i)
        yy, xx = np.mgrid[:256, :256]
        inside = ((yy - 128) / 100) ** 2 + ((xx - 128) / 85) ** 2 < 1
        arr = np.where(inside, 90 + 60 * rng.random((256, 256)), 0).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(arr, "L").save(buf, "JPEG", quality=90)
        out.append(buf.getvalue())
    return out, f"{len(out)} generated brain-like JPEGs (no {MRI_DIR})"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def cpu_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine."""
    fields = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def tree_cpu_s(pid: int) -> float:
    """CPU seconds of a process and all its descendants (live ones)."""
    tick = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    times: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = open(f"/proc/{entry}/stat").read()
        except OSError:
            continue
        rest = raw.rsplit(")", 1)[1].split()
        children.setdefault(int(rest[1]), []).append(int(entry))
        times[int(entry)] = (int(rest[11]) + int(rest[12])) / tick
    total, stack = 0.0, [pid]
    while stack:
        p = stack.pop()
        total += times.get(p, 0.0)
        stack += children.get(p, [])
    return total


def build_traffic(fake, n: int, photo_share: float, dup_share: float, images: list[bytes], seed: int,
                  chat_base: int) -> list[Delivery]:
    rng = random.Random(seed)
    photos = set(rng.sample(range(n), round(n * photo_share)))
    uniques: list[Delivery] = []
    for i in range(n):
        chat = chat_base + i
        if i in photos:
            update_id = fake.send_photo(chat, images[i % len(images)])
            kind = "photo"
        else:
            update_id = fake.send_text(chat, QUESTIONS[i % len(QUESTIONS)], language_code="es")
            kind = "text"
        update = next(u for u in fake._updates if u["update_id"] == update_id)
        fake._updates.remove(update)  # we deliver it ourselves, the fake must not
        uniques.append(Delivery(update_id, chat, kind, json.dumps(update).encode()))
    order = list(uniques)
    for original in rng.sample(uniques, round(n * dup_share)):
        at = order.index(original) + rng.randint(1, 12)
        order.insert(min(at, len(order)), Delivery(original.update_id, original.chat, original.kind, original.body, True))
    return order


async def start_server(fake, workers: int, database_url: str, tmp: Path) -> tuple[asyncio.subprocess.Process, int, Path]:
    exe = shutil.which("saveyourlife", path=str(Path(sys.executable).parent)) or "saveyourlife"
    port = free_port()
    env = {**os.environ, "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": fake.api_url,
           "TELEGRAM_FILE_URL": fake.file_url, "DATABASE_URL": database_url, "WEBHOOK_SECRET": SECRET,
           "TELEGRAM_RATE_LIMITER": "false", "IMAGES_PER_MINUTE": "1000000", "LOG_LEVEL": "WARNING"}
    env.pop("WEBHOOK_URL", None)
    log_path = tmp / f"serve-{workers}.log"
    proc = await asyncio.create_subprocess_exec(exe, "serve", "--host", "127.0.0.1", "--port", str(port),
                                                "--workers", str(workers), cwd=REPO, env=env,
                                                stdout=log_path.open("wb"), stderr=asyncio.subprocess.STDOUT)
    return proc, port, log_path


async def wait_ready(client, proc, workers: int) -> None:
    """Until `workers` distinct worker pids have answered /healthz with the database up."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    seen: set[int] = set()
    while len(seen) < workers:
        if proc.returncode is not None:
            raise RuntimeError(f"serve exited with {proc.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(seen)} of {workers} workers ready after {STARTUP_TIMEOUT_S:.0f} s")
        try:
            r = await client.get("/healthz", timeout=5, headers={"Connection": "close"})  # a new accept each time
            if r.status_code == 200 and r.json().get("database"):
                seen.add(r.json()["pid"])
        except Exception:
            pass
        await asyncio.sleep(0.1)


async def stop_server(proc) -> int | None:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), STOP_TIMEOUT_S)
        except TimeoutError:
            proc.kill()
            await proc.wait()
    return proc.returncode


async def run_once(workers: int, args, images: list[bytes], database_url: str, tmp: Path) -> dict:
    import httpx

    from tests.fake_telegram import FakeTelegram

    async with FakeTelegram(validate_markup=True) as fake:
        traffic = build_traffic(fake, args.updates, args.photo_share, args.dup_share, images, args.seed,
                                chat_base=10_000_000 * workers)
        proc, port, log_path = await start_server(fake, workers, database_url, tmp)
        limits = httpx.Limits(max_connections=args.concurrency * 2, max_keepalive_connections=args.concurrency * 2)
        result: dict = {"workers": workers}
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits) as client:
                await wait_ready(client, proc, workers)
                first_sent: dict[int, float] = {}
                acks: list[float] = []
                statuses: dict[int, int] = {}
                queue: asyncio.Queue[Delivery] = asyncio.Queue()
                for d in traffic:
                    queue.put_nowait(d)

                async def sender() -> None:
                    while not queue.empty():
                        d = queue.get_nowait()
                        t0 = time.monotonic()
                        first_sent.setdefault(d.update_id, t0)
                        r = await client.post("/telegram", content=d.body,
                                              headers={HEADER: SECRET, "Content-Type": "application/json"}, timeout=30)
                        acks.append(time.monotonic() - t0)
                        statuses[r.status_code] = statuses.get(r.status_code, 0) + 1

                busy0, total0 = cpu_jiffies()
                own0 = tree_cpu_s(os.getpid())  # this process, the server and its workers
                server0 = tree_cpu_s(proc.pid)
                start_idx = len(fake.sent)
                t_start = time.monotonic()
                await asyncio.gather(*(sender() for _ in range(args.concurrency)))
                uniques = {d.update_id: d for d in traffic if not d.duplicate}
                chats = {d.chat: d for d in uniques.values()}

                def replies() -> dict[int, list]:
                    out: dict[int, list] = {}
                    for c in fake.sent[start_idx:]:
                        if c.method == "sendMessage" and c.ok and c.chat_id in chats:
                            out.setdefault(c.chat_id, []).append(c)
                    return out

                deadline = time.monotonic() + args.timeout
                while len(replies()) < len(chats) and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
                t_done = max((c[0].time for c in replies().values()), default=time.monotonic())
                busy1, total1 = cpu_jiffies()
                own1 = tree_cpu_s(os.getpid())
                server1 = tree_cpu_s(proc.pid)
                await asyncio.sleep(args.settle)  # a duplicate processed late would show up now
                got = replies()
                health = (await client.get("/healthz", timeout=10)).json()
            lat = {"text": [], "photo": []}
            for chat, calls in got.items():
                d = chats[chat]
                lat[d.kind].append((calls[0].time - first_sent[d.update_id]) * 1000)
            counts = [len(got.get(chat, [])) for chat in chats]
            wall = max(1e-9, t_done - t_start)
            ncpu = os.cpu_count() or 1
            machine_busy_s = (busy1 - busy0) / os.sysconf("SC_CLK_TCK")
            span_s = (total1 - total0) / os.sysconf("SC_CLK_TCK") / ncpu
            result.update({
                "updates": len(uniques), "deliveries": len(traffic),
                "duplicates_sent": sum(d.duplicate for d in traffic),
                "photos": sum(d.kind == "photo" for d in uniques.values()),
                "answered": sum(c >= 1 for c in counts), "wall_s": round(wall, 2),
                "throughput_per_s": round(sum(c >= 1 for c in counts) / wall, 1),
                "p50_ms": percentile(lat["text"] + lat["photo"], 50), "p95_ms": percentile(lat["text"] + lat["photo"], 95),
                "text_p50_ms": percentile(lat["text"], 50), "text_p95_ms": percentile(lat["text"], 95),
                "photo_p50_ms": percentile(lat["photo"], 50), "photo_p95_ms": percentile(lat["photo"], 95),
                "ack_p95_ms": percentile([a * 1000 for a in acks], 95),
                "http_statuses": statuses,
                "replies_per_update_min": min(counts) if counts else 0,
                "replies_per_update_max": max(counts) if counts else 0,
                "updates_with_extra_replies": sum(c > 1 for c in counts),
                "duplicate_safe": bool(counts) and all(c == 1 for c in counts),
                "server_skipped_duplicates": health.get("updates", {}).get("duplicates"),
                "server_cpu_ms_per_update": round(1000 * (server1 - server0) / max(1, len(uniques)), 1),
                "cpu_busy_pct": round(100 * machine_busy_s / max(1e-9, span_s * ncpu), 1),
                "cpu_other_pct": round(100 * max(0.0, machine_busy_s - (own1 - own0)) / max(1e-9, span_s * ncpu), 1),
            })
            for key in ("p50_ms", "p95_ms", "text_p50_ms", "text_p95_ms", "photo_p50_ms", "photo_p95_ms", "ack_p95_ms"):
                result[key] = None if result[key] is None else round(result[key], 1)
        finally:
            code = await stop_server(proc)
            clean = code in (0, -signal.SIGTERM)  # uvicorn re-raises the SIGTERM it handled gracefully
            result["exit_code"] = 0 if clean else code
            result["log_tail"] = "" if clean else log_path.read_text(errors="replace")[-1500:]
        return result


def table(rows: list[dict]) -> str:
    def f(v):
        return "—" if v is None else (f"{v:g}" if isinstance(v, float) else str(v))

    head = ("| workers | updates (photos) | deliveries (dups) | answered | wall s | replies/s | p50 ms | p95 ms | "
            "text p50/p95 ms | photo p50/p95 ms | ack p95 ms | replies per update (min–max) | duplicate-safe | "
            "server CPU ms/update | CPU busy % (other procs) |")
    lines = [head, "|" + "|".join(["---"] * (head.count("|") - 1)) + "|"]
    for r in rows:
        lines.append(
            f"| {r['workers']} | {r['updates']} ({r['photos']}) | {r['deliveries']} ({r['duplicates_sent']}) | "
            f"{r['answered']} | {f(r['wall_s'])} | {f(r['throughput_per_s'])} | {f(r['p50_ms'])} | {f(r['p95_ms'])} | "
            f"{f(r['text_p50_ms'])} / {f(r['text_p95_ms'])} | {f(r['photo_p50_ms'])} / {f(r['photo_p95_ms'])} | "
            f"{f(r['ack_p95_ms'])} | {r['replies_per_update_min']}–{r['replies_per_update_max']} | "
            f"{'yes' if r['duplicate_safe'] else 'NO'} | {f(r['server_cpu_ms_per_update'])} | "
            f"{f(r['cpu_busy_pct'])} ({f(r['cpu_other_pct'])}) |")
    return "\n".join(lines)


async def main_async(args) -> int:
    images, source = load_images()
    workers = [int(w) for w in args.workers.split(",") if w.strip()]
    cluster = None
    rows = []
    with tempfile.TemporaryDirectory(prefix="scale-bench-") as tmp_name:
        tmp = Path(tmp_name)
        try:
            if args.db == "postgres":
                from tests.pg import PostgresCluster

                cluster = PostgresCluster().start()
            for w in workers:
                url = (cluster.create_database(f"scale{w}").url if cluster is not None
                       else f"sqlite+aiosqlite:///{tmp / f'scale-{w}.db'}")
                rows.append(await run_once(w, args, images, url, tmp))
        finally:
            if cluster is not None:
                cluster.stop()
    load = open("/proc/loadavg").read().split()[:3]
    if args.json:
        print(json.dumps({"images": source, "db": args.db, "loadavg": load, "runs": rows}, indent=2))
    else:
        print(f"images: {source}; database: {args.db}; cores: {os.cpu_count()}; load average now: {' '.join(load)}")
        print(table(rows))
        for r in rows:
            if r.get("log_tail"):
                print(f"--- serve --workers {r['workers']} exited {r['exit_code']}:\n{r['log_tail']}")
    ok = all(r["duplicate_safe"] and r["answered"] == r["updates"] and r["exit_code"] == 0 for r in rows)
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--updates", type=int, default=120, help=f"unique updates per run (max {MAX_UPDATES})")
    parser.add_argument("--photo-share", type=float, default=0.3)
    parser.add_argument("--dup-share", type=float, default=0.1, help="share of updates delivered twice")
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts to run, in order")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent webhook POSTs")
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for all replies per run")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds to wait for late duplicate replies")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not 1 <= args.updates <= MAX_UPDATES or not 0 <= args.photo_share <= 1 or not 0 <= args.dup_share <= 1:
        parser.error(f"--updates must be 1..{MAX_UPDATES}; shares must be within 0..1")
    try:
        return asyncio.run(main_async(args))
    except Exception as exc:
        print(f"scale_bench failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
