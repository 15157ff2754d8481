"""The three image networks and the intent network, as readable Keras builders.

Image nets take uint8-range pixels and rescale inside the graph, so the
`.tflite` files need no preprocessing beyond `inference.imaging.to_tensor`.
"""

from __future__ import annotations

import keras
from keras import layers

# Faster-moving BatchNorm statistics: with the Keras default (0.99) validation accuracy swung between
# 0.50 and 0.95 from one epoch to the next in our first runs, because the moving averages lagged the weights.
BN_MOMENTUM = 0.9


def _conv_block(x, filters: int, name: str):
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv1")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn1")(x)
    x = layers.ReLU(name=f"{name}_relu1")(x)
    x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_sep2")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn2")(x)
    x = layers.ReLU(name=f"{name}_relu2")(x)
    return layers.MaxPooling2D(2, name=f"{name}_pool")(x)


def image_trunk(size: int, channels: int, widths: tuple[int, ...]) -> keras.Model:
    """A compact CNN trunk: one full conv then one depthwise-separable conv per block."""
    inputs = keras.Input((size, size, channels), name="pixels")
    x = layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)
    # A strided stem: full-resolution convolutions dominated CPU time (measured, bench in README).
    x = layers.Conv2D(widths[0], 3, strides=2, padding="same", use_bias=False, name="stem_conv")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name="stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    for i, width in enumerate(widths):
        x = _conv_block(x, width, f"block{i + 1}")
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inputs, x, name="trunk")


def image_classifier(size: int, channels: int, widths: tuple[int, ...], n_classes: int,
                     dropout: float = 0.3, trunk: keras.Model | None = None) -> keras.Model:
    """Trunk + dropout + dense head that outputs logits (softmax is applied after temperature)."""
    trunk = trunk or image_trunk(size, channels, widths)
    inputs = keras.Input((size, size, channels), name="pixels")
    x = trunk(inputs)
    x = layers.Dropout(dropout, name="dropout")(x)
    logits = layers.Dense(n_classes, name="logits")(x)
    return keras.Model(inputs, logits, name="classifier")


def image_multi_head(size: int, channels: int, widths: tuple[int, ...], heads: dict[str, int],
                     dropout: float = 0.3) -> keras.Model:
    """One trunk, one dropout + dense logits head per task (`<task>_logits`); each head exports on its own."""
    trunk = image_trunk(size, channels, widths)
    inputs = keras.Input((size, size, channels), name="pixels")
    features = trunk(inputs)
    outputs = {}
    for name, n_classes in heads.items():
        x = layers.Dropout(dropout, name=f"{name}_dropout")(features)
        outputs[name] = layers.Dense(n_classes, name=f"{name}_logits")(x)
    return keras.Model(inputs, outputs, name="_".join(heads))


def intent_classifier(n_features: int, n_intents: int, hidden: int = 128, dropout: float = 0.4) -> keras.Model:
    """The chatbot's bag-of-stems network, as in the original project, made small."""
    inputs = keras.Input((n_features,), name="bag")
    x = layers.Dense(hidden, activation="relu", name="hidden")(inputs)
    x = layers.Dropout(dropout, name="dropout")(x)
    logits = layers.Dense(n_intents, name="logits")(x)
    return keras.Model(inputs, logits, name="intents")
