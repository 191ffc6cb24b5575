"""kiln.config.preprocessing: each type's options, types and defaults are its feature class's."""

import inspect
from typing import Literal, get_args, get_origin

import pytest
from pydantic import ValidationError

from kiln.config.preprocessing import PREPROCESSING_BY_TYPE
from kiln.data.features import FEATURE_TYPES, build_feature
from kiln.errors import KilnError


def constructor_options(feature_type):
    """The options a feature class's constructor takes, with their defaults (name/column/output left out)."""
    params = inspect.signature(FEATURE_TYPES[feature_type].__init__).parameters.values()
    return {p.name: p.default for p in params if p.name not in ("self", "name", "column", "output")}


def literal_choices(annotation):
    """Every value of the Literal parts of an annotation (``Literal[...] | None`` -> its values)."""
    if get_origin(annotation) is Literal:
        return list(get_args(annotation))
    return [value for arg in get_args(annotation) for value in literal_choices(arg)]


def test_every_feature_type_has_a_model():
    assert set(PREPROCESSING_BY_TYPE) == set(FEATURE_TYPES)


@pytest.mark.parametrize("feature_type", sorted(PREPROCESSING_BY_TYPE))
def test_options_and_defaults_equal_the_feature_constructor(feature_type):
    model = PREPROCESSING_BY_TYPE[feature_type]
    defaults = {name: field.default for name, field in model.model_fields.items()}
    assert defaults == constructor_options(feature_type)
    # So the config's defaults build the same feature as no options at all.
    built = build_feature("f", feature_type, **model().model_dump()).get_config()
    assert built == build_feature("f", feature_type).get_config()


@pytest.mark.parametrize("feature_type", sorted(PREPROCESSING_BY_TYPE))
def test_every_choice_the_schema_offers_builds_a_feature(feature_type):
    model = PREPROCESSING_BY_TYPE[feature_type]
    for option, field in model.model_fields.items():
        for choice in literal_choices(field.annotation):
            options = model.model_validate({option: choice}).model_dump()
            assert build_feature("f", feature_type, **options).get_config()[option] == choice


@pytest.mark.parametrize("feature_type, option, value", [
    ("numeric", "normalization", "zscore"), ("numeric", "fill_missing", "mode"), ("category", "min_count", 0),
    ("category", "encoding", "binary"), ("text", "vocab_size", 2), ("text", "max_length", 2.5),
    ("text", "lowercase", "yes"), ("image", "channels", 2), ("image", "height", True), ("audio", "duration", 0),
    ("audio", "n_fft", 1), ("audio", "mel_scale", "mel"), ("sequence", "normalization", "minmax"),
    ("sequence", "padding_value", float("nan")),
])
def test_a_value_the_feature_refuses_the_schema_refuses(feature_type, option, value):
    with pytest.raises(KilnError):
        build_feature("f", feature_type, **{option: value})
    with pytest.raises(ValidationError) as info:
        PREPROCESSING_BY_TYPE[feature_type].model_validate({option: value})
    assert info.value.errors()[0]["loc"][0] == option
