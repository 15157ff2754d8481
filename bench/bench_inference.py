"""Latency and memory of the serving path (not a test: prints figures for the README).

    .venv/bin/python -m bench.bench_inference [--images N] [--keras] [--baseline DIR]

Reports p50/p95 of the full cascade for one image (decode + every image model + gates) with 1
and 2 interpreter threads (with --baseline, the model set in DIR alone, e.g. the previous release checked
out with `git show`, timed in the same run), of the whole picture pipeline (clean slices and phone-photo
copies), one intent answer, the process RSS after loading all models, the cold-start
time, and (with --keras, needs the train extra) the same nets through Keras
`model.predict` as a ratio.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentiles(samples: list[float]) -> dict:
    return {"p50_ms": round(float(np.percentile(samples, 50)), 3), "p95_ms": round(float(np.percentile(samples, 95)), 3)}


def sample_files(n: int) -> list[bytes]:
    data = REPO.parent / "shared" / "data"
    files = sorted((data / "mri" / "kaggle4" / "Testing").rglob("*.jpg"))[:: 37][:n]
    if not files:
        import io

        from PIL import Image

        out = []
        for i in range(n):
            buf = io.BytesIO()
            Image.fromarray((np.random.default_rng(i).random((224, 224)) * 255).astype(np.uint8)).save(buf, "JPEG")
            out.append(buf.getvalue())
        return out
    return [f.read_bytes() for f in files]


def timed(call, items: list, repeats: int = 1) -> dict:
    """p50/p95 in ms of `call(item)` over `repeats` passes of `items`, after one warm-up call."""
    call(items[0])
    times = []
    for _ in range(repeats):
        for item in items:
            started = time.perf_counter()
            call(item)
            times.append((time.perf_counter() - started) * 1000)
    return percentiles(times)


def bench_cascade(models_dir: Path, blobs: list[bytes], threads: int, repeats: int, gated: bool = True) -> dict:
    """`gated=False` times an older model set too (no sequence models or gating table needed)."""
    from inference.cascade import Cascade

    cascade = Cascade.load(models_dir, num_threads=threads, gated=gated)
    return timed(cascade.predict_bytes, blobs, repeats)


def bench_pipeline(models_dir: Path, blobs: list[bytes], repeats: int, photographed: bool) -> dict:
    """The whole picture path of an upload: decode, sheet detection, scan finding, quality checks, cascade.
    `photographed`: each slice first goes through `training.degrade.mixed` (a phone photo; not timed)."""
    from inference.cascade import Cascade
    from inference.imaging import decode_image
    from inference.picture import analyse_picture

    cascade = Cascade.load(models_dir)
    images = [decode_image(b).image for b in blobs]
    if photographed:
        from training.degrade import mixed

        images = [mixed(image, seed) for seed, image in enumerate(images)]
    return timed(lambda image: analyse_picture(cascade, image), images, repeats)


def bench_keras(models_dir: Path, blobs: list[bytes], repeats: int) -> dict:
    """Same architectures through Keras model.predict, one image per call, vs the LiteRT models only."""
    import keras

    from inference.cascade import Cascade
    from inference.imaging import decode_image
    from training.models import image_classifier

    manifest = json.loads((models_dir / "manifest.json").read_text())
    cascade = Cascade.load(models_dir)
    images = [decode_image(b).image for b in blobs]
    out = {}
    for name in ("discriminator", "detector", "typer", "sequence", "plane"):
        entry = manifest["models"][name]
        ckpt = REPO / ".cache" / "checkpoints" / f"{name}.keras"
        if ckpt.exists():
            model, weights = keras.models.load_model(ckpt, compile=False), "trained checkpoint"
        else:
            arch = entry["training"]["architecture"]
            model = image_classifier(arch["size"], entry["input"]["channels"], tuple(arch["widths"]), len(entry["labels"]))
            weights = "same architecture, fresh weights (no local checkpoint)"
        tensors = [cascade.tensor_for(name, im) for im in images]
        model.predict(tensors[0], verbose=0)
        k_times, l_times = [], []
        for _ in range(repeats):
            for x in tensors:
                t = time.perf_counter()
                model.predict(x, verbose=0)
                k_times.append((time.perf_counter() - t) * 1000)
                t = time.perf_counter()
                cascade.models[name].run(x)
                l_times.append((time.perf_counter() - t) * 1000)
        out[name] = {"keras_predict_p50_ms": round(float(np.median(k_times)), 3),
                     "litert_p50_ms": round(float(np.median(l_times)), 3),
                     "ratio": round(float(np.median(k_times) / np.median(l_times)), 1), "keras_weights": weights}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=REPO / "models")
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--keras", action="store_true")
    parser.add_argument("--baseline", type=Path, default=None, help="another models folder to time beside this one")
    args = parser.parse_args()

    baseline = rss_mb()
    started = time.perf_counter()
    from bot.loader import chat_router
    from inference.cascade import Cascade

    cascade = Cascade.load(args.models)
    router = chat_router(args.models)
    cold_start_s = time.perf_counter() - started
    loaded = rss_mb()
    blobs = sample_files(args.images)
    report = {
        "images": len(blobs),
        "cold_start_s (import + load 4 models + knowledge base)": round(cold_start_s, 3),
        "rss_mb_after_loading_all_models": round(loaded, 1),
        "rss_mb_python_baseline": round(baseline, 1),
        "cascade_1_thread": bench_cascade(args.models, blobs, 1, args.repeats),
        "cascade_2_threads": bench_cascade(args.models, blobs, 2, args.repeats),
        **({"cascade_1_thread_baseline": bench_cascade(args.baseline, blobs, 1, args.repeats, gated=False),
            "cascade_1_thread_again": bench_cascade(args.models, blobs, 1, args.repeats)} if args.baseline else {}),
        "picture_pipeline_clean": bench_pipeline(args.models, blobs, args.repeats, photographed=False),
        "picture_pipeline_photographed": bench_pipeline(args.models, blobs, args.repeats, photographed=True),
    }
    questions = ["que es un glioma", "what are the symptoms of a meningioma", "tengo miedo de los resultados",
                 "how accurate is the bot", "el tiempo en madrid"] * 40
    report["intent_answer"] = timed(router.answer, questions)
    if args.keras:
        report["keras_vs_litert"] = bench_keras(args.models, blobs[:5], args.repeats)
    del cascade
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
