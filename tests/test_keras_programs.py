"""Whole Keras 3 programs, ported by changing only the import: ``import kiln as keras``.

Each program below is written as a Keras user writes it from the official guides and
tutorials (the TensorFlow beginner quickstart, the functional-API guide, the autoencoder blog
post, the IMDB bidirectional-LSTM and simple-MNIST-convnet examples, the save-and-load guide,
"image classification from scratch"), with two changes forced by the test setting: the data
are small (scikit-learn's 8x8 digits, or arrays generated in the program) and the epochs few.

Every program runs as its own text (``exec``) in a fresh namespace inside a temporary working
directory, so the text is exactly what a user would run. The checks: it runs, it learns
(the training loss falls), and its outputs have the right shapes.
"""

from __future__ import annotations

import textwrap

import numpy as np
import pytest


def run_program(source: str, tmp_path, monkeypatch) -> dict:
    """Execute a program's text in a fresh namespace, with ``tmp_path`` as the working directory."""
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__main__"}
    exec(compile(textwrap.dedent(source), "<keras program>", "exec"), namespace)
    return namespace


def assert_learns(history, key="loss"):
    losses = history.history[key]
    assert np.all(np.isfinite(losses)), losses
    assert losses[-1] < losses[0], f"{key} did not fall: {losses}"


# ---------------------------------------------------------------------- 1. TF beginner quickstart
BEGINNER_QUICKSTART = """
import kiln as keras
import numpy as np
from sklearn.datasets import load_digits

keras.utils.set_random_seed(0)

digits = load_digits()
x = digits.images.astype("float32") / 16.0  # like MNIST's x / 255.0
y = digits.target
x_train, x_test = x[:1500], x[1500:]
y_train, y_test = y[:1500], y[1500:]

model = keras.models.Sequential([
  keras.layers.Flatten(input_shape=(8, 8)),
  keras.layers.Dense(128, activation='relu'),
  keras.layers.Dropout(0.2),
  keras.layers.Dense(10)
])

predictions = model.predict(x_train[:1])
loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
initial_loss = loss_fn(y_train[:1], predictions).numpy()

model.compile(optimizer='adam',
              loss=loss_fn,
              metrics=['accuracy'])
history = model.fit(x_train, y_train, epochs=5)
test_loss, test_acc = model.evaluate(x_test,  y_test, verbose=2)

probability_model = keras.Sequential([
  model,
  keras.layers.Softmax()
])
probabilities = probability_model.predict(x_test[:5])
"""


def test_beginner_quickstart(tmp_path, monkeypatch):
    ns = run_program(BEGINNER_QUICKSTART, tmp_path, monkeypatch)
    assert ns["predictions"].shape == (1, 10)
    assert 0.5 < float(ns["initial_loss"]) < 5  # roughly log(10) for an untrained model
    assert_learns(ns["history"])
    assert ns["test_acc"] > 0.85
    probabilities = ns["probabilities"]
    assert probabilities.shape == (5, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), np.ones(5), rtol=1e-5)


# ---------------------------------------------------------------------- 2. functional API: multiple inputs and outputs
FUNCTIONAL_MULTI_INPUT = """
import kiln as keras
from kiln import layers
import numpy as np

keras.utils.set_random_seed(0)

num_tags = 12  # Number of unique issue tags
num_words = 100  # Size of vocabulary obtained when preprocessing text data
num_departments = 4  # Number of departments for predictions

title_input = keras.Input(shape=(None,), name="title")  # Variable-length sequence of ints
body_input = keras.Input(shape=(None,), name="body")  # Variable-length sequence of ints
tags_input = keras.Input(shape=(num_tags,), name="tags")  # Binary vectors of size `num_tags`

# Embed each word in the title into a 16-dimensional vector
title_features = layers.Embedding(num_words, 16)(title_input)
# Embed each word in the text into a 16-dimensional vector
body_features = layers.Embedding(num_words, 16)(body_input)

# Reduce sequence of embedded words in the title into a single 16-dimensional vector
title_features = layers.LSTM(16)(title_features)
# Reduce sequence of embedded words in the body into a single 8-dimensional vector
body_features = layers.LSTM(8)(body_features)

# Merge all available features into a single large vector via concatenation
x = layers.concatenate([title_features, body_features, tags_input])

# Stick a logistic regression for priority prediction on top of the features
priority_pred = layers.Dense(1, name="priority")(x)
# Stick a department classifier on top of the features
department_pred = layers.Dense(num_departments, name="department")(x)

# Instantiate an end-to-end model predicting both priority and department
model = keras.Model(
    inputs=[title_input, body_input, tags_input],
    outputs={"priority": priority_pred, "department": department_pred},
)

model.compile(
    optimizer=keras.optimizers.RMSprop(1e-2),
    loss={
        "priority": keras.losses.BinaryCrossentropy(from_logits=True),
        "department": keras.losses.CategoricalCrossentropy(from_logits=True),
    },
    loss_weights={"priority": 1.0, "department": 0.2},
)

# Dummy input data
title_data = np.random.randint(num_words, size=(320, 10))
body_data = np.random.randint(num_words, size=(320, 20))
tags_data = np.random.randint(2, size=(320, num_tags)).astype("float32")

# Dummy target data (that depend on the tags, so there is something to learn)
priority_targets = tags_data[:, :1]
dept_targets = keras.utils.to_categorical(tags_data[:, 0] + 2 * tags_data[:, 1], num_departments)

history = model.fit(
    {"title": title_data, "body": body_data, "tags": tags_data},
    {"priority": priority_targets, "department": dept_targets},
    epochs=4,
    batch_size=32,
)
outputs = model.predict({"title": title_data[:3], "body": body_data[:3], "tags": tags_data[:3]})
"""


def test_functional_multi_input_multi_output(tmp_path, monkeypatch):
    ns = run_program(FUNCTIONAL_MULTI_INPUT, tmp_path, monkeypatch)
    assert_learns(ns["history"])
    outputs = ns["outputs"]
    assert outputs["priority"].shape == (3, 1) and outputs["department"].shape == (3, 4)
    assert ns["x"].shape == (None, 16 + 8 + 12)


# ---------------------------------------------------------------------- 3. convolutional autoencoder
CONV_AUTOENCODER = """
import kiln as keras
from kiln import layers
import numpy as np
from sklearn.datasets import load_digits

keras.utils.set_random_seed(0)

x = load_digits().images.astype("float32") / 16.0
x = np.reshape(x, (len(x), 8, 8, 1))
x_train, x_test = x[:1500], x[1500:]

input_img = keras.Input(shape=(8, 8, 1))
x = layers.ZeroPadding2D(padding=2)(input_img)  # 12 x 12: pools twice without remainder
x = layers.Conv2D(16, (3, 3), activation='relu', padding='same')(x)
x = layers.MaxPooling2D((2, 2), padding='same')(x)
x = layers.Conv2D(8, (3, 3), activation='relu', padding='same')(x)
encoded = layers.MaxPooling2D((2, 2), padding='same')(x)

# at this point the representation is (3, 3, 8)

x = layers.Conv2D(8, (3, 3), activation='relu', padding='same')(encoded)
x = layers.UpSampling2D((2, 2))(x)
x = layers.Conv2D(16, (3, 3), activation='relu', padding='same')(x)
x = layers.UpSampling2D((2, 2))(x)
x = layers.Cropping2D(cropping=((2, 2), (2, 2)))(x)
decoded = layers.Conv2D(1, (3, 3), activation='sigmoid', padding='same')(x)

autoencoder = keras.Model(input_img, decoded)
autoencoder.compile(optimizer='adam', loss='binary_crossentropy')

history = autoencoder.fit(x_train, x_train,
                          epochs=5,
                          batch_size=64,
                          shuffle=True,
                          validation_data=(x_test, x_test))

encoder = keras.Model(input_img, encoded)
encoded_imgs = encoder.predict(x_test)
decoded_imgs = autoencoder.predict(x_test)
"""


def test_conv_autoencoder(tmp_path, monkeypatch):
    ns = run_program(CONV_AUTOENCODER, tmp_path, monkeypatch)
    assert_learns(ns["history"])
    assert_learns(ns["history"], "val_loss")
    n_test = len(ns["x_test"])
    assert ns["encoded"].shape == (None, 3, 3, 8)
    assert ns["encoded_imgs"].shape == (n_test, 3, 3, 8)
    assert ns["decoded_imgs"].shape == (n_test, 8, 8, 1)
    assert 0 <= ns["decoded_imgs"].min() and ns["decoded_imgs"].max() <= 1


# ---------------------------------------------------------------------- 4. bidirectional LSTM text classifier
BIDIRECTIONAL_LSTM_IMDB = """
import kiln as keras
from kiln import layers
import numpy as np

keras.utils.set_random_seed(0)

max_features = 200  # Only consider the top 200 words
maxlen = 24  # Only consider the first 24 words of each review

# Input for variable-length sequences of integers
inputs = keras.Input(shape=(None,), dtype="int32")
# Embed each integer in a 32-dimensional vector
x = layers.Embedding(max_features, 32)(inputs)
# Add 2 bidirectional LSTMs
x = layers.Bidirectional(layers.LSTM(16, return_sequences=True))(x)
x = layers.Bidirectional(layers.LSTM(16))(x)
# Add a classifier
outputs = layers.Dense(1, activation="sigmoid")(x)
model = keras.Model(inputs, outputs)
model.summary()

# Reviews as word ids (2 and up); a positive review contains the word "great" (id 1).
rng = np.random.default_rng(0)
x_train = rng.integers(2, max_features, size=(480, maxlen))
y_train = rng.integers(0, 2, size=(480,))
positive = np.flatnonzero(y_train == 1)
x_train[positive, rng.integers(0, maxlen, size=len(positive))] = 1
x_val, y_val = x_train[400:], y_train[400:]
x_train, y_train = x_train[:400], y_train[:400]

model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="binary_crossentropy", metrics=["accuracy"])
history = model.fit(x_train, y_train, batch_size=32, epochs=4, validation_data=(x_val, y_val))
scores = model.predict(x_val)
"""


def test_bidirectional_lstm_text_classifier(tmp_path, monkeypatch):
    ns = run_program(BIDIRECTIONAL_LSTM_IMDB, tmp_path, monkeypatch)
    assert_learns(ns["history"])
    assert ns["history"].history["accuracy"][-1] > 0.6
    assert ns["scores"].shape == (80, 1)
    assert ((0 <= ns["scores"]) & (ns["scores"] <= 1)).all()


# ---------------------------------------------------------------------- 5. TimeDistributed sequence tagger
TIME_DISTRIBUTED_TAGGER = """
import kiln as keras
from kiln import layers
import numpy as np

keras.utils.set_random_seed(0)

vocab_size, num_tags, maxlen = 50, 5, 12

# Sentences of word ids; each word's tag is a property of the word (like a part of speech).
sentences = np.random.randint(1, vocab_size, size=(600, maxlen))
tags = sentences % num_tags

model = keras.Sequential([
    keras.Input(shape=(maxlen,), dtype="int32"),
    layers.Embedding(vocab_size, 32),
    layers.Bidirectional(layers.LSTM(32, return_sequences=True)),
    layers.TimeDistributed(layers.Dense(num_tags, activation="softmax")),
])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
history = model.fit(sentences[:500], tags[:500], batch_size=32, epochs=5, validation_split=0.1)

predicted_tags = np.argmax(model.predict(sentences[500:]), axis=-1)
tag_accuracy = np.mean(predicted_tags == tags[500:])
"""


def test_time_distributed_sequence_tagger(tmp_path, monkeypatch):
    ns = run_program(TIME_DISTRIBUTED_TAGGER, tmp_path, monkeypatch)
    assert_learns(ns["history"])
    assert ns["predicted_tags"].shape == (100, 12)
    assert ns["tag_accuracy"] > 0.5  # chance is 0.2


# ---------------------------------------------------------------------- 6. callbacks, checkpoints, save and load
CALLBACKS_SAVE_LOAD = """
import kiln as keras
from kiln import layers
import numpy as np
from sklearn.datasets import load_digits

keras.utils.set_random_seed(0)

digits = load_digits()
x = digits.data.astype("float32") / 16.0  # (1797, 64)
y = digits.target
x_train, x_test = x[:1500], x[1500:]
y_train, y_test = y[:1500], y[1500:]


def create_model():
    model = keras.Sequential([
        keras.Input(shape=(64,)),
        layers.Dense(64, activation="relu"),
        layers.Dropout(0.2),
        layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer="adam",
                  loss="sparse_categorical_crossentropy",
                  metrics=["sparse_categorical_accuracy"])
    return model


model = create_model()
callbacks = [
    keras.callbacks.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True),
    keras.callbacks.ModelCheckpoint("best_model.keras", monitor="val_loss", save_best_only=True),
]
history = model.fit(x_train, y_train, epochs=30, batch_size=64, validation_split=0.2,
                    callbacks=callbacks, verbose=0)

loss, acc = model.evaluate(x_test, y_test, verbose=2)
print("Trained model, accuracy: {:5.2f}%".format(100 * acc))

model.save("my_model.keras")
new_model = keras.models.load_model("my_model.keras")
new_model.summary()
new_loss, new_acc = new_model.evaluate(x_test, y_test, verbose=2)

best_model = keras.models.load_model("best_model.keras")
"""


def test_callbacks_checkpoint_save_and_load(tmp_path, monkeypatch):
    ns = run_program(CALLBACKS_SAVE_LOAD, tmp_path, monkeypatch)
    assert_learns(ns["history"])
    assert_learns(ns["history"], "val_loss")
    assert len(ns["history"].history["loss"]) <= 30
    assert (tmp_path / "best_model.keras").is_file() and (tmp_path / "my_model.keras").is_file()
    assert ns["acc"] > 0.85
    x_test = ns["x_test"]
    np.testing.assert_allclose(ns["new_model"].predict(x_test, verbose=0), ns["model"].predict(x_test, verbose=0),
                               rtol=1e-6, atol=1e-7)
    assert ns["new_loss"] == pytest.approx(ns["loss"], rel=1e-5)
    assert ns["best_model"].predict(x_test[:4], verbose=0).shape == (4, 10)


# ---------------------------------------------------------------------- 7. simple convnet with one-hot labels
SIMPLE_CONVNET = """
import kiln as keras
from kiln import layers
import numpy as np
from sklearn.datasets import load_digits

keras.utils.set_random_seed(0)

# Model / data parameters
num_classes = 10
input_shape = (8, 8, 1)

# Load the data and split it between train and test sets
digits = load_digits()
x_train, x_test = digits.images[:1500], digits.images[1500:]
y_train, y_test = digits.target[:1500], digits.target[1500:]

# Scale images to the [0, 1] range
x_train = x_train.astype("float32") / 16
x_test = x_test.astype("float32") / 16
# Make sure images have shape (8, 8, 1)
x_train = np.expand_dims(x_train, -1)
x_test = np.expand_dims(x_test, -1)
print("x_train shape:", x_train.shape)

# convert class vectors to binary class matrices
y_train = keras.utils.to_categorical(y_train, num_classes)
y_test = keras.utils.to_categorical(y_test, num_classes)

model = keras.Sequential(
    [
        keras.Input(shape=input_shape),
        layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Flatten(),
        layers.Dropout(0.5),
        layers.Dense(num_classes, activation="softmax"),
    ]
)
model.summary()

batch_size = 64
epochs = 10

model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
history = model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs, validation_split=0.1)

score = model.evaluate(x_test, y_test, verbose=0)
print("Test loss:", score[0])
print("Test accuracy:", score[1])
"""


def test_simple_convnet_with_to_categorical(tmp_path, monkeypatch):
    ns = run_program(SIMPLE_CONVNET, tmp_path, monkeypatch)
    assert ns["y_train"].shape == (1500, 10)
    assert_learns(ns["history"])
    assert ns["score"][1] > 0.8
    assert ns["model"].predict(ns["x_test"][:3], verbose=0).shape == (3, 10)


# ---------------------------------------------------------------------- 8. small Xception-like network
XCEPTION_FROM_SCRATCH = """
import kiln as keras
from kiln import layers
import numpy as np
from sklearn.datasets import load_digits

keras.utils.set_random_seed(0)

digits = load_digits()
images = digits.images[..., None].astype("float32")  # (1797, 8, 8, 1), values 0..16
labels = digits.target


def make_model(input_shape, num_classes):
    inputs = keras.Input(shape=input_shape)

    # Entry block
    x = layers.Rescaling(1.0 / 16)(inputs)
    x = layers.Conv2D(16, 3, strides=1, padding="same")(x)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)

    previous_block_activation = x  # Set aside residual

    for size in [16, 32]:
        x = layers.Activation("relu")(x)
        x = layers.SeparableConv2D(size, 3, padding="same")(x)
        x = layers.BatchNormalization()(x)

        x = layers.Activation("relu")(x)
        x = layers.SeparableConv2D(size, 3, padding="same")(x)
        x = layers.BatchNormalization()(x)

        x = layers.MaxPooling2D(3, strides=2, padding="same")(x)

        # Project residual
        residual = layers.Conv2D(size, 1, strides=2, padding="same")(previous_block_activation)
        x = layers.add([x, residual])  # Add back residual
        previous_block_activation = x  # Set aside next residual

    x = layers.SeparableConv2D(64, 3, padding="same")(x)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)

    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.25)(x)
    outputs = layers.Dense(num_classes, activation=None)(x)
    return keras.Model(inputs, outputs)


model = make_model(input_shape=(8, 8, 1), num_classes=10)

model.compile(
    optimizer=keras.optimizers.Adam(3e-3),
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    metrics=[keras.metrics.SparseCategoricalAccuracy(name="acc")],
)
history = model.fit(images[:1500], labels[:1500], epochs=4, batch_size=64,
                    validation_data=(images[1500:], labels[1500:]))

predictions = model.predict(images[1500:1505])
"""


def test_xception_like_network_with_separable_convs_and_residuals(tmp_path, monkeypatch):
    ns = run_program(XCEPTION_FROM_SCRATCH, tmp_path, monkeypatch)
    assert_learns(ns["history"])
    assert ns["history"].history["acc"][-1] > 0.5
    assert ns["predictions"].shape == (5, 10)
