"""Saving and loading models and weights: round trips, compile settings, refusals, and no pickle.

What a saved model must give back: the same predictions (zip ``.keras``/``.kiln`` and folder
formats), the same compile settings (the loaded model evaluates to the same numbers), and
weights that load only into the same architecture. What it must refuse, with a
``SerializationError``: anything that is not a kiln model — above all a pickle, which is never
unpickled.
"""

from __future__ import annotations

import io
import json
import pathlib
import pickle
import re
import sys
import zipfile

import numpy as np
import pytest
import torch

import kiln
from kiln import layers as L
from kiln.errors import KilnValueError, SerializationError, ShapeError


# ---------------------------------------------------------------------- custom classes
@kiln.saving.register_serializable(package="kiln_tests")
class Scale(L.Layer):
    """A custom layer: one learned factor per feature, times a constant ``factor``."""

    def __init__(self, factor=1.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def build(self, input_shape):
        self.w = self.add_weight("w", (input_shape[-1],), initializer="random_normal")

    def call(self, x):
        return x * self.w * self.factor

    def get_config(self):
        config = super().get_config()
        config["factor"] = self.factor
        return config


@kiln.saving.register_serializable(package="kiln_tests")
class TwoTower(kiln.Model):
    """A subclassed model with its own ``get_config``/``from_config``."""

    def __init__(self, hidden=8, outputs=2, **kwargs):
        super().__init__(**kwargs)
        self.hidden, self.n_outputs = hidden, outputs
        self.body = L.Dense(hidden, activation="relu")
        self.scale = Scale(factor=2.0)
        self.head = L.Dense(outputs)

    def call(self, x):
        return self.head(self.scale(self.body(x)))

    def get_config(self):
        return {"hidden": self.hidden, "outputs": self.n_outputs, "name": self.name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class Unregistered(L.Layer):
    """A custom layer nobody registered: found through its module (this one) while that is imported."""

    def call(self, x):
        return x + 1.0


class _MakeMarker:
    """Unpickling this creates a file: proof that a loader ran pickle."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


# ---------------------------------------------------------------------- models and data
X = np.random.default_rng(0).random((16, 5)).astype("float32")
X2 = np.random.default_rng(1).random((16, 3)).astype("float32")
Y = np.random.default_rng(2).random((16, 2)).astype("float32")
Y2 = np.random.default_rng(3).random((16, 1)).astype("float32")


def sequential():
    return kiln.Sequential([kiln.Input(shape=(5,)), L.Dense(8, activation="relu"), L.BatchNormalization(),
                            Scale(factor=0.5), L.Dropout(0.3), L.Dense(2)])


def functional():
    """Two inputs, two outputs, a shared custom layer on one branch."""
    a, b = kiln.Input(shape=(5,), name="a"), kiln.Input(shape=(3,), name="b")
    h = L.Concatenate()([L.Dense(4, activation="tanh")(a), Scale()(b)])
    return kiln.Model([a, b], [L.Dense(2, name="y")(h), L.Dense(1, name="z")(h)])


def subclassed():
    model = TwoTower(hidden=6, outputs=2)
    model(torch.as_tensor(X[:2]))  # build
    return model


BUILDERS = {
    "sequential": (sequential, X),
    "functional": (functional, [X, X2]),
    "subclassed": (subclassed, X),
}


def _as_list(y):
    return y if isinstance(y, list) else [y]


def _assert_same_predictions(a, b, x):
    for p, q in zip(_as_list(a.predict(x, verbose=0)), _as_list(b.predict(x, verbose=0)), strict=True):
        np.testing.assert_array_equal(p, q)


# ---------------------------------------------------------------------- round trips
@pytest.mark.parametrize("suffix", [".keras", ".kiln", ""])
@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_save_load_gives_identical_predictions(kind, suffix, tmp_path):
    build, x = BUILDERS[kind]
    model = build()
    path = tmp_path / f"model{suffix}"
    model.save(path)
    assert path.is_dir() == (suffix == "")
    if suffix:
        assert zipfile.is_zipfile(path)
    loaded = kiln.load_model(path)
    assert type(loaded) is type(model)
    _assert_same_predictions(model, loaded, x)
    assert [type(l) for l in loaded.modules()] == [type(l) for l in model.modules()]


def test_trained_batchnorm_statistics_survive(tmp_path):
    model = sequential()
    model.compile(optimizer="adam", loss="mse")
    model.fit(X, Y, epochs=2, batch_size=4, verbose=0)
    bn = model.layers[1]
    assert not torch.equal(bn.moving_mean, torch.zeros_like(bn.moving_mean))
    model.save(tmp_path / "m.keras")
    loaded = kiln.load_model(tmp_path / "m.keras")
    torch.testing.assert_close(loaded.layers[1].moving_mean, bn.moving_mean, rtol=0, atol=0)
    _assert_same_predictions(model, loaded, X)


def test_custom_layer_config_survives(tmp_path):
    model = sequential()
    model.save(tmp_path / "m.keras")
    loaded = kiln.load_model(tmp_path / "m.keras")
    scale = loaded.layers[2]
    assert type(scale) is Scale and scale.factor == 0.5
    assert scale.get_config() == model.layers[2].get_config()


def test_functional_keeps_input_names_and_dict_inputs(tmp_path):
    model = functional()
    model.save(tmp_path / "m.keras")
    loaded = kiln.load_model(tmp_path / "m.keras")
    assert [t.name for t in loaded.inputs] == ["a", "b"]
    by_name = loaded.predict({"a": X, "b": X2}, verbose=0)
    for p, q in zip(by_name, model.predict([X, X2], verbose=0)):
        np.testing.assert_array_equal(p, q)


# ---------------------------------------------------------------------- compile settings
@pytest.mark.parametrize("kind", ["sequential", "functional"])
def test_compile_settings_are_restored(kind, tmp_path):
    build, x = BUILDERS[kind]
    model = build()
    if kind == "sequential":
        y = Y
        model.compile(optimizer=kiln.optimizers.SGD(learning_rate=0.05, momentum=0.9),
                      loss=kiln.losses.Huber(delta=0.5),
                      metrics=["mae", kiln.metrics.RootMeanSquaredError(name="rmse")])
    else:
        y = [Y, Y2]
        model.compile(optimizer=kiln.optimizers.Adam(learning_rate=0.003), loss=["mse", "mae"],
                      loss_weights=[1.0, 0.5], metrics=[["mae"], ["mse"]])
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    expected = model.evaluate(x, y, verbose=0, return_dict=True)

    model.save(tmp_path / "m.keras")
    loaded = kiln.load_model(tmp_path / "m.keras")
    assert loaded.compiled
    assert type(loaded.optimizer) is type(model.optimizer)
    assert loaded.optimizer.learning_rate == pytest.approx(model.optimizer.learning_rate)
    got = loaded.evaluate(x, y, verbose=0, return_dict=True)
    assert got.keys() == expected.keys()
    for key in expected:
        assert got[key] == pytest.approx(expected[key], rel=1e-6), key


def test_loaded_model_can_keep_training(tmp_path):
    model = sequential()
    model.compile(optimizer="adam", loss="mse")
    model.save(tmp_path / "m")
    loaded = kiln.load_model(tmp_path / "m")
    history = loaded.fit(X, Y, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2


def test_compile_false_leaves_the_model_uncompiled(tmp_path):
    model = sequential()
    model.compile(optimizer="adam", loss="mse")
    model.save(tmp_path / "m.keras")
    assert not kiln.load_model(tmp_path / "m.keras", compile=False).compiled


# ---------------------------------------------------------------------- weights only
@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_save_weights_load_weights_round_trip(kind, tmp_path):
    build, x = BUILDERS[kind]
    model = build()
    model.save_weights(tmp_path / "w.safetensors")
    fresh = build()
    with pytest.raises(AssertionError):
        _assert_same_predictions(model, fresh, x)  # freshly initialised: different
    fresh.load_weights(tmp_path / "w.safetensors")
    _assert_same_predictions(model, fresh, x)


def test_load_weights_from_a_saved_model(tmp_path):
    model = sequential()
    model.save(tmp_path / "m.keras")
    fresh = sequential()
    fresh.load_weights(tmp_path / "m.keras")
    _assert_same_predictions(model, fresh, X)


def test_load_weights_into_a_different_architecture_names_the_key(tmp_path):
    model = sequential()
    model.save_weights(tmp_path / "w.safetensors")
    wider = kiln.Sequential([kiln.Input(shape=(5,)), L.Dense(16, activation="relu"), L.BatchNormalization(),
                             Scale(factor=0.5), L.Dropout(0.3), L.Dense(2)])
    with pytest.raises(ShapeError, match=r"different shapes: \[.*dense\.kernel: model \(5, 16\) vs file \(5, 8\)"):
        wider.load_weights(tmp_path / "w.safetensors")
    shallower = kiln.Sequential([kiln.Input(shape=(5,)), L.Dense(8), L.Dense(2)])
    with pytest.raises(ShapeError, match=r"not in the model: \[.*batch_normalization\.gamma"):
        shallower.load_weights(tmp_path / "w.safetensors")
    # skip_mismatch loads what fits and leaves the rest.
    shallower.load_weights(tmp_path / "w.safetensors", skip_mismatch=True)
    torch.testing.assert_close(shallower.layers[0].kernel, model.layers[0].kernel)


# ---------------------------------------------------------------------- refusals
def _torch_save_file(path):
    torch.save({"dense.kernel": torch.zeros(2, 2)}, path)
    return path


def _text_file(path):
    path.write_text("hello, I am not a model\n")
    return path


def _zip_without_config(path):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("model.safetensors", b"")
        archive.writestr("readme.txt", "no config here")
    return path


def _zip_without_format_marker(path):
    model = sequential()
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(files["config.json"])
    del config["format"]
    files["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


def _folder_json_without_marker(path):
    path.mkdir()
    (path / "config.json").write_text(json.dumps({"class_name": "Sequential", "config": {}}))
    sequential().save_weights(path / "model.safetensors")
    return path


@pytest.mark.parametrize("make,name,message", [
    (_text_file, "notes.keras", "not a kiln model"),
    (_torch_save_file, "weights.pt", "not a kiln model"),
    (_zip_without_config, "m.keras", "lacks config.json"),
    (_zip_without_format_marker, "m.keras", "format"),
    (_folder_json_without_marker, "folder", "format"),
])
def test_foreign_files_are_refused(make, name, message, tmp_path):
    path = make(tmp_path / name)
    with pytest.raises(SerializationError, match=message):
        kiln.load_model(path)


def test_json_file_alone_is_refused(tmp_path):
    path = tmp_path / "model.json"
    path.write_text(json.dumps({"class_name": "Sequential", "config": {"layers": []}}))
    with pytest.raises(SerializationError, match="not a kiln model"):
        kiln.load_model(path)


def test_torch_save_file_is_refused_by_load_weights(tmp_path):
    path = _torch_save_file(tmp_path / "weights.pt")
    with pytest.raises(SerializationError, match="never unpickles"):
        sequential().load_weights(path)


def test_missing_path_is_a_clear_error(tmp_path):
    with pytest.raises(KilnValueError, match="No saved model"):
        kiln.load_model(tmp_path / "nowhere.keras")


def test_pickles_are_never_unpickled(tmp_path):
    marker = tmp_path / "unpickled.marker"
    payload = _MakeMarker(str(marker))
    # The payload works: unpickling it really creates the marker.
    pickle.loads(pickle.dumps(payload))
    assert marker.exists()
    marker.unlink()

    model = sequential()
    for name in ("evil.pt", "evil.keras", "evil.kiln", "evil.safetensors"):
        path = tmp_path / name
        with open(path, "wb") as f:
            pickle.dump(payload, f)
        with pytest.raises(SerializationError):
            kiln.load_model(path)
        with pytest.raises(SerializationError):
            model.load_weights(path)
        assert not marker.exists(), f"loading {name} ran pickle"
    # A pickle hidden inside a zip with the right file names is refused too.
    evil_zip = tmp_path / "evil_zip.keras"
    buffer = io.BytesIO()
    pickle.dump(payload, buffer)
    with zipfile.ZipFile(evil_zip, "w") as archive:
        archive.writestr("config.json", json.dumps({"format": "kiln.model", "class_name": "Sequential",
                                                    "config": {"layers": []}}))
        archive.writestr("model.safetensors", buffer.getvalue())
    with pytest.raises(SerializationError):
        kiln.load_model(evil_zip)
    with pytest.raises(SerializationError):
        model.load_weights(evil_zip)
    assert not marker.exists()


def _rename_class(path, old: str, new: str):
    """Rewrite a saved .keras file's config.json, replacing the class reference ``old`` by ``new``."""
    with zipfile.ZipFile(path) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    config = files["config.json"].decode()
    assert f'"{old}"' in config
    files["config.json"] = config.replace(f'"{old}"', f'"{new}"').encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)


def test_an_unregistered_class_is_saved_as_module_and_qualname_and_found_there(tmp_path):
    model = kiln.Sequential([kiln.Input(shape=(3,)), Unregistered(), L.Dense(1)])
    model.save(tmp_path / "m")
    layers = json.loads((tmp_path / "m" / "config.json").read_text())["config"]["layers"]
    assert [spec["class_name"] for spec in layers] == [f"{__name__}:Unregistered", "kiln.layers.dense:Dense"]
    _assert_same_predictions(model, kiln.load_model(tmp_path / "m"), X2)


def test_unknown_custom_class_names_it_and_suggests_the_fix(tmp_path):
    # As for a class saved from a script: its module is not the loading program's.
    model = kiln.Sequential([kiln.Input(shape=(3,)), Unregistered(), L.Dense(1)])
    model.save(tmp_path / "m.keras")
    _rename_class(tmp_path / "m.keras", f"{__name__}:Unregistered", "kiln_tests_never_imported:Unregistered")
    with pytest.raises(SerializationError) as info:
        kiln.load_model(tmp_path / "m.keras")
    message = str(info.value)
    assert "'kiln_tests_never_imported:Unregistered'" in message
    assert "custom_objects={'Unregistered': Unregistered}" in message and "register_serializable" in message
    assert "kiln_tests_never_imported" not in sys.modules  # a user's module is never imported by name
    loaded = kiln.load_model(tmp_path / "m.keras", custom_objects={"Unregistered": Unregistered})
    _assert_same_predictions(model, loaded, X2)


@pytest.mark.parametrize("moved", ["kiln.layers.gone:Dense", "kiln.gone.deeper:Dense", "kiln.layers.dense:Gone"])
def test_a_moved_kiln_class_is_an_unknown_class_not_an_import_error(moved, tmp_path):
    model = kiln.Sequential([kiln.Input(shape=(3,)), L.Dense(1)])
    model.save(tmp_path / "m.keras")
    _rename_class(tmp_path / "m.keras", "kiln.layers.dense:Dense", moved)
    with pytest.raises(SerializationError, match=rf"Unknown layer or model class {re.escape(repr(moved))}"):
        kiln.load_model(tmp_path / "m.keras")


@kiln.saving.register_serializable(package="kiln_tests")
class NoConfig(kiln.Model):
    """Registered, but its __init__ takes none of the base config's arguments."""

    def __init__(self):
        super().__init__()
        self.dense = L.Dense(2)

    def call(self, x):
        return self.dense(x)


def test_a_get_config_that_misses_init_arguments_is_a_clear_error(tmp_path):
    model = NoConfig()
    model(torch.zeros(2, 3))
    model.save(tmp_path / "m.keras")
    with pytest.raises(SerializationError, match=r"NoConfig.*get_config\(\) must return every __init__ argument"):
        kiln.load_model(tmp_path / "m.keras")


def test_config_without_class_name_is_refused(tmp_path):
    path = tmp_path / "m.keras"
    sequential().save(path)
    with zipfile.ZipFile(path) as archive:
        weights = archive.read("model.safetensors")
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", json.dumps({"format": "kiln.model"}))
        archive.writestr("model.safetensors", weights)
    with pytest.raises(SerializationError, match="class_name"):
        kiln.load_model(path)


# ---------------------------------------------------------------------- how files are written
@pytest.mark.parametrize("name", ["m.keras", "m"])
def test_overwriting_leaves_no_temporary_files(name, tmp_path):
    model = sequential()
    model.save(tmp_path / name)
    model.save(tmp_path / name)  # into an existing path
    model.save_weights(tmp_path / "w.safetensors")
    model.save_weights(tmp_path / "w.safetensors")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, "w.safetensors"])
    if name == "m":
        assert sorted(p.name for p in (tmp_path / name).iterdir()) == ["config.json", "model.safetensors"]
    _assert_same_predictions(model, kiln.load_model(tmp_path / name), X)


@pytest.mark.parametrize("name", ["m.keras", "m"])
def test_overwrite_false_refuses_an_existing_path(name, tmp_path):
    model = sequential()
    model.save(tmp_path / name)
    with pytest.raises(KilnValueError, match="overwrite"):
        model.save(tmp_path / name, overwrite=False)
    model.save_weights(tmp_path / "w.safetensors")
    with pytest.raises(KilnValueError, match="overwrite"):
        model.save_weights(tmp_path / "w.safetensors", overwrite=False)


def test_saved_files_are_json_and_safetensors(tmp_path):
    model = sequential()
    model.save(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["format"] == "kiln.model" and config["class_name"] == "kiln.models.sequential:Sequential"
    assert [spec["class_name"] for spec in config["config"]["layers"]][-3:] == [
        "kiln_tests>Scale", "kiln.layers.dropout:Dropout", "kiln.layers.dense:Dense"]  # registered: its name
    from safetensors.torch import load_file
    assert set(load_file(str(tmp_path / "m" / "model.safetensors"))) == set(model.state_dict())


# ---------------------------------------------------------------------- no pickle in kiln's source
_KILN_ROOT = pathlib.Path(kiln.__file__).parent


def _call_text(code: str, start: int) -> str:
    """A call's arguments: the text from just after its "(" to the matching ")"."""
    depth = 1
    for i in range(start, len(code)):
        depth += {"(": 1, ")": -1}.get(code[i], 0)
        if depth == 0:
            return code[start:i]
    return code[start:]


def test_the_torch_load_check_reads_whole_calls():
    code = 'torch.load(f, map_location=torch.device("cpu"), weights_only=True) + g(x)'
    assert _call_text(code, len("torch.load(")) == 'f, map_location=torch.device("cpu"), weights_only=True'


def _source_files():
    """kiln and kiln_edge (the torch-free package ships in the same wheel and loads files too)."""
    return sorted(_KILN_ROOT.rglob("*.py")) + sorted((_KILN_ROOT.parent / "kiln_edge").rglob("*.py"))


def test_kiln_source_never_unpickles():
    offences = []
    for path in _source_files():
        text = path.read_text()
        code = "\n".join(line.split("#", 1)[0] for line in text.splitlines())  # drop comments
        rel = path.relative_to(_KILN_ROOT.parent)
        if re.search(r"^\s*(import\s+(c?pickle|dill|cloudpickle)\b|from\s+(c?pickle|dill|cloudpickle)\s+import)",
                     code, re.M):
            offences.append(f"{rel}: imports pickle")
        if re.search(r"\bpickle\.(load|loads|Unpickler)\b", code):
            offences.append(f"{rel}: calls pickle.load")
        for match in re.finditer(r"torch\.load\(", code):
            call = _call_text(code, match.end())
            if not re.search(r"weights_only\s*=\s*True", call):
                offences.append(f"{rel}: {call!r} without weights_only=True")
        if re.search(r"allow_pickle\s*=\s*True", code):
            offences.append(f"{rel}: np.load(..., allow_pickle=True)")
    assert not offences, "\n".join(offences)
    assert len(_source_files()) > 10  # the scan really looked at the packages
    assert any(path.parent.name == "kiln_edge" for path in _source_files())


def test_optimizer_state_is_saved_so_training_continues_exactly(tmp_path):
    """fit 2 epochs + save/load + fit 2 more == fit 4 epochs without stopping (no shuffle)."""
    g = np.random.default_rng(0)
    x, y = g.random((64, 5)).astype("float32"), g.random((64, 1)).astype("float32")

    def fresh():
        kiln.utils.set_random_seed(0)
        model = kiln.Sequential([kiln.layers.Dense(8, activation="relu", input_shape=(5,)), kiln.layers.Dense(1)])
        model.compile(optimizer=kiln.optimizers.Adam(0.01), loss="mse")
        return model

    straight = fresh()
    straight.fit(x, y, epochs=4, batch_size=16, shuffle=False, verbose=0)
    first = fresh()
    first.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0)
    for fmt in ("m.keras", "folder"):
        first.save(tmp_path / fmt)
        resumed = kiln.load_model(tmp_path / fmt)
        assert resumed.optimizer.iterations == 8
        resumed.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0)
        for a, b in zip(resumed.get_weights(), straight.get_weights()):
            np.testing.assert_allclose(a, b, atol=1e-6)


def test_include_optimizer_false_leaves_it_out(tmp_path):
    import zipfile
    model = kiln.Sequential([kiln.layers.Dense(1, input_shape=(2,))])
    model.compile(optimizer="adam", loss="mse")
    model.fit(np.zeros((4, 2)), np.zeros((4, 1)), verbose=0)
    model.save(tmp_path / "with.keras")
    model.save(tmp_path / "without.keras", include_optimizer=False)
    assert "optimizer.safetensors" in zipfile.ZipFile(tmp_path / "with.keras").namelist()
    assert "optimizer.safetensors" not in zipfile.ZipFile(tmp_path / "without.keras").namelist()


# ---------------------------------------------------------------------- a model's own files (assets)
class WithVocabulary(kiln.Model):
    """Keeps a word list beside its weights through the save_assets/load_assets hook."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = L.Dense(2)
        self.words = []

    def call(self, x):
        return self.dense(x)

    def save_assets(self):
        return {"vocabulary.txt": "\n".join(self.words).encode()}

    def load_assets(self, assets):
        self.words = assets["vocabulary.txt"].decode().split("\n")


@pytest.mark.parametrize("name", ["m.keras", "m"])
def test_a_models_assets_are_saved_beside_its_weights_and_given_back(name, tmp_path):
    model = WithVocabulary()
    model(torch.zeros(2, 3))
    model.words = ["cat", "dog"]
    model.save(tmp_path / name)
    loaded = kiln.load_model(tmp_path / name)
    assert loaded.words == ["cat", "dog"]
    _assert_same_predictions(model, loaded, X2)


@pytest.mark.parametrize("asset", ["model.safetensors", "../escape.txt", ""])
def test_an_asset_name_that_is_not_a_plain_free_file_name_is_refused(asset, tmp_path):
    model = WithVocabulary()
    model(torch.zeros(2, 3))
    model.save_assets = lambda: {asset: b"x"}
    expected = rf"WithVocabulary.save_assets\(\) returned the file name {re.escape(repr(asset))}"
    with pytest.raises(SerializationError, match=expected):
        model.save(tmp_path / "m.keras")
    assert not (tmp_path / "m.keras").exists()
