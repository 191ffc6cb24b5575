"""kiln's main job until the YAML lifecycle lands: a CNN on scikit-learn's bundled digits.

Run: python examples/digits_cnn.py [--epochs 30] [--output runs/digits_cnn.keras]

Real data, no download: 1,797 8x8 handwritten digits from scikit-learn. The script holds out
a stratified 20% test split, trains with a validation split and early stopping, prints the
test accuracy, saves the model (JSON + safetensors), reloads it and checks the reloaded
model predicts the same.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import kiln
from kiln import layers


def build_model() -> kiln.Sequential:
    return kiln.Sequential([
        kiln.Input(shape=(8, 8, 1)),
        layers.Conv2D(32, 3, padding="same", activation="relu"),
        layers.BatchNormalization(),
        layers.Conv2D(32, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, padding="same", activation="relu"),
        layers.GlobalAveragePooling2D(),
        layers.Dropout(0.2),
        layers.Dense(10, activation="softmax"),
    ], name="digits_cnn")


def main(argv=None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="runs/digits_cnn.keras")
    parser.add_argument("--verbose", type=int, default=2)
    args = parser.parse_args(argv)

    kiln.utils.set_random_seed(args.seed)
    digits = load_digits()
    x = (digits.images / 16.0).astype("float32")[..., None]  # (1797, 8, 8, 1), channels_last as Keras
    y = digits.target.astype("int64")
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, stratify=y, random_state=args.seed)
    print(f"digits: {len(x_train)} training and {len(x_test)} test images of 8x8, 10 classes")

    model = build_model()
    model.summary()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    start = time.perf_counter()
    model.fit(x_train, y_train, epochs=args.epochs, batch_size=32, validation_split=0.1, verbose=args.verbose,
              callbacks=[kiln.callbacks.EarlyStopping(monitor="val_loss", patience=5, restore_best_weights=True)])
    print(f"trained in {time.perf_counter() - start:.1f}s")

    test_loss, test_accuracy = model.evaluate(x_test, y_test, verbose=0)
    print(f"test loss {test_loss:.4f}, test accuracy {test_accuracy:.4f}")

    output = Path(args.output)
    model.save(output)
    reloaded = kiln.load_model(output)
    same = np.allclose(reloaded.predict(x_test, verbose=0), model.predict(x_test, verbose=0), atol=1e-6)
    print(f"saved to {output} (reloaded model predicts the same: {same})")
    if not same:
        raise SystemExit("reloaded model differs from the trained one")
    return test_accuracy


if __name__ == "__main__":
    main()
