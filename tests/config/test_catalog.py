"""kiln.config.catalog: the checked-in layer and zoo tables equal what the real classes say."""

import inspect
import subprocess
import sys
from pathlib import Path

import kiln.zoo
from kiln import layers
from kiln.config import catalog


def test_the_file_is_what_generate_source_writes():
    # Fails when a layer, a layer argument, a zoo model or a zoo option is added, removed or
    # renamed: run `python -m kiln.config.catalog > kiln/config/catalog.py` and commit the result.
    assert Path(catalog.__file__).read_text(encoding="utf-8") == catalog.generate_source()


def test_every_public_layer_class_is_listed_with_what_it_accepts():
    public = {name for name in layers.__all__ if isinstance(getattr(layers, name), type)
              and issubclass(getattr(layers, name), layers.Layer) and name != "Layer"}
    assert set(catalog.LAYER_ARGUMENTS) == public
    dense = catalog.LAYER_ARGUMENTS["Dense"]
    assert dense[:2] == ("units", "activation") and "name" in dense and "input_shape" in dense  # Layer's own
    # What the table lists is accepted, and one name past it is refused, by the class itself.
    layers.Dense(units=3, **{"kernel_initializer": "zeros", "name": "d"})
    try:
        layers.Dense(units=3, unitz=4)
    except TypeError as error:
        assert "unitz" in str(error)
    else:
        raise AssertionError("Dense accepted an argument the table does not list")


def test_zoo_options_cover_builders_and_their_config_fields():
    assert list(catalog.ZOO_OPTIONS) == kiln.zoo.names()
    assert catalog.ZOO_OPTIONS["mlp"] == tuple(inspect.signature(kiln.zoo.get("mlp")).parameters)
    # wavenet takes **fields for its WaveNetConfig: those fields are options too.
    assert {"kernel_size", "log_mel_frontend", "n_mels"} <= set(catalog.ZOO_OPTIONS["wavenet"])


def test_importing_the_schema_does_not_import_torch():
    code = "import sys, kiln.config.schema, kiln.config.starter; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
