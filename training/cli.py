"""`saveyourlife train` and `saveyourlife evaluate`: argument handling for the training package."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from .dataset import default_data_dir

IMAGE_MODELS = ("discriminator", "detector", "typer")


def add_arguments(train: argparse.ArgumentParser, evaluate: argparse.ArgumentParser, models_dir: Path) -> None:
    train.add_argument("model", choices=(*IMAGE_MODELS, "intents", "images", "all"),
                       help="what to train: one model, the three image models ('images') or everything ('all')")
    train.add_argument("--data", type=Path, default=default_data_dir(), help="dataset folder (default: ../shared/data)")
    train.add_argument("--out", type=Path, default=models_dir, help="where .tflite files and manifest.json go")
    train.add_argument("--cache", type=Path, default=Path(".cache"), help="decoded-array cache and checkpoints")
    train.add_argument("--epochs", type=int, default=None, help="override the epoch budget (for quick runs)")
    train.add_argument("--limit", type=int, default=None, help="use at most N images per split (for quick runs)")
    train.add_argument("--seed", type=int, default=1234)
    train.add_argument("--clean-only", action="store_true",
                       help="train on clean images only (no photo-like degraded copies; for comparison)")
    evaluate.add_argument("--data", type=Path, default=default_data_dir())
    evaluate.add_argument("--models", type=Path, default=models_dir)
    evaluate.add_argument("--cache", type=Path, default=Path(".cache"))
    evaluate.add_argument("--refit", action="store_true",
                          help="fit temperatures and thresholds again on the validation split before scoring")
    evaluate.add_argument("--real-world", action="store_true",
                          help="instead: score the served pipeline on photo-like degraded copies of the test split")
    evaluate.add_argument("--limit", type=int, default=None, help="with --real-world: use about N test images")


def run_train(args: argparse.Namespace) -> int:
    names = {"images": IMAGE_MODELS, "all": (*IMAGE_MODELS, "intents")}.get(args.model, (args.model,))
    for name in names:
        started = time.time()
        if name == "intents":
            from .train_intents import train_intents

            train_intents(args.out, seed=args.seed, epochs=args.epochs)
        else:
            from .train_image import train_and_export

            train_and_export(name, args.data, args.out, args.cache, epochs=args.epochs, limit=args.limit, seed=args.seed,
                             photo_augment=not args.clean_only)
        print(f"trained {name} in {time.time() - started:.0f} s")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    if args.real_world:
        from .robustness import evaluate_real_world

        summary = evaluate_real_world(args.data, args.models, limit=args.limit)
        print(json.dumps({k: {m: v[m] for m in ("mri_kept", "non_mri_rejected", "typer_accuracy", "typer_drop_points")}
                          for k, v in summary["variants"].items()}, indent=2))
        return 0
    from .evaluate import evaluate_models

    results = evaluate_models(args.data, args.models, args.cache, refit=args.refit)
    print(json.dumps(results, indent=2))
    return 0
