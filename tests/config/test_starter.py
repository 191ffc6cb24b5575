"""kiln.config.starter: each starter opens with its command, comments its keys and validates."""

import re

import pytest

from kiln.config import (AUGMENTATIONS_BY_TYPE, STARTER_KINDS, FeatureConfig, ZooConfig, dump_config, load_config_text,
                         starter_config)
from kiln.config.catalog import ZOO_OPTIONS
from kiln.config.preprocessing import PREPROCESSING_BY_TYPE
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


# Where each `a|b|c` list of the starters' comments belongs: the key on its line -> the config
# path its values are set at (an override), or None for a feature type (checked on a lone feature).
CHOICE_PATHS = {"format": "data.format", "type": None, "flip": "input_features.0.augmentation.flip",
                "schedule": "training.schedule", "early_stopping": "training.early_stopping.mode",
                "precision": "training.precision", "split": "evaluation.split", "formats": "export.formats"}


def mentioned_choices(text):
    """(key, choices) for every comment that lists values as `a|b|c`."""
    for line in text.splitlines():
        code, _, comment = line.partition("#")
        key = re.match(r"^\s*(?:- )?([a-z_]+):", code)
        for found in re.finditer(r"[\w.]+(?:\|[\w.]+)+", comment):
            yield key.group(1), found.group(0).split("|")


@pytest.mark.parametrize("kind", STARTER_KINDS)
def test_every_choice_a_starter_mentions_is_accepted_by_the_schema(kind):
    text = starter_config(kind)
    seen = set()
    for key, choices in mentioned_choices(text):
        path = CHOICE_PATHS[key]  # a KeyError: a new list of choices, add where it belongs
        for choice in choices:
            if key == "type":
                assert FeatureConfig(name="f", type=choice).type == choice
                continue
            value = {"formats": f"[{choice}]", "schedule": f"{{name: {choice}}}"}.get(key, choice)
            load_config_text(text, f"{kind}.yaml", [f"{path}={value}"])
        seen.add(key)
    assert {"format", "precision", "split", "formats"} <= seen
    if kind == "image":
        assert {"type", "flip"} <= seen


@pytest.mark.parametrize("kind", STARTER_KINDS)
def test_every_option_key_and_zoo_name_a_starter_mentions_exists(kind):
    text = starter_config(kind)
    for feature_type, listed in re.findall(r"(\w+) options: ([\w, ]+)", text):
        assert listed.split(", ") == list(PREPROCESSING_BY_TYPE[feature_type].model_fields)
    for feature_type, listed in re.findall(r"(\w+) keys: ([\w, ]+)", text):
        assert tuple(listed.split(", ")) == AUGMENTATIONS_BY_TYPE[feature_type]
    for listed in re.findall(r"zoo names: ([\w, ]+)", text):
        assert listed.split(", ") == list(ZOO_OPTIONS)
    for name in re.findall(r"zoo: \{name: (\w+)", text):
        assert ZooConfig(name=name).name == name


def test_the_starters_list_what_the_schema_has_not_a_copy():
    # The format list once named `images` and `text`, which the schema rejects.
    image = starter_config("image")
    assert "# auto|csv|tsv|parquet|jsonl|npy|npz|image_folder|text_folder|audio_folder|bundled" in image
    assert "image options: height, width, channels, scale, resize" in image
    assert "$" not in image + starter_config("tabular") + starter_config("text")  # every placeholder filled
