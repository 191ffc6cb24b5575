"""The torch-free path (kiln_edge): NumPy features + onnxruntime give what Run.predict_frame gives,
without ever importing torch."""

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

ROOT = Path(__file__).resolve().parents[2]


def test_onnx_run_matches_torch_run(run_dir, raw_rows):
    from kiln.workflows.run import load_run
    from kiln_edge import OnnxRun
    frame = raw_rows
    expected = load_run(run_dir).predict_frame(frame)
    got = OnnxRun(run_dir).predict_frame(frame)
    assert list(got.columns) == list(expected.columns)
    assert list(got.index) == list(expected.index)
    assert got["kind"].tolist() == expected["kind"].tolist()
    for column in expected.columns[1:]:
        np.testing.assert_allclose(got[column].to_numpy(), expected[column].to_numpy(), atol=1e-5)


def test_features_transform_like_kiln(run_dir, raw_rows):
    from kiln.data.features import load_features as kiln_load
    from kiln_edge import load_features
    frame = raw_rows
    ours, theirs = load_features(run_dir / "model"), kiln_load(run_dir / "model")
    for name in ("size", "colour", "note"):
        np.testing.assert_array_equal(ours[name].transform(frame), theirs[name].transform(frame).numpy())


def test_more_feature_types_transform_like_kiln(tmp_path):
    from kiln.data.features import BinaryFeature, NumericFeature, SequenceFeature, TextFeature, save_features
    from kiln_edge import load_features
    train = pd.DataFrame({"b": ["no", "yes", "no", None], "m": [1.0, 5.0, 3.0, 2.0],
                          "s": ["1 2 3", "4,5", [6, 7, 8, 9], None],
                          "c": ["abc", "Hello!", "ab", "x"], "t": ["good film", "bad film", "fine", "ok film"]})
    test = pd.DataFrame({"b": ["yes", None], "m": [None, 9.0], "s": ["1", [2, 3, 4, 5, 6]],
                         "c": ["zz a", None], "t": ["a good bad film", "unseen"]})
    kiln_features = [BinaryFeature("b").fit(train["b"]),
                     NumericFeature("m", normalization="minmax", fill_missing="median").fit(train["m"]),
                     SequenceFeature("s", normalization="standard").fit(train["s"]),
                     TextFeature("c", tokenizer="char", max_length=5, padding="pre").fit(train["c"]),
                     TextFeature("t", tokenizer="bpe", vocab_size=40, max_length=7, truncation="pre").fit(train["t"])]
    save_features(kiln_features, tmp_path)
    ours = load_features(tmp_path)
    for feature in kiln_features:
        np.testing.assert_array_equal(ours[feature.name].transform(test), feature.transform(test).numpy())


def test_image_feature_transforms_like_kiln(tmp_path):
    """Images are no longer refused: bit-identical to kiln (more cases in test_edge_media.py)."""
    pytest.importorskip("PIL")
    from kiln.data.features import ImageFeature, save_features
    from kiln_edge import load_features
    image = ImageFeature("img", height=4, width=4, channels=1)
    image.fit(pd.Series([np.zeros((4, 4), dtype=np.uint8)] * 2))
    save_features([image], tmp_path)
    feature = load_features(tmp_path)["img"]
    test = pd.Series([np.arange(36, dtype=np.uint8).reshape(6, 6), np.full((4, 4, 3), 200, dtype=np.uint8)])
    np.testing.assert_array_equal(feature.transform(test), image.transform(test).numpy())


def test_missing_onnx_file_names_the_export_command(run_dir, tmp_path):
    from kiln_edge import EdgeError, OnnxRun
    with pytest.raises(EdgeError, match="kiln export"):
        OnnxRun(run_dir, onnx_path=tmp_path / "nope.onnx")


def test_predict_path_never_imports_torch(run_dir, tmp_path, raw_rows):
    raw_rows.to_csv(tmp_path / "rows.csv", index=False)
    script = textwrap.dedent(f"""
        import sys
        import pandas as pd
        from kiln_edge import OnnxRun
        out = OnnxRun({str(run_dir)!r}).predict_frame(pd.read_csv({str(tmp_path / 'rows.csv')!r}))
        out.to_csv({str(tmp_path / 'edge.csv')!r}, index_label="row")
        assert 'torch' not in sys.modules, 'torch was imported'
        print("no torch")
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "no torch" in done.stdout


def test_cli_predict_backend_onnx(run_dir, tmp_path, raw_rows):
    from kiln.cli import main
    raw_rows.to_csv(tmp_path / "rows.csv", index=False)
    for backend in ("torch", "onnx"):
        assert main(["predict", str(run_dir), "--data", str(tmp_path / "rows.csv"),
                     "--output", str(tmp_path / f"{backend}.csv"), "--backend", backend]) == 0
    torch_out, onnx_out = pd.read_csv(tmp_path / "torch.csv"), pd.read_csv(tmp_path / "onnx.csv")
    assert list(onnx_out.columns) == list(torch_out.columns)
    assert onnx_out["kind"].tolist() == torch_out["kind"].tolist()
    np.testing.assert_allclose(onnx_out.iloc[:, 2:].to_numpy(), torch_out.iloc[:, 2:].to_numpy(), atol=1e-5)


def test_both_backends_and_commands_refuse_an_overflowing_value_alike(run_dir, tmp_path, raw_rows, capsys):
    from kiln.cli import main
    from kiln.errors import DataError
    from kiln.workflows.run import load_run
    from kiln_edge import EdgeError, OnnxRun
    raw_rows.loc[2, "size"] = 1e308  # finite, but inf once standardised to float32
    messages = []
    for run in (load_run(run_dir), OnnxRun(run_dir)):
        with pytest.raises((DataError, EdgeError)) as info:
            run.predict_frame(raw_rows)
        messages.append(str(info.value))
    assert messages[0] == messages[1]
    assert messages[0].startswith("Input 'size' (column 'size'): row 2 holds a value that is too large for the "
                                  "model (row 2: 1e+308)")
    raw_rows.to_csv(tmp_path / "rows.csv", index=False)
    errors = []
    for backend in ("torch", "onnx"):
        assert main(["predict", str(run_dir), "--data", str(tmp_path / "rows.csv"),
                     "--output", str(tmp_path / f"{backend}.csv"), "--backend", backend]) != 0
        errors.append(capsys.readouterr().err)
    assert errors[0] == errors[1] and "file row 4 holds a value that is too large" in errors[0]  # CSV: header = 1
    assert not (tmp_path / "onnx.csv").exists()


def test_predict_counts_what_it_fills_and_passes_an_id_through(run_dir, tmp_path, raw_rows, capsys):
    from kiln.cli import main
    raw_rows.insert(0, "order_id", [f"A{i}" for i in range(len(raw_rows))])  # raw_rows: 1 missing size, 1 purple
    raw_rows.to_csv(tmp_path / "rows.csv", index=False)
    for backend in ("torch", "onnx"):
        assert main(["predict", str(run_dir), "--data", str(tmp_path / "rows.csv"), "--output",
                     str(tmp_path / f"{backend}.csv"), "--backend", backend, "--id-column", "order_id"]) == 0
        err = capsys.readouterr().err
        assert err == ("filled as in training: 1 missing in 'size'; 1 unseen (-> <unk>) in 'colour'; "
                       "1 missing in 'note'\n")
        out = pd.read_csv(tmp_path / f"{backend}.csv")
        assert list(out.columns[:3]) == ["row", "order_id", "kind"]
        assert out["order_id"].tolist() == raw_rows["order_id"].tolist()
        assert out["row"].tolist() == list(range(len(raw_rows)))
    assert main(["predict", str(run_dir), "--data", str(tmp_path / "rows.csv"), "--id-column", "order"]) != 0
    assert "--id-column 'order': " in capsys.readouterr().err
