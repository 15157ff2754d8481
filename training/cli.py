"""`saveyourlife train` and `saveyourlife evaluate`: argument handling for the training package."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from .dataset import default_data_dir

IMAGE_MODELS = ("discriminator", "detector", "typer", "sequence", "plane")


def add_arguments(train: argparse.ArgumentParser, evaluate: argparse.ArgumentParser, models_dir: Path) -> None:
    train.add_argument("model", choices=(*IMAGE_MODELS, "tumour", "sequencer", "intents", "safety", "images", "all"),
                       help="what to train: one model with the models that share its trunk (detector and typer are "
                            "the 'tumour' group, sequence and plane the 'sequencer'), the chat's question classifier ('intents') "
                            "or red-flag net ('safety'), every image model ('images') or everything ('all')")
    train.add_argument("--data", type=Path, default=default_data_dir(), help="dataset folder (default: ../shared/data)")
    train.add_argument("--out", type=Path, default=models_dir, help="where .tflite files and manifest.json go")
    train.add_argument("--cache", type=Path, default=Path(".cache"), help="decoded-array cache and checkpoints")
    train.add_argument("--epochs", type=int, default=None, help="override the epoch budget (for quick runs)")
    train.add_argument("--limit", type=int, default=None, help="use at most N images per split (for quick runs)")
    train.add_argument("--seed", type=int, default=None,
                       help="random seed (default: each trainer's own: 1234, the red-flag net train_safety.SEED)")
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
    evaluate.add_argument("--tables", action="store_true",
                          help="instead: regenerate the README's model tables from models/cards/results.json")
    evaluate.add_argument("--without-lgg", type=Path, default=None, metavar="DIR",
                          help="instead: score the model set in DIR (trained without LGG) through the served "
                               "pipeline on test, into models/cards/results_without_lgg.json")


def run_train(args: argparse.Namespace) -> int:
    from .tasks import GROUPS, group_of

    text_models = ("intents", "safety")
    names = {"images": tuple(GROUPS), "all": (*GROUPS, *text_models)}.get(args.model, (args.model,))
    names = tuple(dict.fromkeys(n if n in text_models else group_of(n) for n in names))
    seeded = {} if args.seed is None else {"seed": args.seed}  # else each trainer's own default
    for name in names:
        started = time.time()
        if name == "intents":
            from .train_intents import train_intents

            train_intents(args.out, epochs=args.epochs, **seeded)
        elif name == "safety":
            from .train_safety import train_safety

            train_safety(args.out, epochs=args.epochs, **seeded)
        else:
            from .train_image import train_and_export

            train_and_export(name, args.data, args.out, args.cache, epochs=args.epochs, limit=args.limit,
                             photo_augment=not args.clean_only, **seeded)
        print(f"trained {name} in {time.time() - started:.0f} s")
    if any(n not in text_models for n in names):
        _refit_gating_when_complete(args.data, args.out)
        print("score the test split, once for this release, and write the model cards: saveyourlife evaluate")
    return 0


def _refit_gating_when_complete(data_dir: Path, models_dir: Path) -> None:
    """Retrained image models invalidate the gating table; fit it again once every image model is there."""
    from .evaluate import refit_gating
    from .manifest_io import load

    missing = [n for n in IMAGE_MODELS if n not in load(models_dir)["models"]]
    if missing:
        print(f"gating table not fitted: train {', '.join(missing)} first, then run `saveyourlife evaluate --refit`")
        return
    gating = refit_gating(data_dir, models_dir)
    print("gating table fitted on validation:", json.dumps({k: {q: (v["trust_no_tumor"], v["name_type"])
                                                                for q, v in gating[k].items()}
                                                            for k in ("cells",)}))


def run_evaluate(args: argparse.Namespace) -> int:
    if args.tables:
        from .readme_tables import write_tables

        write_tables(args.models, Path("README.md"))
        return 0
    if args.without_lgg:
        from .evaluate import score_other_models

        report = score_other_models(args.data, args.without_lgg, args.models / "cards" / "results_without_lgg.json")
        print(json.dumps(report["checks"], indent=2))
        return 0
    if args.real_world:
        from .robustness import evaluate_real_world

        summary = evaluate_real_world(args.data, args.models, limit=args.limit)
        print(json.dumps({k: {m: v[m] for m in ("mri_kept", "non_mri_rejected", "typer_accuracy", "typer_drop_points")}
                          for k, v in summary["variants"].items()}, indent=2))
        return 0
    from .evaluate import evaluate_models

    results = evaluate_models(args.data, args.models, args.cache, refit=args.refit)
    print(json.dumps({"models": {k: v["headline"] for k, v in results["models"].items()},
                      "checks": results["served_test"]["checks"]}, indent=2))
    return 0
