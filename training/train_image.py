"""Train one image model end to end: fit, calibrate, pick thresholds, export, evaluate.

    saveyourlife train discriminator|detector|typer|all [--data DIR] [--epochs N]
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from .dataset import Cache, build_cache
from .photo_variants import COPY_FOCUS, DEGRADED_SHARE, VARIANTS, build_variants, validation_with_copies
from .tasks import TASKS, ImageTask


def _augmenter(seed: int):
    import keras
    from keras import layers

    return keras.Sequential([
        layers.RandomFlip("horizontal", seed=seed),
        layers.RandomRotation(0.04, fill_mode="constant", seed=seed + 1),
        layers.RandomZoom((-0.12, 0.12), fill_mode="constant", seed=seed + 2),
        layers.RandomTranslation(0.06, 0.06, fill_mode="constant", seed=seed + 3),
        layers.RandomContrast(0.15, seed=seed + 4),
        layers.RandomBrightness(0.15, value_range=(0, 255), seed=seed + 5),
    ], name="augment")


def _class_weights(y: np.ndarray, n: int) -> dict[int, float]:
    counts = np.bincount(y, minlength=n).astype(float)
    return {i: float(len(y) / (n * c)) if c else 1.0 for i, c in enumerate(counts)}


def _training_batches(clean: np.ndarray, copies: np.ndarray | None, slots: np.ndarray, y: np.ndarray,
                      seed: int, batch: int = 32):
    """A generator factory: each epoch reshuffles, and each sample is drawn clean or as one of its degraded copies."""
    rng = np.random.default_rng(seed)

    def epoch():
        order = rng.permutation(len(y))
        for start in range(0, len(order), batch):
            take = order[start:start + batch]
            x = clean[take]
            if copies is not None:
                pick = (rng.random(len(take)) < DEGRADED_SHARE) & (slots[take] >= 0)
                if pick.any():
                    x = x.copy()
                    which = rng.integers(0, copies.shape[1], size=int(pick.sum()))
                    x[pick] = copies[slots[take][pick], which]
            yield x, y[take]

    return epoch


def fit_image_model(task: ImageTask, cache: Cache, ckpt_dir: Path, epochs: int | None, limit: int | None,
                    seed: int, photo_augment: bool = False, data_dir: Path | None = None, log=print):
    """Returns the trained Keras model, the split arrays and the training history."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    pixels = cache.rgb if task.channels == 3 else cache.gray
    splits = {}
    for split in ("train", "val", "test"):
        idx = task.split_indices(cache, split, limit, rng)
        splits[split] = (idx, np.array([task.label_of(cache.rows[i]) for i in idx], dtype=np.int64))
    (tr_idx, y_tr), (va_idx, y_va) = splits["train"], splits["val"]
    log(f"[{task.name}] train {len(tr_idx)}  val {len(va_idx)}  test {len(splits['test'][0])}")

    from .models import image_classifier

    model = image_classifier(task.size, task.channels, task.widths, len(task.labels))
    parent = ckpt_dir / f"{task.init_from}.keras" if task.init_from else None
    if parent is not None and parent.exists():
        donor = keras.models.load_model(parent, compile=False)
        model.get_layer("trunk").set_weights(donor.get_layer("trunk").get_weights())
        log(f"[{task.name}] trunk initialised from {parent.name}")

    augment = _augmenter(seed)
    copies = None
    slots = np.full(len(tr_idx), -1, dtype=np.int64)
    if photo_augment:
        # A full run shares one set of copies (all training rows) between the three models; a --limit run makes its own.
        wanted = cache.select(lambda r: r.split == "train") if limit is None else tr_idx
        variants = build_variants(cache, wanted, data_dir, task.size, ckpt_dir.parent, seed, log=log)
        copies = variants.rgb if task.channels == 3 else variants.gray
        slots = variants.slot_of(len(cache.rows))[tr_idx]
        log(f"[{task.name}] {int((slots >= 0).sum())} training images have {copies.shape[1]} photo-like copies; "
            f"{DEGRADED_SHARE:.0%} of samples are drawn degraded")
    spec = (tf.TensorSpec((None, task.size, task.size, task.channels), tf.uint8), tf.TensorSpec((None,), tf.int64))
    train_ds = (tf.data.Dataset.from_generator(_training_batches(pixels[tr_idx], copies, slots, y_tr, seed),
                                               output_signature=spec)
                .map(lambda x, y: (augment(tf.cast(x, tf.float32), training=True), y), num_parallel_calls=2)
                .prefetch(2))
    val_ds = tf.data.Dataset.from_tensor_slices((pixels[va_idx].astype(np.float32), y_va)).batch(128)

    n_epochs = epochs or task.max_epochs
    steps = n_epochs * int(np.ceil(len(tr_idx) / 32))
    # Cosine decay with a one-epoch warm-up; early stopping keeps the best validation epoch.
    schedule = keras.optimizers.schedules.CosineDecay(
        1e-4, decay_steps=max(1, steps - steps // n_epochs), alpha=0.01,
        warmup_target=task.learning_rate, warmup_steps=max(1, steps // n_epochs))
    model.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=1e-4),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    callbacks = [keras.callbacks.EarlyStopping(monitor="val_loss", patience=task.patience, restore_best_weights=True)]
    started = time.time()
    history = model.fit(train_ds, validation_data=val_ds, epochs=n_epochs,
                        class_weight=_class_weights(y_tr, len(task.labels)), callbacks=callbacks, verbose=2)
    seconds = time.time() - started
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    model.save(ckpt_dir / f"{task.name}.keras")
    arrays = {s: (pixels[i].astype(np.float32), y) for s, (i, y) in splits.items()}
    groups = {s: [cache.rows[j] for j in i] for s, (i, _) in splits.items()}
    return model, arrays, groups, {k: [float(v) for v in vals] for k, vals in history.history.items()}, seconds


def train_and_export(name: str, data_dir: Path, models_dir: Path, cache_dir: Path, epochs: int | None = None,
                     limit: int | None = None, seed: int = 1234, photo_augment: bool = True, log=print) -> dict:
    from inference.runtime import TFLiteModel

    from .export import choose_variant
    from .metrics import fit_temperature
    from .report import evaluate_task, write_reports
    from .manifest_io import update_manifest_entry

    task = TASKS[name]
    cache = build_cache(data_dir, task.size, cache_dir)
    model, arrays, rows, history, seconds = fit_image_model(task, cache, cache_dir / "checkpoints", epochs, limit, seed,
                                                            photo_augment, data_dir, log)
    (x_va, y_va), (x_te, y_te) = arrays["val"], arrays["test"]
    if photo_augment and limit is None:  # calibrate and set thresholds on the pictures the bot will meet
        x_va, y_va = validation_with_copies(task, cache, data_dir, cache_dir, seed)
    keras_val = model.predict(x_va, batch_size=128, verbose=0)
    keras_test = model.predict(x_te, batch_size=128, verbose=0)
    provisional_t = fit_temperature(keras_val, y_va)
    variant, content, variants = choose_variant(model, x_te, y_te, keras_test, provisional_t)
    log(f"[{task.name}] export variant {variant}: {variants[variant]}")

    # Everything reported from here on is measured on the exported LiteRT model, as served.
    served = TFLiteModel(content)
    evaluation = evaluate_task(task, served.run_in_chunks(x_va, tta=task.tta), y_va,
                               served.run_in_chunks(x_te, tta=task.tta), y_te, rows)

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
        "temperature": evaluation["temperature"],
        "tta": task.tta,
        "thresholds": evaluation["thresholds"],
        "metrics": evaluation["test"],
        "export": {"variant": variant, "candidates": variants},
        "training": {"seed": seed, "epochs_run": len(history.get("loss", [])), "seconds": round(seconds, 1),
                     "photo_augmentation": {"copies": VARIANTS, "focus": [list(f) for f in COPY_FOCUS],
                                            "share": DEGRADED_SHARE} if photo_augment else None,
                     "architecture": {"widths": list(task.widths), "size": task.size, "init_from": task.init_from}},
        "data": evaluation["data"],
    }
    entry = update_manifest_entry(models_dir, task.name, entry, content)
    write_reports(task, models_dir, entry, evaluation, history)
    log(f"[{task.name}] test metrics: {json.dumps(evaluation['test']['headline'])}")
    return entry
