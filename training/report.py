"""Turn test-set logits into the numbers, thresholds, plots and model cards we publish."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from inference.calibration import softmax

from .dataset import PUBLIC_SOURCES, Row
from .metrics import (
    abstention_band,
    binary_operating_point,
    classification_report,
    confidence_threshold,
    coverage_at,
    expected_calibration_error,
    fit_temperature,
    reliability_bins,
    sens_spec,
)
from .tasks import ImageTask


def _binary_thresholds(task: ImageTask, p_val: np.ndarray, y_val: np.ndarray) -> dict:
    point = binary_operating_point(p_val, y_val, task.min_sensitivity, task.min_specificity)
    low, high = abstention_band(p_val, y_val, point["threshold"])
    return {"decision": round(point["threshold"], 4), "band_low": low, "band_high": high}


def _answered_binary(p: np.ndarray, y: np.ndarray, th: dict) -> dict:
    answered = (p < th["band_low"]) | (p >= th["band_high"])
    pred = p[answered] >= th["band_high"]
    acc = float((pred == (y[answered] == 1)).mean()) if answered.any() else 0.0
    return {"coverage": round(float(answered.mean()), 4), "answered_accuracy": round(acc, 4)}


def fit_on_validation(task: ImageTask, val_logits: np.ndarray, y_val: np.ndarray) -> tuple[float, dict]:
    """The temperature and the thresholds a model is served with, from validation alone."""
    temperature = fit_temperature(val_logits, y_val)
    p_val = softmax(val_logits, temperature)
    if task.positive is not None:
        return temperature, _binary_thresholds(task, p_val[:, 1], y_val)
    return temperature, {"min_confidence": confidence_threshold(p_val, y_val)}


def validation_figures(task: ImageTask, val_logits: np.ndarray, y_val: np.ndarray, temperature: float) -> dict:
    """What training reports: the validation split only (the test split is scored by `saveyourlife evaluate`)."""
    report = classification_report(y_val, softmax(val_logits, temperature), list(task.labels))
    return {"split": "validation", "accuracy": report["accuracy"], "macro_f1": report["macro_f1"], "n": report["n"]}


def data_summary(task: ImageTask, rows: dict[str, list[Row]]) -> dict:
    labels = list(task.labels)
    data: dict = {split: dict(sorted(Counter(labels[task.label_of(r)] for r in rs).items())) for split, rs in rows.items()}
    data["groups_by_split"] = {split: len({r.group for r in rs}) for split, rs in rows.items()}
    data["sources"] = sorted({r.source for rs in rows.values() for r in rs})
    data["sources_by_split"] = {split: dict(sorted(Counter(r.source for r in rs).items())) for split, rs in rows.items()}
    data["split_rule"] = ("manifest.tsv `split`: whole near-duplicate groups (mri_dup_component), ~70/15/15, stratified; "
                          "LGG: mri/lgg/manifest.tsv `split`, whole patients")
    return data


def evaluate_task(task: ImageTask, val_logits, y_val, test_logits, y_test, rows: dict[str, list[Row]],
                  fixed: dict | None = None) -> dict:
    """Fit T and thresholds on validation (or reuse `fixed` ones from the manifest), then score the test split."""
    temperature, th = (fixed["temperature"], fixed["thresholds"]) if fixed else fit_on_validation(task, val_logits, y_val)
    p_test_raw = softmax(test_logits, 1.0)
    p_test = softmax(test_logits, temperature)
    labels = list(task.labels)
    test = classification_report(y_test, p_test, labels)
    test["ece_before_temperature"] = round(expected_calibration_error(y_test, p_test_raw), 4)
    test["ece_after_temperature"] = test.pop("ece")
    test["reliability"] = reliability_bins(y_test, p_test)

    headline = {"accuracy": test["accuracy"], "macro_f1": test["macro_f1"], "ece": test["ece_after_temperature"]}
    if task.positive is not None:
        test["operating_point"] = sens_spec(p_test[:, 1], y_test, th["decision"])
        test["abstention"] = _answered_binary(p_test[:, 1], y_test, th)
        headline.update({"sensitivity": test["operating_point"]["sensitivity"],
                         "specificity": test["operating_point"]["specificity"], **test["abstention"]})
    else:
        test["abstention"] = coverage_at(p_test, y_test, th["min_confidence"])
        headline.update({f"recall_{k}": test["per_class"][k]["recall"] for k in ("glioma", "meningioma")
                         if k in test["per_class"]})
        headline.update({k: test["abstention"][k] for k in ("coverage", "answered_accuracy")})
    test["headline"] = headline

    test_rows = rows["test"]
    if task.name == "discriminator":
        by_kind: dict[str, list[bool]] = defaultdict(list)
        pred = p_test[:, 1] >= th["decision"]
        for row, ok in zip(test_rows, pred == (y_test == 1)):
            by_kind[row.kind].append(bool(ok))
        test["accuracy_by_kind"] = {k: {"n": len(v), "accuracy": round(float(np.mean(v)), 4)} for k, v in sorted(by_kind.items())}
        published_y = np.array([1 if row.relabelled else y for row, y in zip(test_rows, y_test)])
        if (published_y != y_test).any():
            test["published_labels"] = {
                "relabelled_as_not_mri": int((published_y != y_test).sum()),
                "source": "training/label_audit.tsv (head CT slices labelled MRI in the public sets)",
                "accuracy": round(float((pred == (published_y == 1)).mean()), 4),
                **{k: v for k, v in sens_spec(p_test[:, 1], published_y, th["decision"]).items() if k != "threshold"},
            }
            test["headline"]["accuracy_published_labels"] = test["published_labels"]["accuracy"]
    sources = np.array([row.source for row in test_rows])
    groups = {source: sources == source for source in sorted(set(sources))}
    if len(set(sources) & set(PUBLIC_SOURCES)) > 1:  # the figure earlier releases, trained on them alone, reported
        groups["public"] = np.isin(sources, PUBLIC_SOURCES)
    correct = p_test.argmax(1) == y_test
    test["accuracy_by_source"] = {k: {"n": int(m.sum()), "accuracy": round(float(correct[m].mean()), 4)}
                                  for k, m in groups.items()}
    if task.positive is not None:  # the operating point per source: the public sets and LGG are read apart
        test["operating_point_by_source"] = {k: sens_spec(p_test[m, 1], y_test[m], th["decision"])
                                             for k, m in groups.items()}
    clean = np.array([not r.label_conflict for r in test_rows])
    if clean.any() and not clean.all():
        test["accuracy_without_label_conflicts"] = round(float((p_test.argmax(1)[clean] == y_test[clean]).mean()), 4)

    return {"temperature": temperature, "thresholds": th, "test": test, "data": data_summary(task, rows)}


def replace_section(text: str, heading: str, body: str) -> str:
    """`text` with the section under `heading` (up to the next "## " heading) replaced, or appended."""
    before, found, after = text.partition(heading)
    rest = ""
    if found:
        nxt = after.find("\n## ")
        rest = after[nxt:] if nxt >= 0 else ""
    return before.rstrip() + "\n\n" + heading + "\n\n" + body.strip() + "\n" + rest


def _plot_confusion(path: Path, cm: list[list[int]], labels: list[str], title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm_arr = np.array(cm)
    fig, ax = plt.subplots(figsize=(4.2, 3.8), dpi=110)
    ax.imshow(cm_arr, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    for (i, j), v in np.ndenumerate(cm_arr):
        ax.text(j, i, str(v), ha="center", va="center", color="white" if v > cm_arr.max() / 2 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _plot_reliability(path: Path, bins: list[dict], title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 4), dpi=110)
    centers = [(b["lo"] + b["hi"]) / 2 for b in bins if b["n"]]
    accs = [b["accuracy"] for b in bins if b["n"]]
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect")
    ax.bar(centers, accs, width=0.09, alpha=0.7, label="accuracy")
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _plot_history(path: Path, history: dict, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2), dpi=110)
    for key, ax in zip(("loss", "accuracy"), axes):
        for prefix in ("", "val_"):
            if prefix + key in history:
                ax.plot(history[prefix + key], label=prefix + key)
        ax.set_xlabel("epoch")
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_reports(task: ImageTask, models_dir: Path, entry: dict, evaluation: dict, history: dict | None) -> Path:
    out = models_dir / "cards" / task.name
    out.mkdir(parents=True, exist_ok=True)
    test = evaluation["test"]
    (out / "metrics.json").write_text(json.dumps({"model": task.name, "temperature": evaluation["temperature"],
                                                  "thresholds": evaluation["thresholds"], "test": test,
                                                  "export": entry.get("export"), "data": evaluation["data"]},
                                                 indent=2) + "\n")
    _plot_confusion(out / "confusion.png", test["confusion_matrix"], list(task.labels), f"{task.name} — test")
    _plot_reliability(out / "reliability.png", test["reliability"], f"{task.name} — reliability (test)")
    if history:
        write_history(task, models_dir, history)
    (out / "MODEL_CARD.md").write_text(model_card(task, entry, evaluation))
    return out


def write_history(task: ImageTask, models_dir: Path, history: dict) -> None:
    """The training curves: all that training writes to a card (the rest comes from `saveyourlife evaluate`)."""
    out = models_dir / "cards" / task.name
    out.mkdir(parents=True, exist_ok=True)
    _plot_history(out / "training_curves.png", history, f"{task.name} — training")
    (out / "history.json").write_text(json.dumps(history) + "\n")


def audit_note(test: dict) -> str:
    audit = test.get("published_labels")
    if not audit:
        return ""
    return (f"**Label audit.** {audit['relabelled_as_not_mri']} test images labelled brain MRI in the public sets are head CT "
            f"slices (`{audit['source']}`, confirmed by eye); the figures above count them as not-MRI, as training did. "
            f"Scored against the published labels instead: accuracy {audit['accuracy']:.4f}, "
            f"MRI sensitivity {audit['sensitivity']:.4f}, specificity {audit['specificity']:.4f}.\n")


def model_card(task: ImageTask, entry: dict, evaluation: dict) -> str:
    test = evaluation["test"]
    rows = "\n".join(f"| {k} | {v['precision']:.3f} | {v['recall']:.3f} | {v['f1']:.3f} | {v['support']} |"
                     for k, v in test["per_class"].items())
    kinds = ""
    if "accuracy_by_kind" in test:
        kinds = "\n### Accuracy by kind of picture (test)\n\n| kind | n | accuracy |\n|---|---|---|\n" + "\n".join(
            f"| {k} | {v['n']} | {v['accuracy']:.4f} |" for k, v in test["accuracy_by_kind"].items()) + "\n"
    purpose = {
        "discriminator": "Decides whether a picture is a brain MRI slice at all, before any tumour model sees it.",
        "detector": "Estimates whether a brain MRI slice shows a tumour (glioma, meningioma or pituitary tumour).",
        "typer": "Given a brain MRI slice, estimates glioma / meningioma / pituitary tumour / no tumour.",
        "sequence": "Tells which MRI sequence a slice is (T1, T1 after contrast, T2, FLAIR), so that the bot answers "
                    "only where validation shows the other models can be trusted.",
        "plane": "Tells the plane of a brain MRI slice (axial, coronal, sagittal).",
    }[task.name]
    training = entry.get("training", {})
    photo = training.get("photo_augmentation")
    photo_note = (f"Trained on clean crops and on {photo['copies']} simulated phone-photo copies of each training image "
                  f"({photo['share']:.0%} of samples; `training/degrade.py`); a real photo taken at a steep angle, or "
                  "one cutting the skull, is still misread more often than a clean slice (see below)." if photo else
                  "Trained on clean 2-D crops: phone photos of films, screenshots with overlays and unusual windowing "
                  "may be misread or rejected as \"not an MRI\".")
    return f"""# Model card: {task.name}

{purpose}

*Generated by `saveyourlife evaluate` (after `saveyourlife train {task.name}`); every number below was measured on the
untouched group-split test set with the exported LiteRT model (`{entry['file']}`, variant `{entry['export']['variant']}`).*

## Intended use
Education and triage support for people who already hold a brain MRI slice and want to understand it while they
wait for a clinician. Inputs: one axial/coronal/sagittal 2-D slice (JPEG/PNG/DICOM) of an adult brain MRI.

## Out of scope
- **Not a medical device, not a diagnosis.** Never use it to decide treatment.
- Not for CT, X-ray or any modality other than MRI; not validated for children, post-operative scans,
  3-D volumes or rare tumour types (it knows only glioma, meningioma and pituitary tumour).
- Phone photos of films or screens: measured only on simulated ones (see "Real-world pictures" below), not on real
  patients' photos.

## Training data
Public sets via `../shared/data` (see `manifest.tsv`): the Kaggle "Brain Tumor MRI Dataset" (masoudnickparvar;
built from figshare Cheng et al. 2015, SARTAJ and Br35H), Br35H (Ahmed Hamada), the TCGA-LGG multi-sequence glioma
slices (Buda et al. 2019; T1, FLAIR and T1 after contrast of 76 patients, split by patient; `mri/lgg/manifest.tsv`),
sequence and plane labels set by eye on public slices (`training/sequence_labels.tsv`) and, for the discriminator, real non-MRI
pictures of 11 kinds whose origins and licences are listed per image in each kind's `SOURCES.tsv` (some are
non-commercial: FUNSD, some ieee8023 chest X-rays, HAM10000). The MRI mirrors state no licence.

Split: {evaluation['data']['split_rule']}. Images in groups with contradictory labels are left out of training but
kept in validation and test.

| split | counts | groups |
|---|---|---|
""" + "\n".join(f"| {s} | {json.dumps(evaluation['data'][s])} | {evaluation['data']['groups_by_split'][s]} |"
               for s in ("train", "val", "test")) + f"""

Architecture: compact CNN (strided stem, {len(task.widths)} conv + separable-conv blocks, widths {list(task.widths)}),
{entry['input']['size']} px, {'RGB' if task.channels == 3 else 'grayscale'}; one trunk trained with a head for each of
`{', '.join(training.get('group') or [task.name])}`, samples weighted so that every source × sequence × label cell counts alike. Test-time augmentation: {entry.get('tta') or 'none'} (the same at evaluation and serving). Seed {training.get('seed')}, {training.get('epochs_run')} epochs, {training.get('seconds')} s on 2 CPU cores.

## Metrics (test)

- accuracy **{test['accuracy']:.4f}**, macro-F1 **{test['macro_f1']:.4f}** (n = {test['n']})
- ECE {test['ece_before_temperature']:.4f} before, **{test['ece_after_temperature']:.4f}** after temperature scaling (T = {evaluation['temperature']})
- decision thresholds (chosen on the validation split plus its two photo-like copies per image; temperature likewise): `{json.dumps(evaluation['thresholds'])}`
- operating point / abstention: `{json.dumps({k: test[k] for k in ('operating_point', 'abstention') if k in test})}`
{f"- accuracy without label-conflict groups: {test['accuracy_without_label_conflicts']:.4f}" if 'accuracy_without_label_conflicts' in test else ''}

| class | precision | recall | F1 | support |
|---|---|---|---|---|
{rows}
{kinds}
{audit_note(test)}
Figures: `confusion.png`, `reliability.png`, `training_curves.png`; raw numbers: `metrics.json`.

## Known failure modes
- The public sets carry label noise (517 rows sit in near-duplicate groups with contradictory labels; the SARTAJ part
  is known for mislabelled gliomas), so some "errors" are label errors and some "hits" may be wrong labels.
- {photo_note}
- A single slice can miss a tumour visible on other slices; a "no tumour" answer never rules one out.
"""
