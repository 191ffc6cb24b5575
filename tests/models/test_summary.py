"""``model.summary()``: Keras's table (layer (type), output shape, parameter count) and totals.

The expected numbers are Keras's, worked out by hand: Dense(64) on 10 features has
10 * 64 + 64 = 704 weights; BatchNormalization on 64 features 4 * 64 = 256, half of them the
non-trainable moving statistics; a layer with ``trainable=False`` counts as non-trainable.
"""

from __future__ import annotations

import re

import pytest
import torch

import kiln
from kiln import layers as L
from kiln.models.summary import count_params


def _summary(model, **kwargs) -> str:
    lines = []
    model.summary(print_fn=lines.append, **kwargs)
    return "\n".join(lines)


def _rows(text: str) -> dict[str, tuple[str, str, str]]:
    """{layer name: (class, output shape, param #)} from the table's rows."""
    rows = {}
    for line in text.splitlines():
        m = re.match(r"│ (\S+) \((\w+)\)\s+(.+?)\s{2,}([\d,]+(?: \(unbuilt\))?)(?:\s+[YN-])? │$", line)
        if m:
            rows[m.group(1)] = (m.group(2), m.group(3), m.group(4))
    return rows


def _totals(text: str) -> tuple[int, int, int]:
    def number(label):
        m = re.search(rf"^ {label} params: ([\d,]+) \(", text, re.M)
        assert m, f"no '{label} params' line in:\n{text}"
        return int(m.group(1).replace(",", ""))
    return number("Total"), number("Trainable"), number("Non-trainable")


def _assert_header(text: str, name: str):
    assert text.splitlines()[0] == f'Model: "{name}"'
    header = next(line for line in text.splitlines() if "Layer (type)" in line)
    assert header.index("Layer (type)") < header.index("Output Shape") < header.index("Param #")


def test_sequential_rows_and_totals():
    model = kiln.Sequential([
        kiln.Input(shape=(10,)),
        L.Dense(64, activation="relu"),
        L.BatchNormalization(),
        L.Dense(8, trainable=False),
        L.Dropout(0.1),
        L.Dense(1),
    ])
    text = _summary(model)
    _assert_header(text, "sequential")
    assert _rows(text) == {
        "dense": ("Dense", "(None, 64)", "704"),
        "batch_normalization": ("BatchNormalization", "(None, 64)", "256"),
        "dense_1": ("Dense", "(None, 8)", "520"),
        "dropout": ("Dropout", "(None, 8)", "0"),
        "dense_2": ("Dense", "(None, 1)", "9"),
    }
    # trainable: 704 + 128 (gamma, beta) + 9; non-trainable: 128 (moving stats) + 520 (frozen)
    assert _totals(text) == (1489, 841, 648)
    assert " Total params: 1,489 (5.82 KB)" in text
    assert sum(count_params(model)) == 1489


def test_rows_keep_the_layer_order():
    model = kiln.Sequential([kiln.Input(shape=(4,)), L.Dense(3), L.Dense(2), L.Dense(1)])
    assert list(_rows(_summary(model))) == ["dense", "dense_1", "dense_2"]


def test_freezing_after_construction_moves_params_to_non_trainable():
    model = kiln.Sequential([kiln.Input(shape=(3,)), L.Dense(4), L.Dense(2)])
    assert _totals(_summary(model)) == (26, 26, 0)
    model.layers[0].trainable = False
    assert _totals(_summary(model)) == (26, 10, 16)


def test_show_trainable_adds_keras_column():
    model = kiln.Sequential([kiln.Input(shape=(3,)), L.Dense(4, trainable=False), L.Dropout(0.5), L.Dense(2)])
    text = _summary(model, show_trainable=True)
    assert "Trainable" in next(line for line in text.splitlines() if "Layer (type)" in line)
    flags = [line.rstrip(" │").split()[-1] for line in text.splitlines() if line.startswith("│ ")]
    assert flags == ["N", "-", "Y"]
    assert "Trainable" not in next(line for line in _summary(model).splitlines() if "Layer (type)" in line)


def test_functional_multi_input_multi_output():
    a, b = kiln.Input(shape=(5,), name="a"), kiln.Input(shape=(3,), name="b")
    h = L.Concatenate()([L.Dense(4)(a), b])
    h = L.BatchNormalization()(h)
    model = kiln.Model([a, b], [L.Dense(2, name="y")(h), L.Dense(1, name="z")(h)], name="two_heads")
    text = _summary(model)
    _assert_header(text, "two_heads")
    assert _rows(text) == {
        "dense": ("Dense", "(None, 4)", "24"),
        "concatenate": ("Concatenate", "(None, 7)", "0"),
        "batch_normalization": ("BatchNormalization", "(None, 7)", "28"),
        "y": ("Dense", "(None, 2)", "16"),
        "z": ("Dense", "(None, 1)", "8"),
    }
    assert _totals(text) == (76, 62, 14)


def test_functional_layer_with_several_outputs_and_sequences():
    inputs = kiln.Input(shape=(7, 3))
    seq = L.LSTM(4, return_sequences=True)(inputs)
    out = L.GlobalAveragePooling1D()(L.Conv1D(2, 3)(seq))
    text = _summary(kiln.Model(inputs, out))
    assert _rows(text) == {
        "lstm": ("LSTM", "(None, 7, 4)", "128"),
        "conv1d": ("Conv1D", "(None, 5, 2)", "26"),
        "global_average_pooling1d": ("GlobalAveragePooling1D", "(None, 2)", "0"),
    }
    state_model = kiln.Model(inputs, L.LSTM(4, return_state=True)(inputs))
    assert _rows(_summary(state_model))["lstm"][1] == "[(None, 4), (None, 4), (None, 4)]"


class _Subclassed(kiln.Model):
    def __init__(self):
        super().__init__(name="subclassed")
        self.hidden = L.Dense(16, activation="relu")
        self.norm = L.BatchNormalization()
        self.out = L.Dense(2, trainable=False)

    def call(self, x):
        return self.out(self.norm(self.hidden(x)))


def test_subclassed_model_before_and_after_building():
    model = _Subclassed()
    unbuilt = _summary(model)
    assert _rows(unbuilt)["hidden"] == ("Dense", "?", "0 (unbuilt)")
    assert _totals(unbuilt) == (0, 0, 0)

    model(torch.zeros(4, 5))
    text = _summary(model)
    _assert_header(text, "subclassed")
    assert _rows(text) == {
        "hidden": ("Dense", "(None, 16)", "96"),
        "norm": ("BatchNormalization", "(None, 16)", "64"),
        "out": ("Dense", "(None, 2)", "34"),
    }
    # trainable: 96 + 32; non-trainable: 32 moving stats + 34 frozen
    assert _totals(text) == (194, 128, 66)


def test_nested_model_is_one_row():
    inner = kiln.Sequential([kiln.Input(shape=(5,)), L.Dense(4), L.BatchNormalization()], name="inner")
    model = kiln.Sequential([kiln.Input(shape=(5,)), inner, L.Dense(2)])
    rows = _rows(_summary(model))
    assert rows["inner"] == ("Sequential", "(None, 4)", "40")
    assert _totals(_summary(model)) == (50, 42, 8)


def test_summary_does_not_change_the_model():
    model = kiln.Sequential([kiln.Input(shape=(3,)), L.BatchNormalization(), L.Dense(1)])
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    _summary(model)
    assert model.training
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_summary_prints_by_default(capsys):
    kiln.Sequential([kiln.Input(shape=(3,)), L.Dense(2)]).summary()
    out = capsys.readouterr().out
    assert "Layer (type)" in out and "Total params: 8" in out


@pytest.mark.parametrize("n_bytes,expected", [(0, "0.00 B"), (1023, "1023.00 B"), (1024, "1.00 KB"),
                                               (4_000_000, "3.81 MB")])
def test_sizes_are_printed_in_binary_units(n_bytes, expected):
    from kiln.models.summary import _size
    assert _size(n_bytes) == expected


def test_sizes_follow_the_weights_dtype():
    f32 = kiln.Sequential([kiln.Input(shape=(3,)), L.Dense(2)])
    f64 = kiln.Sequential([kiln.Input(shape=(3,), dtype="float64"), L.Dense(2, dtype="float64")])
    assert " Total params: 8 (32.00 B)" in _summary(f32)
    assert " Total params: 8 (64.00 B)" in _summary(f64)
