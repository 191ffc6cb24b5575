"""kiln.export.onnx: the exported file is checked against torch on real rows, one row and many,
every output, and a NaN on one side only is a difference (it used to pass: NaN > tol is False)."""

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from kiln.errors import KilnError  # noqa: E402
from kiln.export.onnx import _worst_difference, export_model_onnx  # noqa: E402


class OnlyWrongAwayFromZero(torch.nn.Module):
    """Exports as ``2 x``; runs in torch as ``2 x`` too, except ``3 x`` where x > 0.5: a model whose
    export is right on all-zero inputs (all the old check used) and wrong on real ones."""

    def forward(self, inputs):
        x = inputs["x"]
        if torch.compiler.is_exporting():
            return {"y": 2 * x, "z": x.sum(dim=1, keepdim=True)}
        return {"y": torch.where(x > 0.5, 3 * x, 2 * x), "z": x.sum(dim=1, keepdim=True)}


def test_zeros_miss_what_real_rows_catch(tmp_path):
    zeros = {"x": torch.zeros(4, 3)}
    export_model_onnx(OnlyWrongAwayFromZero(), zeros, tmp_path / "a.onnx")  # zeros agree: not caught
    real = {"x": torch.tensor([[0.1, 0.2, 0.9], [0.3, 0.0, 0.1]])}
    with pytest.raises(KilnError, match=r"differs from torch by 0\.9 \(> 0\.0001\) in output 0 on a batch of 2 rows"):
        export_model_onnx(OnlyWrongAwayFromZero(), zeros, tmp_path / "b.onnx", verify_inputs=[zeros, real])


def test_every_output_and_nan_on_one_side_count():
    assert _worst_difference([np.array([1.0, np.nan])], [np.array([1.0, np.nan])]) == (0.0, "in output 0")
    assert _worst_difference([np.array([1.0, 2.0])], [np.array([1.0, np.nan])])[0] == float("inf")
    assert _worst_difference([np.array([np.nan])], [np.array([1.0])])[0] == float("inf")
    worst, where = _worst_difference([np.zeros(2), np.array([1.0, 5.0])], [np.zeros(2), np.array([1.0, 4.5])])
    assert worst == 0.5 and where == "in output 1"
    assert _worst_difference([np.zeros(2)], [np.zeros(2), np.zeros(2)])[0] == float("inf")
    assert _worst_difference([np.zeros((2, 1))], [np.zeros(2)])[0] == float("inf")


def test_export_onnx_verifies_one_row_and_many_real_rows(monkeypatch, tmp_path):
    import pandas as pd

    import kiln.export.onnx as onnx_module
    seen = {}
    monkeypatch.setattr(onnx_module, "export_model_onnx",
                        lambda model, examples, path, verify_inputs: seen.update(examples=examples, verify=verify_inputs))

    class FakeRun:  # what export_onnx reads of a Run: encode_inputs, inputs, model
        model = torch.nn.Identity()
        inputs = []

        def encode_inputs(self, frame):
            return {"x": torch.tensor(frame[["a", "b"]].to_numpy(), dtype=torch.float32)}

    rows = pd.DataFrame({"a": np.arange(100.0), "b": np.arange(100.0) * 2})
    onnx_module.export_onnx(FakeRun(), tmp_path / "m.onnx", rows=rows)
    assert seen["examples"]["x"].shape == (4, 2) and seen["examples"]["x"][3].tolist() == [3.0, 6.0]
    assert [v["x"].shape[0] for v in seen["verify"]] == [1, 64]  # one row, and up to max_rows real rows
