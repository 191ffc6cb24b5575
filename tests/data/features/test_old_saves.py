"""Features saved by kiln e4563e3 (before the preprocessing moved to ``kiln_edge.preprocessing``) still load,
transform, decode and save again bit for bit, on both backends; the zoo's tokenizers give the same ids.

``saved_e4563e3/`` was written by running this file with that commit's kiln::

    git worktree add /tmp/old e4563e3
    PYTHONPATH=/tmp/old python tests/data/features/test_old_saves.py tests/data/features/saved_e4563e3

``expected.json`` holds that code's outputs (float32 values are exact as JSON doubles).
"""

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

SAVED = Path(__file__).parent / "saved_e4563e3"
TEXTS = ["The cat sat on the mat.", "the dog, the cat!", "Don't stop", "a dog sat"]
CORPUS = ["hello world", "the cat sat on the mat", "a dog sat on a log"] * 10


def train_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "n": [1.0, 2.5, None, 7.0], "c": ["red", "blue", "red", None], "y": ["b", "a", "c", "a"],
        "b": ["no", "yes", "no", None], "w": TEXTS, "ch": TEXTS, "bpe": TEXTS, "s": ["1 2 3", "4,5", [6, 7, 8, 9], None],
        "img": [np.arange(12, dtype=np.uint8).reshape(3, 4) * 20] * 4,
        "aud": [np.sin(np.arange(100) * (0.1 * (i + 1))).astype(np.float32) for i in range(4)]})


def test_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "n": [3.0, None, 0.5], "c": ["blue", "pink", None], "y": ["c", "a", "b"], "b": ["yes", None, "no"],
        "w": ["The DOG sat on a log.", None, "zebra"], "ch": ["cat!", "ÿ", None], "bpe": ["the cat sat", "zebra", None],
        "s": ["1", [2, 3, 4, 5, 6], None],
        "img": [np.arange(36, dtype=np.uint8).reshape(6, 6), np.full((3, 4, 3), 200, np.uint8),
                np.zeros((3, 4), np.uint8)],
        "aud": [np.cos(np.arange(120) * 0.3).astype(np.float32), np.zeros(50, np.float32), np.ones(100, np.float32)]})


test_frame.__test__ = False  # a data helper, not a test


def features():
    from kiln.data.features import (AudioFeature, BinaryFeature, CategoryFeature, ImageFeature, NumericFeature,
                                    SequenceFeature, TextFeature)
    return [NumericFeature("n", normalization="minmax", fill_missing="median"),
            CategoryFeature("c", encoding="onehot"), CategoryFeature("y", output=True), BinaryFeature("b"),
            TextFeature("w", max_length=6),
            TextFeature("ch", tokenizer="char", max_length=5, padding="pre", lowercase=False),
            TextFeature("bpe", tokenizer="bpe", vocab_size=40, max_length=6, truncation="pre"),
            SequenceFeature("s", normalization="standard", padding_value=-1.0),
            ImageFeature("img", height=2, width=3, channels=1),
            AudioFeature("aud", sample_rate=1000, duration=0.1, n_fft=16, hop_length=8, n_mels=4)]


DECODE_INPUTS = {"n": [[0.25], [1.5]], "y": [[0.1, 0.7, 0.2], [0.9, 0.05, 0.05]], "b": [[0.5], [0.49]],
                 "w": [[2, 3, 1, 0]], "ch": [[0, 3, 2, 1]], "s": [[0.5, -1.0, 0.0, 2.0]], "bpe": [[0, 0, 2, 3, 4, 5]]}


def expected() -> dict:
    return json.loads((SAVED / "expected.json").read_text(encoding="utf-8"))


def _golden(record: dict) -> np.ndarray:
    return np.array(record["values"], dtype=record["dtype"]).reshape(record["shape"])


def test_kiln_transforms_old_saves_bit_for_bit():
    from kiln.data.features import load_features
    loaded, frame = load_features(SAVED), test_frame()
    for name, record in expected()["transform"].items():
        out = loaded[name].transform(frame[name])
        assert str(out.dtype) == f"torch.{record['dtype']}", name
        assert torch.equal(out, torch.from_numpy(_golden(record))), name


def test_kiln_edge_transforms_old_saves_bit_for_bit():
    from kiln_edge import load_features
    loaded, frame = load_features(SAVED), test_frame()
    for name, record in expected()["transform"].items():
        out = loaded[name].transform(frame[name])
        if name == "aud":  # NumPy's float32 FFT is not torch.stft's (kiln_edge.audio says how close)
            np.testing.assert_allclose(out, _golden(record), rtol=1e-4, atol=1e-4)
        else:
            assert out.dtype == record["dtype"] and np.array_equal(out, _golden(record)), name


@pytest.mark.parametrize("backend", ["kiln", "kiln_edge"])
def test_old_saves_decode_as_before(backend):
    if backend == "kiln":
        from kiln.data.features import load_features
    else:
        from kiln_edge import load_features
    loaded = load_features(SAVED)
    for name, record in expected()["decode"].items():
        got = loaded[name].decode(np.array(record["input"]))
        assert (got.tolist() if isinstance(got, np.ndarray) else got) == record["output"], name


def test_loading_and_saving_again_writes_the_same_bytes(tmp_path):
    from kiln.data.features import load_features, save_features
    save_features(load_features(SAVED), tmp_path)
    for file in ("features.json", "features.safetensors"):
        assert (tmp_path / file).read_bytes() == (SAVED / file).read_bytes(), file


def test_fitting_again_writes_the_same_files(tmp_path):
    from kiln.data.features import save_features
    fitted = [f.fit(train_frame()[f.column]) for f in features()]
    save_features(fitted, tmp_path)
    for file in ("features.json", "features.safetensors"):
        assert (tmp_path / file).read_bytes() == (SAVED / file).read_bytes(), file


def test_zoo_tokenizers_give_the_old_ids():
    from kiln.zoo.tokenizers import BPETokenizer, CharTokenizer
    zoo = expected()["zoo"]
    char, bpe = CharTokenizer().fit(CORPUS), BPETokenizer(vocab_size=280).fit(CORPUS)
    assert char.itos == zoo["char_itos"]
    assert char.encode(zoo["text"], add_bos=True, add_eos=True) == zoo["char_ids"]
    assert bpe.vocab_size == zoo["bpe_vocab_size"]
    assert bpe.encode(zoo["text"], add_bos=True, add_eos=True) == zoo["bpe_ids"]


def _write(folder: Path) -> None:
    """Fit, save and record the outputs (run with the kiln whose outputs are the reference)."""
    from kiln.data.features import save_features
    from kiln.zoo.tokenizers import BPETokenizer, CharTokenizer
    fitted = [f.fit(train_frame()[f.column]) for f in features()]
    save_features(fitted, folder)
    frame, by_name = test_frame(), {f.name: f for f in fitted}
    transform = {}
    for f in fitted:
        out = f.transform(frame[f.column])
        transform[f.name] = {"dtype": str(out.dtype).removeprefix("torch."), "shape": list(out.shape),
                             "values": out.flatten().tolist()}
    decode = {}
    for name, values in DECODE_INPUTS.items():
        got = by_name[name].decode(torch.tensor(values))
        decode[name] = {"input": values, "output": got.tolist() if isinstance(got, np.ndarray) else got}
    text = "the zebra sat"
    char, bpe = CharTokenizer().fit(CORPUS), BPETokenizer(vocab_size=280).fit(CORPUS)
    zoo = {"text": text, "char_itos": char.itos, "char_ids": char.encode(text, add_bos=True, add_eos=True),
           "bpe_vocab_size": bpe.vocab_size, "bpe_ids": bpe.encode(text, add_bos=True, add_eos=True)}
    sections = {"transform": transform, "decode": decode, "zoo": zoo}
    lines = ["{"]  # one line per entry: readable diffs
    for s, (section, entries) in enumerate(sections.items()):
        lines.append(f' "{section}": {{')
        lines += [f"  {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}{',' if i < len(entries) - 1 else ''}"
                  for i, (k, v) in enumerate(entries.items())]
        lines.append(" }" + ("," if s < len(sections) - 1 else ""))
    (folder / "expected.json").write_text("\n".join(lines + ["}"]) + "\n", encoding="utf-8")


if __name__ == "__main__":
    _write(Path(sys.argv[1]))
