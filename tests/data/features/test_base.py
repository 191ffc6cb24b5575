"""The Feature protocol: build_feature, missing columns, state round trips, save_features/load_features."""

import json

import numpy as np
import pandas as pd
import pytest
import soundfile
import torch
from PIL import Image

from kiln.data.features import (FEATURE_TYPES, AudioFeature, CategoryFeature, Feature, ImageFeature, NumericFeature,
                                build_feature, load_features, save_features)
from kiln.errors import DataError, KilnValueError, SerializationError


@pytest.fixture
def table(tmp_path):
    """A small table with one column per feature type; images and audio as files."""
    g = np.random.default_rng(0)
    rows = 12
    images, sounds = [], []
    for i in range(rows):
        images.append(str(tmp_path / f"img{i}.png"))
        Image.fromarray(g.integers(0, 256, (10, 12, 3), dtype=np.uint8)).save(images[-1])
        sounds.append(str(tmp_path / f"snd{i}.wav"))
        t = np.arange(1600) / 16000
        soundfile.write(sounds[-1], 0.3 * np.sin(2 * np.pi * (200 + 50 * i) * t), 16000)
    return pd.DataFrame({
        "price": g.normal(10, 3, rows),
        "color": [["red", "green", "blue", "red"][i % 4] for i in range(rows)],
        "spam": ["yes" if i % 2 else "no" for i in range(rows)],
        "review": [f"this film is {w} {w}" for w in g.choice(["good", "bad", "long", "fine"], rows)],
        "photo": images,
        "clip": sounds,
        "signal": [" ".join(str(v) for v in g.integers(0, 9, g.integers(1, 6))) for _ in range(rows)],
        "label": [i % 3 for i in range(rows)],
    })


def _all_features():
    return [
        build_feature("price", "numeric", normalization="minmax"),
        build_feature("color", "category"),
        build_feature("spam", "binary"),
        build_feature("words", "text", column="review", tokenizer="bpe", vocab_size=40, max_length=8),
        build_feature("photo", "image", height=8, width=8, channels=1),
        build_feature("clip", "audio", duration=0.1, n_mels=16),
        build_feature("signal", "sequence", normalization="standard"),
        build_feature("label", "category", output=True),
    ]


def test_build_feature_gives_each_type_its_class():
    assert set(FEATURE_TYPES) == {"numeric", "category", "binary", "text", "image", "audio", "sequence"}
    for name, cls in FEATURE_TYPES.items():
        feature = build_feature("x", name, column="col")
        assert type(feature) is cls and feature.type == name and feature.column == "col" and not feature.output
    assert build_feature("y", "numeric").column == "y" and build_feature("y", "binary", output=True).output


def test_build_feature_unknown_type_and_option_suggest_the_nearest():
    with pytest.raises(KilnValueError, match="Unknown feature type: 'categorical'. Did you mean 'category'"):
        build_feature("x", "categorical")
    with pytest.raises(KilnValueError, match=r"Unknown option 'normalisation' for the numeric feature 'x'. "
                                             r"Did you mean 'normalization'\?"):
        build_feature("x", "numeric", normalisation="minmax")


def test_missing_column_is_a_data_error_with_a_suggestion(table):
    feature = NumericFeature("prices")
    with pytest.raises(DataError, match=r"no column 'prices'.*Did you mean 'price'\?"):
        feature.fit(table)


def test_transform_before_fit_and_empty_training_split():
    with pytest.raises(KilnValueError, match=r"not fitted yet: call fit\(\)"):
        NumericFeature("x").transform(pd.Series([1.0]))
    with pytest.raises(DataError, match="training split has no rows"):
        CategoryFeature("x").fit(pd.Series([], dtype=object))


def test_fit_transform_equals_fit_then_transform(table):
    for a, b in zip(_all_features(), _all_features()):
        torch.testing.assert_close(a.fit_transform(table), b.fit(table).transform(table), rtol=0, atol=0)


def test_fit_sees_only_the_training_split(table):
    train, valid = table.iloc[:8], table.iloc[8:]
    for feature, twin in zip(_all_features(), _all_features()):
        feature.fit(train)
        twin.fit(train)
        feature.transform(valid)  # transforming another split never refits
        assert feature.state()[0] == twin.state()[0]


def test_save_and_load_give_identical_transforms(table, tmp_path):
    train, valid = table.iloc[:8], table.iloc[8:]
    fitted = [f.fit(train) for f in _all_features()]
    folder = tmp_path / "model"
    save_features(fitted, folder)
    document = json.loads((folder / "features.json").read_text())
    assert [r["name"] for r in document["features"]] == [f.name for f in fitted]
    assert document["features"][3]["column"] == "review" and document["features"][7]["output"] is True
    loaded = load_features(folder)
    assert list(loaded) == [f.name for f in fitted]
    for original in fitted:
        again = loaded[original.name]
        assert type(again) is type(original) and again.spec() == original.spec()
        torch.testing.assert_close(again.transform(valid), original.transform(valid), rtol=0, atol=0)
    scores = torch.randn(4, 3)
    assert loaded["label"].decode(scores) == fitted[-1].decode(scores)


class _Centered(Feature):
    """A feature whose fitted state is a tensor: exercises features.safetensors."""

    type = "centered"

    def _fit(self, series):
        self.center = torch.tensor(np.stack(series.tolist()).mean(axis=0), dtype=torch.float32)

    def _transform(self, series):
        return torch.tensor(np.stack(series.tolist()), dtype=torch.float32) - self.center

    def _spec(self):
        return {"shape": tuple(self.center.shape), "dtype": "float32"}

    def _fitted_state(self):
        return {}, {"center": self.center}

    def _load_fitted(self, fitted, tensors):
        self.center = tensors["center"]


def test_fitted_tensors_go_to_safetensors(tmp_path, monkeypatch):
    monkeypatch.setitem(FEATURE_TYPES, "centered", _Centered)
    column = pd.Series([np.array([1.0, 2.0]), np.array([3.0, 6.0])])
    feature = _Centered("v").fit(column)
    save_features({"v": feature}, tmp_path)
    record = json.loads((tmp_path / "features.json").read_text())["features"][0]
    assert record["fitted"] == {} and record["tensors"] == ["center"]
    loaded = load_features(tmp_path)["v"]
    assert loaded.center.tolist() == [2.0, 4.0]
    torch.testing.assert_close(loaded.transform(column), feature.transform(column))


def test_state_round_trip_without_files(table):
    for feature in _all_features():
        feature.fit(table)
        config, tensors = feature.state()
        json.dumps(config, allow_nan=False)  # JSON-able
        again = type(feature).from_state(json.loads(json.dumps(config)), tensors)
        torch.testing.assert_close(again.transform(table), feature.transform(table), rtol=0, atol=0)
    unfitted = NumericFeature("x", fill_missing=2.0)
    assert type(unfitted).from_state(*unfitted.state()).fill_missing == 2.0


def test_mismatched_or_missing_files_are_refused(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    save_features([NumericFeature("x").fit(pd.Series([1.0, 2.0]))], first)
    save_features([_Centered("v").fit(pd.Series([np.zeros(2)]))], second)
    (first / "features.safetensors").write_bytes((second / "features.safetensors").read_bytes())
    with pytest.raises(SerializationError, match="does not match"):
        load_features(first)
    with pytest.raises(SerializationError, match="No features.json"):
        load_features(tmp_path / "nothing")
    (second / "features.json").write_text('{"format": "something else"}')
    with pytest.raises(SerializationError, match="not a kiln features file"):
        load_features(second)


def test_duplicate_names_are_refused(tmp_path):
    a, b = NumericFeature("x"), NumericFeature("x", column="y")
    with pytest.raises(KilnValueError, match="Two features are named 'x'"):
        save_features([a, b], tmp_path)


def test_decoding_loops_show_a_progress_bar_on_stderr_for_many_items(capsys):
    arrays = np.zeros((501, 2, 2), dtype=np.uint8)
    ImageFeature("image").fit(arrays).transform(arrays)
    assert "image: decoding images" in capsys.readouterr().err
    ImageFeature("image").fit(arrays[:10]).transform(arrays[:10])
    assert capsys.readouterr().err == ""


def test_input_only_types_cannot_decode_nor_be_outputs():
    feature = AudioFeature("audio", duration=0.1).fit(pd.Series([np.zeros(1600)]))
    with pytest.raises(KilnValueError, match="cannot decode model outputs"):
        feature.decode(torch.zeros(1, 11, 64, 1))
    for type_name in ("image", "audio"):
        with pytest.raises(KilnValueError, match=f"An {type_name} feature cannot be an output"):
            build_feature("x", type_name, output=True)
