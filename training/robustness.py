"""`saveyourlife evaluate --real-world`: the served pipeline on a degraded copy of the test split.

Every test image is photographed once per transform of `training.degrade` (plus one "mixed" variant), with a
seed fixed by its path, and goes through `inference.picture.analyse_picture` exactly as an upload would:
scan finding, quality checks, cascade. Results land in models/cards/robustness/.
"""

from __future__ import annotations

import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from inference.imaging import decode_image
from inference.manifest import load_manifest

from .dataset import TYPE_LABELS, read_manifest
from .degrade import HARD_CASES, TRANSFORMS, degrade, mixed, stable_seed
from .report import replace_section

VARIANTS = ("clean", *TRANSFORMS, "mixed", *HARD_CASES)
# Targets of the real-world-scans issue, for the report only.
TARGETS = {"mri_kept": 0.99, "non_mri_rejected": 0.995, "typer_drop_points": 3.0}

_cascade = None


def _load(models_dir: str) -> None:
    global _cascade
    from inference.cascade import Cascade

    _cascade = Cascade.load(Path(models_dir))


def _photograph(image, path: str, variant: str):
    if variant == "clean":
        return image
    if variant == "mixed":
        return mixed(image, stable_seed("real-world", variant, path))
    if variant in HARD_CASES:
        return HARD_CASES[variant](image)
    return degrade(image, variant, stable_seed("real-world", variant, path))


def _score_one(job: tuple[str, str]) -> dict:
    from inference.picture import analyse_picture

    file, rel = job
    image = decode_image(Path(file).read_bytes()).image
    out = {}
    for variant in VARIANTS:
        analysis = analyse_picture(_cascade, _photograph(image, rel, variant))
        r = analysis.result
        out[variant] = (r.verdict, r.mri_probability, r.tumor_probability,
                        max(r.type_probabilities, key=r.type_probabilities.get), analysis.is_sheet, r.tumor_type)
    return out


def _rate(flags: list[bool]) -> float | None:
    return round(float(np.mean(flags)), 4) if flags else None


def evaluate_real_world(data_dir: Path, models_dir: Path, limit: int | None = None, workers: int = 2) -> dict:
    # The public test split only, as in earlier releases: LGG's own served figures are in results.json.
    rows = [r for r in read_manifest(data_dir, include_lgg=False) if r.split == "test"]
    if limit:
        rows = rows[::max(1, len(rows) // limit)]
    manifest = load_manifest(models_dir)
    mri_cut = manifest["discriminator"].thresholds["band_low"]
    tumour_cut = manifest["detector"].thresholds["decision"]
    with ProcessPoolExecutor(max_workers=workers, initializer=_load, initargs=(str(models_dir),)) as pool:
        scored = list(pool.map(_score_one, [(str(data_dir / r.path), r.path) for r in rows], chunksize=8))

    report = {}
    for variant in VARIANTS:
        mri, non_mri, typer, detector, answered, sheets, different = [], [], [], [], [], [], []
        non_mri_by_kind: dict[str, list[bool]] = {}
        for row, res in zip(rows, scored):
            verdict, mri_p, tumour_p, top_type, is_sheet, tumour_type = res[variant]
            sheets.append(is_sheet)
            if row.is_brain_mri:
                mri.append(verdict != "not_mri")
                answered.append(verdict != "inconclusive")
                clean_verdict, *_, clean_type = res["clean"]
                # A confident answer that is not the clean slice's own: the one outcome a hard case must avoid.
                different.append(verdict in ("no_tumor", "tumor") and (verdict, tumour_type) != (clean_verdict, clean_type))
                detector.append((tumour_p >= tumour_cut) == (row.label != "notumor"))
                if row.source == "kaggle4":
                    typer.append(top_type == row.label)
            else:
                rejected = verdict == "not_mri" or (verdict == "inconclusive" and mri_p < mri_cut)
                non_mri.append(rejected)
                non_mri_by_kind.setdefault(row.kind, []).append(rejected)
        report[variant] = {
            "mri_kept": _rate(mri), "non_mri_rejected": _rate(non_mri), "typer_accuracy": _rate(typer),
            "detector_accuracy": _rate(detector), "mri_answered": _rate(answered), "taken_for_sheet": _rate(sheets),
            "mri_confident_different": _rate(different),
            "non_mri_rejected_by_kind": {k: _rate(v) for k, v in sorted(non_mri_by_kind.items())},
            "n_mri": len(mri), "n_non_mri": len(non_mri), "n_typer": len(typer),
        }
    clean_typer = report["clean"]["typer_accuracy"] or 0.0
    for variant in VARIANTS:
        acc = report[variant]["typer_accuracy"]
        report[variant]["typer_drop_points"] = round((clean_typer - acc) * 100, 2) if acc is not None else None
    summary = {"variants": report, "targets": TARGETS, "images": len(rows),
               "labels": list(TYPE_LABELS), "models": {k: spec.version for k, spec in manifest.models.items()}}
    out = models_dir / "cards" / "robustness"
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out / "ROBUSTNESS.md").write_text(render_markdown(summary))
    for model, (column, title) in CARD_COLUMNS.items():
        add_card_section(models_dir / "cards" / model / "MODEL_CARD.md", summary, column, title)
    return summary


# Which column of the robustness table each model card repeats.
CARD_COLUMNS = {"discriminator": (("mri_kept", "non_mri_rejected"), ("MRI kept", "non-MRI rejected")),
                "detector": (("detector_accuracy",), ("accuracy",)),
                "typer": (("typer_accuracy", "typer_drop_points"), ("accuracy", "drop vs clean (points)"))}
CARD_HEADING = "## Real-world pictures"


def add_card_section(card: Path, summary: dict, columns: tuple[str, ...], titles: tuple[str, ...]) -> None:
    """Replace the card's real-world section (cards are rewritten by `evaluate`; run this after it)."""
    if not card.exists():
        return
    fmt = lambda k, v: "–" if v is None else (f"{v}" if k.endswith("points") else f"{v * 100:.2f} %")  # noqa: E731
    rows = [f"| {name} | " + " | ".join(fmt(k, v[k]) for k in columns) + " |" for name, v in summary["variants"].items()]
    body = "\n".join(["Test split photographed once per transform of `training/degrade.py`, through the "
                      "served pipeline (`saveyourlife evaluate --real-world`; all models: `cards/robustness/ROBUSTNESS.md`).",
                      "", "| variant | " + " | ".join(titles) + " |", "|---|" + "---|" * len(titles), *rows])
    card.write_text(replace_section(card.read_text(), CARD_HEADING, body))


def render_markdown(summary: dict) -> str:
    lines = [
        "# Real-world robustness (degraded test split)",
        "",
        f"{summary['images']} test-split images (group split), each photographed once per transform of "
        "`training/degrade.py` with a seed fixed by its path, then analysed by `inference.picture.analyse_picture` "
        "(scan finding, quality checks, cascade), as an upload would be. Reproduce: "
        "`saveyourlife evaluate --real-world`.",
        "",
        "| variant | MRI kept (not called non-MRI) | non-MRI rejected | typer accuracy | typer drop (points) | "
        "detector accuracy | MRI answered (not inconclusive) | MRI: confident answer ≠ clean | taken for a film sheet |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    pct = lambda v: "–" if v is None else f"{v * 100:.2f} %"  # noqa: E731
    for name, v in summary["variants"].items():
        lines.append(f"| {name} | {pct(v['mri_kept'])} | {pct(v['non_mri_rejected'])} | {pct(v['typer_accuracy'])} | "
                     f"{v['typer_drop_points']} | {pct(v['detector_accuracy'])} | {pct(v['mri_answered'])} | "
                     f"{pct(v['mri_confident_different'])} | {pct(v['taken_for_sheet'])} |")
    t = summary["targets"]
    lines += ["", f"Targets: MRI kept ≥ {t['mri_kept']:.0%}, non-MRI rejected ≥ {t['non_mri_rejected']:.1%}, typer within "
              f"{t['typer_drop_points']:.0f} points of clean. A non-MRI picture counts as rejected when the answer is "
              "\"not an MRI\", or \"inconclusive\" with the MRI probability under the discriminator's band.", "",
              f"{', '.join(HARD_CASES)} are beyond those ranges (`training/degrade.py`, the issue's bad-input list): "
              "for them the target is honesty, an answer that is \"inconclusive\", \"not an MRI\" or the clean "
              "slice's own, so the column that matters is \"confident answer ≠ clean\".", ""]
    return "\n".join(lines)
