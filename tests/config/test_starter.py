"""kiln.config.starter: each starter opens with its command, comments its keys and validates."""

import re

import pytest

from kiln.config import STARTER_KINDS, dump_config, load_config_text, starter_config
from kiln.errors import KilnValueError


@pytest.mark.parametrize("kind, source", [("image", "mnist5k"), ("tabular", "sklearn:breast_cancer"),
                                          ("text", "gensim:polarity")])
def test_starter_validates(kind, source):
    text = starter_config(kind)
    assert text.splitlines()[0] == "# kiln train config.yaml"
    cfg = load_config_text(text, f"{kind}.yaml")
    assert cfg.data.source == source
    assert load_config_text(dump_config(cfg), "resolved.yaml") == cfg


@pytest.mark.parametrize("kind", STARTER_KINDS)
def test_every_key_has_a_comment(kind):
    for line in starter_config(kind).splitlines():
        if re.match(r"^\s*(- )?[A-Za-z_]+:", line):  # a key line (list items included)
            assert "#" in line, f"key without a comment in the {kind} starter: {line!r}"


def test_every_section_is_written():
    sections = {"name", "seed", "output_dir", "data", "input_features", "output_features", "model", "training",
                "evaluation", "export"}
    for kind in STARTER_KINDS:
        top = {m.group(1) for m in re.finditer(r"^([a-z_]+):", starter_config(kind), re.MULTILINE)}
        assert top == sections, kind


def test_filename_and_unknown_kind():
    assert starter_config("text", filename="reviews.yaml").startswith("# kiln train reviews.yaml\n")
    with pytest.raises(KilnValueError, match="Did you mean 'tabular'"):
        starter_config("tabluar")
