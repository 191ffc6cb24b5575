"""Models saved by kiln 0.1 (bare class names, "kiln.zoo>GPT") load, predict and re-save as before.

The fixtures in tests/saving/fixtures/kiln-0.1/ were written by the code before "module:qualname"
class references (commit e4563e3) with tests/saving/fixtures/make_kiln_0_1.py; ``expected.safetensors``
holds the inputs and the predictions that code made.
"""

import json
import pathlib
import zipfile

import numpy as np
import pytest

import kiln

FIXTURES = pathlib.Path(__file__).resolve().parent / "fixtures" / "kiln-0.1"


@pytest.fixture(scope="module")
def expected():
    from safetensors.numpy import load_file
    return load_file(str(FIXTURES / "expected.safetensors"))


def _files(path: pathlib.Path) -> dict[str, bytes]:
    if path.is_dir():
        return {p.name: p.read_bytes() for p in path.iterdir()}
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _old_names(tree):
    """A config with every "module:qualname" turned back into the name kiln 0.1 wrote."""
    if isinstance(tree, dict):
        tree = {k: _old_names(v) for k, v in tree.items()}
        name = tree.get("class_name")
        if isinstance(name, str) and ":" in name:
            module, qualname = name.split(":")
            tree["class_name"] = f"kiln.zoo>{qualname}" if module.startswith("kiln.zoo.") else qualname
        return tree
    if isinstance(tree, list):
        return [_old_names(v) for v in tree]
    return tree


@pytest.mark.parametrize("name, inputs", [("sequential.keras", ["x"]), ("functional", ["x", "1-x"]),
                                          ("mlp.keras", ["x"]), ("gpt.keras", ["gpt_ids"])])
def test_a_kiln_0_1_file_loads_predicts_the_same_and_resaves_the_same_weights(name, inputs, expected, tmp_path):
    model = kiln.load_model(FIXTURES / name)
    model.save(tmp_path / name, include_optimizer=False)  # before predict() records an example batch
    old, new = _files(FIXTURES / name), _files(tmp_path / name)
    assert new["model.safetensors"] == old["model.safetensors"]  # byte for byte
    new_config = json.loads(new["config.json"])
    assert new_config["class_name"].count(":") == 1  # today's format: module:qualname
    assert _old_names(new_config) == json.loads(old["config.json"])  # nothing else changed
    assert new.get("tokenizer.json") == old.get("tokenizer.json")

    arrays = [1 - expected["x"] if key == "1-x" else expected[key] for key in inputs]
    got = model.predict(arrays if len(arrays) > 1 else arrays[0], verbose=0)
    np.testing.assert_array_equal(got, expected[name.split(".")[0]])


def test_a_kiln_0_1_text_model_gets_its_tokenizer_back(expected):
    model = kiln.load_model(FIXTURES / "gpt.keras")
    assert model.tokenizer.encode("the cat") == expected["gpt_ids"][0].tolist()
