"""Train image models end to end: fit one trunk per group with a head per model, calibrate, pick thresholds,
export one `.tflite` per head, evaluate.

    saveyourlife train discriminator|detector|typer|sequence|plane|images|all [--data DIR] [--epochs N]
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .dataset import Cache, build_cache
from .photo_variants import COPY_FOCUS, DEGRADED_SHARE, VARIANTS, build_variants, validation_with_copies
from .tasks import GROUPS, TASKS, ImageTask, group_of


def _augmenter(seed: int, intensity: bool):
    import keras
    from keras import layers

    geometric = [
        layers.RandomFlip("horizontal", seed=seed),
        layers.RandomRotation(0.04, fill_mode="constant", seed=seed + 1),
        layers.RandomZoom((-0.2, 0.15), fill_mode="constant", seed=seed + 2),
        layers.RandomTranslation(0.06, 0.06, fill_mode="constant", seed=seed + 3),
    ]
    tonal = [
        layers.RandomContrast(0.3, seed=seed + 4),
        layers.RandomBrightness(0.15, value_range=(0, 255), seed=seed + 5),
    ]
    return keras.Sequential(geometric + (tonal if intensity else []), name="augment")


# Per-image gamma drawn from this range: scanners and sequences differ in how bright tissue is relative to
# tumour, and the public set ties "bright contrast-enhanced look" to "tumour"; a random tone curve weakens that cue.
GAMMA_RANGE = (0.6, 1.6)


def _random_gamma(x, seed: int):
    import tensorflow as tf

    n = tf.shape(x)[0]
    log_gamma = tf.random.uniform((n, 1, 1, 1), float(np.log(GAMMA_RANGE[0])), float(np.log(GAMMA_RANGE[1])), seed=seed)
    return 255.0 * tf.pow(tf.clip_by_value(x / 255.0, 0.0, 1.0), tf.exp(log_gamma))


def _balanced_weights(task: ImageTask, rows: list, y: np.ndarray) -> np.ndarray:
    """Sample weights that give every (source, sequence, label) cell of a head the same total weight, clipped.

    Without this the head would learn mostly from the largest cells (Kaggle's contrast-enhanced tumours, Br35H's
    healthy slices), which is where the sequence shortcut comes from.
    """
    cells = [(r.source, r.sequence, int(label)) for r, label in zip(rows, y)]
    counts = Counter(cells)
    w = np.array([1.0 / counts[c] for c in cells])
    w *= len(w) / w.sum()
    w = np.clip(w, 0.25, 4.0)
    return (w * len(w) / w.sum()).astype(np.float32)


@dataclass
class HeadData:
    """Rows of one split and, per head, each row's label (-1 where that head does not learn from the row)."""

    idx: np.ndarray
    labels: dict[str, np.ndarray]

    def weights(self, tasks: list[ImageTask], rows: list, balanced: bool) -> dict[str, np.ndarray]:
        out = {}
        for task in tasks:
            y = self.labels[task.name]
            known = y >= 0
            w = np.zeros(len(y), dtype=np.float32)
            if known.any():
                w[known] = _balanced_weights(task, [rows[i] for i in self.idx[known]], y[known]) if balanced else 1.0
            out[task.name] = w
        return out


def _head_data(tasks: list[ImageTask], cache: Cache, split: str, limit: int | None, rng) -> HeadData:
    per_task = {t.name: set(t.split_indices(cache, split, limit, rng).tolist()) for t in tasks}
    idx = np.array(sorted(set().union(*per_task.values())), dtype=np.int64)
    labels = {t.name: np.array([t.label_of(cache.rows[i]) if i in per_task[t.name] else -1 for i in idx], dtype=np.int64)
              for t in tasks}
    return HeadData(idx, labels)


def _training_batches(clean: np.ndarray, copies: np.ndarray | None, slots: np.ndarray, labels: dict[str, np.ndarray],
                      weights: dict[str, np.ndarray], seed: int, batch: int = 32):
    """A generator factory: each epoch reshuffles, and each sample is drawn clean or as one of its degraded copies."""
    rng = np.random.default_rng(seed)
    n = len(slots)

    def epoch():
        order = rng.permutation(n)
        for start in range(0, n, batch):
            take = order[start:start + batch]
            x = clean[take]
            if copies is not None:
                pick = (rng.random(len(take)) < DEGRADED_SHARE) & (slots[take] >= 0)
                if pick.any():
                    x = x.copy()
                    which = rng.integers(0, copies.shape[1], size=int(pick.sum()))
                    x[pick] = copies[slots[take][pick], which]
            yield (x, {k: np.maximum(v[take], 0) for k, v in labels.items()},
                   {k: v[take] for k, v in weights.items()})

    return epoch


def fit_image_group(tasks: list[ImageTask], cache: Cache, ckpt_dir: Path, epochs: int | None, limit: int | None,
                    seed: int, photo_augment: bool = False, data_dir: Path | None = None, log=print):
    """Train one trunk with a head per task. Returns the trained model, the per-split data and the history."""
    import keras
    import tensorflow as tf

    first = tasks[0]
    assert all((t.size, t.channels, t.widths, t.intensity_augment) ==
               (first.size, first.channels, first.widths, first.intensity_augment) for t in tasks)
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    pixels = cache.rgb if first.channels == 3 else cache.gray
    splits = {split: _head_data(tasks, cache, split, limit, rng) for split in ("train", "val", "test")}
    train, val = splits["train"], splits["val"]
    for t in tasks:
        log(f"[{t.name}] train {(train.labels[t.name] >= 0).sum()}  val {(val.labels[t.name] >= 0).sum()}  "
            f"test {(splits['test'].labels[t.name] >= 0).sum()}")

    from .models import image_multi_head

    model = image_multi_head(first.size, first.channels, first.widths, {t.name: len(t.labels) for t in tasks})
    augment = _augmenter(seed, first.intensity_augment)
    tone = (lambda x: _random_gamma(x, seed)) if first.intensity_augment else (lambda x: x)
    copies = None
    slots = np.full(len(train.idx), -1, dtype=np.int64)
    if photo_augment:
        # A full run shares one set of copies (all training rows) between the models; a --limit run makes its own.
        wanted = cache.select(lambda r: r.split == "train") if limit is None else train.idx
        variants = build_variants(cache, wanted, data_dir, first.size, ckpt_dir.parent, seed, log=log)
        copies = variants.rgb if first.channels == 3 else variants.gray
        slots = variants.slot_of(len(cache.rows))[train.idx]
        log(f"{int((slots >= 0).sum())} training images have {copies.shape[1]} photo-like copies; "
            f"{DEGRADED_SHARE:.0%} of samples are drawn degraded")
    names = [t.name for t in tasks]
    shape = (None, first.size, first.size, first.channels)
    spec = (tf.TensorSpec(shape, tf.uint8), {k: tf.TensorSpec((None,), tf.int64) for k in names},
            {k: tf.TensorSpec((None,), tf.float32) for k in names})
    batches = _training_batches(pixels[train.idx], copies, slots, train.labels,
                                train.weights(tasks, cache.rows, balanced=True), seed)
    train_ds = (tf.data.Dataset.from_generator(batches, output_signature=spec)
                .map(lambda x, y, w: (augment(tone(tf.cast(x, tf.float32)), training=True), y, w),
                     num_parallel_calls=2)
                .prefetch(2))
    val_w = val.weights(tasks, cache.rows, balanced=False)
    val_ds = tf.data.Dataset.from_tensor_slices((pixels[val.idx].astype(np.float32),
                                                 {k: np.maximum(v, 0) for k, v in val.labels.items()},
                                                 val_w)).batch(128)

    n_epochs = epochs or max(t.max_epochs for t in tasks)
    steps = n_epochs * int(np.ceil(len(train.idx) / 32))
    # Cosine decay with a one-epoch warm-up; early stopping keeps the best validation epoch.
    schedule = keras.optimizers.schedules.CosineDecay(
        1e-4, decay_steps=max(1, steps - steps // n_epochs), alpha=0.01,
        warmup_target=first.learning_rate, warmup_steps=max(1, steps // n_epochs))
    model.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=1e-4),
                  loss={k: keras.losses.SparseCategoricalCrossentropy(from_logits=True) for k in names},
                  weighted_metrics={k: ["accuracy"] for k in names})
    callbacks = [keras.callbacks.EarlyStopping(monitor="val_loss", patience=min(t.patience for t in tasks),
                                               restore_best_weights=True)]
    started = time.time()
    history = model.fit(train_ds, validation_data=val_ds, epochs=n_epochs, callbacks=callbacks, verbose=2)
    seconds = time.time() - started
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    model.save(ckpt_dir / f"{'_'.join(names)}.keras")
    return model, splits, {k: [float(v) for v in vals] for k, vals in history.history.items()}, seconds


def _task_rows(task: ImageTask, data: HeadData, rows: list) -> list:
    return [rows[i] for i in data.idx[data.labels[task.name] >= 0]]


def _task_arrays(task: ImageTask, data: HeadData, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keep = data.labels[task.name] >= 0
    return pixels[data.idx[keep]].astype(np.float32), data.labels[task.name][keep]


def train_and_export(name: str, data_dir: Path, models_dir: Path, cache_dir: Path, epochs: int | None = None,
                     limit: int | None = None, seed: int = 1234, photo_augment: bool = True, log=print) -> dict:
    """Train the group that `name` belongs to and export one `.tflite` file per head."""
    import keras

    from inference.runtime import TFLiteModel

    from .export import choose_variant
    from .manifest_io import update_manifest_entry
    from .metrics import fit_temperature
    from .report import data_summary, fit_on_validation, validation_figures, write_history

    tasks = [TASKS[n] for n in GROUPS[group_of(name)]]
    first = tasks[0]
    cache = build_cache(data_dir, first.size, cache_dir)
    model, splits, history, seconds = fit_image_group(tasks, cache, cache_dir / "checkpoints", epochs, limit, seed,
                                                      photo_augment, data_dir, log)
    pixels = cache.rgb if first.channels == 3 else cache.gray
    entries = {}
    for task in tasks:
        head = keras.Model(model.input, model.get_layer(f"{task.name}_logits").output, name=task.name)
        x_va, y_va = _task_arrays(task, splits["val"], pixels)
        if photo_augment and limit is None:  # calibrate and set thresholds on the pictures the bot will meet
            x_va, y_va = validation_with_copies(task, cache, data_dir, cache_dir, seed)
        keras_val = head.predict(x_va, batch_size=128, verbose=0)
        provisional_t = fit_temperature(keras_val, y_va)
        # The export variant is chosen on validation.
        variant, content, variants = choose_variant(head, x_va, y_va, keras_val, provisional_t)
        log(f"[{task.name}] export variant {variant}: {variants[variant]}")

        # Temperature and thresholds are fitted on the exported LiteRT model's outputs, as served; the test split
        # is not read here: `saveyourlife evaluate` scores it, once per release, and writes the model cards.
        val_logits = TFLiteModel(content).run_in_chunks(x_va, tta=task.tta)
        temperature, thresholds = fit_on_validation(task, val_logits, y_va)
        head_history = {k.replace(f"{task.name}_", ""): v for k, v in history.items()
                        if task.name in k or k in ("loss", "val_loss")}
        models_dir.mkdir(parents=True, exist_ok=True)
        (models_dir / f"{task.name}.tflite").write_bytes(content)
        entry = {
            "file": f"{task.name}.tflite",
            "kind": "image",
            "labels": list(task.labels),
            "positive_label": task.positive,
            "input": {"size": task.size, "channels": task.channels, "dtype": "float32", "range": "0-255"},
            "preprocessing": "inference.imaging.to_tensor: EXIF transpose, 8-bit RGB, pad to square (black), "
                             f"bilinear resize to {task.size}px, {'RGB' if task.channels == 3 else 'grayscale (L)'}",
            "temperature": temperature,
            "tta": task.tta,
            "thresholds": thresholds,
            "metrics": validation_figures(task, val_logits, y_va, temperature),
            "export": {"variant": variant, "chosen_on": "validation", "candidates": variants},
            "training": {"seed": seed, "epochs_run": len(history.get("loss", [])), "seconds": round(seconds, 1),
                         "group": list(GROUPS[group_of(name)]),
                         "photo_augmentation": {"copies": VARIANTS, "focus": [list(f) for f in COPY_FOCUS],
                                                "share": DEGRADED_SHARE} if photo_augment else None,
                         "balanced_by": "source x sequence x label",
                         "gamma_range": list(GAMMA_RANGE) if task.intensity_augment else None,
                         "architecture": {"widths": list(task.widths), "size": task.size, "heads": len(tasks)}},
            "data": data_summary(task, {s: _task_rows(task, splits[s], cache.rows) for s in ("train", "val", "test")}),
        }
        entry = update_manifest_entry(models_dir, task.name, entry, content)
        write_history(task, models_dir, head_history)
        log(f"[{task.name}] validation: {json.dumps(entry['metrics'])}; score the test split with `saveyourlife evaluate`")
        entries[task.name] = entry
    return entries
