"""Model files built to exhaust memory: a zip bomb, a config.json asking to allocate more than the
archive holds. Each is refused with a SerializationError before the allocation, and a genuine
model re-zipped with deflate still loads."""

import json
import zipfile

import numpy as np
import pytest

import kiln
from kiln import layers as L
from kiln.errors import SerializationError


def _saved(tmp_path, name="m.keras"):
    model = kiln.Sequential([L.Input((8,)), L.Dense(4, activation="relu"), L.Dense(2)])
    path = tmp_path / name
    model.save(path)
    return model, path


def _members(path):
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _write(path, members, compression=zipfile.ZIP_DEFLATED):
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def test_a_zip_bomb_is_refused_before_it_inflates(tmp_path):
    _, path = _saved(tmp_path)
    members = _members(path)
    members["model.safetensors"] = b"\0" * (20 << 20)  # 20 MB of zeros deflate to ~20 KB
    bomb = tmp_path / "bomb.keras"
    _write(bomb, members)
    assert bomb.stat().st_size < 100_000
    with pytest.raises(SerializationError, match=r"model\.safetensors would inflate from \d+ to 20971520 bytes.*"
                                                 r"zip bomb"):
        kiln.load_model(bomb)


def test_a_genuine_model_rezipped_with_deflate_still_loads(tmp_path):
    model, path = _saved(tmp_path)
    deflated = tmp_path / "deflated.keras"
    _write(deflated, _members(path))
    x = np.random.default_rng(0).random((5, 8)).astype("float32")
    np.testing.assert_array_equal(kiln.load_model(deflated).predict(x, verbose=0), model.predict(x, verbose=0))


def _with_config(tmp_path, edit):
    _, path = _saved(tmp_path)
    members = _members(path)
    config = json.loads(members["config.json"])
    edit(config)
    members["config.json"] = json.dumps(config).encode()
    edited = tmp_path / "edited.keras"
    _write(edited, members, zipfile.ZIP_STORED)
    return edited


def test_a_config_asking_for_more_weights_than_the_archive_holds_is_refused_before_allocating(tmp_path):
    def huge_units(config):
        config["config"]["layers"][-1]["config"]["units"] = 10 ** 12  # 4 * 10**12 floats: ~16 TB

    with pytest.raises(SerializationError, match=r"would allocate more than \d+ bytes \(torch.empty of "
                                                 r"16000000000000 bytes\), while its saved weights hold 184 bytes"):
        kiln.load_model(_with_config(tmp_path, huge_units))


def test_a_config_declaring_a_huge_example_shape_is_refused(tmp_path):
    def huge_example(config):
        config["build_input"] = {"shape": [10 ** 6, 10 ** 6], "dtype": "float32"}

    with pytest.raises(SerializationError, match=r"build_input shape \[1000000, 1000000\] holds 1000000000000 "
                                                 r"elements per sample"):
        kiln.load_model(_with_config(tmp_path, huge_example))
