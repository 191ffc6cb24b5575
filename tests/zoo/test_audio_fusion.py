"""kiln/zoo/{audio_frontend,wavenet,audio_transformer,fusion}.py: shapes, causality, mu-law,
overfitting, save/load, seeded generation, multimodal learning, and a spoken-digit proof."""

from __future__ import annotations

import os
import shutil
import subprocess

import numpy as np
import pytest
import torch

import kiln
from kiln.data.features.audio import AudioFeature
from kiln.errors import KilnValueError
from kiln.zoo import get
from kiln.zoo.audio_frontend import LogMel
from kiln.zoo.wavenet import mu_law_decode, mu_law_encode


def _sce():
    return kiln.losses.SparseCategoricalCrossentropy(from_logits=True)


# ---------------------------------------------------------------------- front end
def test_log_mel_matches_audio_feature_reference():
    wave = torch.randn(3, 8000)
    ref = AudioFeature("a", duration=0.5, n_mels=40).spectrogram(wave)   # (3, 51, 40) unstandardised
    out = LogMel(16000, n_mels=40, normalize=False)(wave)
    assert out.shape == (3, 51, 40)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------------- wavenet
def test_wavenet_shapes_and_receptive_field():
    gen = get("wavenet")("generation", layers=5, stacks=3)
    assert gen(torch.randint(0, 256, (2, 40))).shape == (2, 40, 256)
    assert gen.receptive_field == 1 * 3 * (2 ** 5 - 1) + 1 == 94
    assert get("wavenet")("generation", layers=4, stacks=2, kernel_size=3).receptive_field == 2 * 2 * 15 + 1
    clf = get("wavenet")("classification", num_classes=7, layers=3, stacks=1)
    assert clf(torch.randn(2, 300)).shape == (2, 7)
    mel = get("wavenet")("classification", num_classes=4, input="log_mel", n_mels=20, layers=3, stacks=1)
    assert mel(torch.randn(2, 30, 20)).shape == (2, 4) and mel(torch.randn(2, 30, 20, 1)).shape == (2, 4)
    front = get("wavenet")("classification", num_classes=4, log_mel_frontend=True, n_mels=32, layers=3, stacks=1)
    assert front(torch.randn(2, 1600)).shape == (2, 4)


def test_wavenet_receptive_field_is_exact_numerically():
    model = get("wavenet")("generation", layers=3, stacks=2).eval()     # rf = 2 * 7 + 1 = 15
    x = torch.randint(0, 256, (1, 40))
    base = model(x)
    t = 30
    far, near = x.clone(), x.clone()
    far[0, t - model.receptive_field] = (x[0, t - 15] + 100) % 256      # just outside the field of t
    near[0, t - model.receptive_field + 1] = (x[0, t - 14] + 100) % 256  # just inside
    assert torch.equal(model(far)[0, t], base[0, t])
    assert not torch.allclose(model(near)[0, t], base[0, t])


@pytest.mark.parametrize("task", ["generation", "classification_stack"])
def test_wavenet_is_causal(task):
    torch.manual_seed(0)
    model = get("wavenet")("generation", layers=4, stacks=2).eval()
    if task == "generation":
        x = torch.randint(0, 256, (2, 64))
        changed = x.clone()
        changed[:, 33:] = torch.randint(0, 256, (2, 31))
        run = model
    else:  # the classification stack before pooling, on real-valued input
        model = get("wavenet")("classification", num_classes=3, layers=4, stacks=2).eval()
        x = torch.randn(2, 64)
        changed = x.clone()
        changed[:, 33:] = torch.randn(2, 31)

        def run(inp):
            h = model._features(inp)
            skips = 0
            for block in model.blocks:
                h, s = block(h)
                skips = skips + s
            return model.head(skips).transpose(1, 2)
    a, b = run(x), run(changed)
    torch.testing.assert_close(a[:, :33], b[:, :33], rtol=0, atol=0)    # outputs up to t=32 unchanged
    assert not torch.allclose(a[:, 33:], b[:, 33:])


def test_mu_law_round_trip():
    codes = torch.arange(256)
    assert torch.equal(mu_law_encode(mu_law_decode(codes)), codes)
    x = torch.linspace(-1, 1, 10001)
    y = mu_law_decode(mu_law_encode(x))
    # error at most half a level, measured in the companded domain
    companded = lambda v: torch.sign(v) * torch.log1p(255 * v.abs()) / np.log1p(255)
    assert (companded(y) - companded(x)).abs().max() <= 1 / 255 + 1e-6
    assert (y - x).abs().max() < 0.035 and (y - x)[x.abs() < 0.01].abs().max() < 5e-4
    assert mu_law_encode(torch.tensor([0.0])).item() == 128
    assert mu_law_encode(np.array([-5.0, 5.0])).tolist() == [0, 255]


def test_wavenet_generation_overfits_and_generates_deterministically(tmp_path):
    wave = 0.8 * torch.sin(torch.arange(801) * 2 * np.pi / 16)           # period 16 samples
    codes = mu_law_encode(wave)[None]                                  # (1, 801)
    model = get("wavenet")("generation", layers=4, stacks=1, residual_channels=32, skip_channels=32)
    model.compile(kiln.optimizers.Adam(3e-3), _sce())
    history = model.fit(codes[:, :-1], codes[:, 1:], epochs=150, verbose=0)
    assert history.history["loss"][-1] < 0.1 * history.history["loss"][0]
    a = model.generate(64, seed=3, prime=codes[0, :20])
    b = model.generate(64, seed=3, prime=codes[0, :20])
    assert a.shape == (64,) and a.dtype == torch.int64 and torch.equal(a, b)
    assert not torch.equal(a, model.generate(64, seed=4, prime=codes[0, :20], temperature=5.0))
    greedy = model.generate(32, temperature=0, prime=codes[0, :20])
    # the learned sine continues: greedy decoding follows the true codes closely
    assert (mu_law_decode(greedy) - mu_law_decode(codes[0, 20:52])).abs().mean() < 0.1
    model.save(tmp_path / "wn.kiln")
    loaded = kiln.models.load_model(tmp_path / "wn.kiln")
    torch.testing.assert_close(loaded.predict(codes, verbose=0), model.predict(codes, verbose=0))
    assert torch.equal(loaded.generate(16, seed=1, prime=codes[0, :20]), model.generate(16, seed=1,
                                                                                        prime=codes[0, :20]))


def _toy_audio(n=32, samples=1600, seed=0):
    """Two classes of tones: 500 Hz vs 2000 Hz, random phase and noise."""
    g = np.random.default_rng(seed)
    y = np.arange(n) % 2
    t = np.arange(samples) / 16000
    freq = np.where(y == 1, 2000.0, 500.0)[:, None]
    x = np.sin(2 * np.pi * freq * t + g.uniform(0, 6, (n, 1))) + 0.3 * g.standard_normal((n, samples))
    return x.astype("float32"), y.astype("int64")


def test_wavenet_classifier_overfits_and_round_trips(tmp_path):
    x, y = _toy_audio()
    model = get("wavenet")("classification", num_classes=2, log_mel_frontend=True, n_mels=32, layers=3, stacks=1)
    model.compile(kiln.optimizers.Adam(3e-3), _sce(), metrics=["accuracy"])
    model.fit(x, y, epochs=40, batch_size=32, verbose=0)
    assert model.evaluate(x, y, verbose=0, return_dict=True)["accuracy"] == 1.0
    model.save(tmp_path / "wnc")
    loaded = kiln.models.load_model(tmp_path / "wnc")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-5)


def test_wavenet_config_errors_are_reported_together():
    with pytest.raises(KilnValueError) as err:
        get("wavenet")("classify", num_classes=None, layers=0)
    assert "task" in str(err.value) and "layers" in str(err.value)
    with pytest.raises(KilnValueError, match="num_classes"):
        get("wavenet")("classification")
    with pytest.raises(KilnValueError, match="task='generation'"):
        get("wavenet")("classification", num_classes=2).generate(3)


# ---------------------------------------------------------------------- audio transformer
def test_audio_transformer_shapes():
    model = get("audio_transformer")(num_classes=5, n_mels=32, patch=(8, 8), depth=1, width=32)
    assert model(torch.randn(2, 16000)).shape == (2, 5)                 # 101 frames -> 13 x 4 patches
    assert model(torch.randn(2, 37, 32)).shape == (2, 5)                # ragged: padded to whole patches
    assert model(torch.randn(2, 37, 32, 1)).shape == (2, 5)
    with pytest.raises(kiln.errors.ShapeError, match="n_mels"):
        model(torch.randn(2, 37, 40))
    with pytest.raises(kiln.errors.ShapeError, match="max_frames"):
        model(torch.randn(1, 600, 32))
    with pytest.raises(KilnValueError, match="divisible"):
        get("audio_transformer")(num_classes=2, width=30, heads=4)


def test_audio_transformer_overfits_and_round_trips(tmp_path):
    x, y = _toy_audio()
    model = get("audio_transformer")(num_classes=2, n_mels=32, patch=(4, 8), depth=2, heads=2, width=32)
    model.compile(kiln.optimizers.Adam(1e-3), _sce(), metrics=["accuracy"])
    model.fit(x, y, epochs=30, batch_size=32, verbose=0)
    assert model.evaluate(x, y, verbose=0, return_dict=True)["accuracy"] == 1.0
    model.save(tmp_path / "ast.kiln")
    loaded = kiln.models.load_model(tmp_path / "ast.kiln")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------- fusion
_SPECS = [
    {"name": "num", "type": "numeric", "shape": [3]},
    {"name": "cat", "type": "category", "vocab_size": 5},
    {"name": "text", "type": "text", "shape": [12], "vocab_size": 30},
    {"name": "image", "type": "image", "shape": [8, 8, 1]},
]


def _fusion_data(n, seed):
    """Label = XOR of (num[0] > 0) and (the text contains token 7): it needs both modalities.
    The category and the image are noise."""
    g = np.random.default_rng(seed)
    num = g.standard_normal((n, 3)).astype("float32")
    text = g.integers(8, 30, (n, 12))
    has7 = g.random(n) < 0.5
    text[has7, g.integers(0, 12, has7.sum())] = 7
    text[:, 10:] = 0                                                   # padding
    text[has7 & (text == 0).all(1)] = 7
    has7 = (text == 7).any(1)
    y = ((num[:, 0] > 0) ^ has7).astype("int64")
    x = {"num": num, "cat": g.integers(0, 5, n), "text": text.astype("int64"),
         "image": g.random((n, 8, 8, 1)).astype("float32")}
    return x, y


@pytest.mark.parametrize("combiner", ["concat", "transformer"])
def test_fusion_learns_a_label_that_needs_two_modalities(combiner, tmp_path):
    x, y = _fusion_data(1200, 0)
    x_test, y_test = _fusion_data(400, 1)
    model = get("fusion")(_SPECS, num_classes=2, combiner=combiner, hidden=32)
    out = model({k: torch.as_tensor(v[:4]) for k, v in x.items()})
    assert out.shape == (4, 2)
    model.compile(kiln.optimizers.Adam(3e-3), _sce(), metrics=["accuracy"])
    model.fit(x, y, epochs=25, batch_size=64, verbose=0)
    accuracy = model.evaluate(x_test, y_test, verbose=0, return_dict=True)["accuracy"]
    assert accuracy > 0.9, accuracy
    model.save(tmp_path / "fusion.kiln")
    loaded = kiln.models.load_model(tmp_path / "fusion.kiln")
    assert loaded.get_config()["inputs"] == model.get_config()["inputs"]
    np.testing.assert_allclose(loaded.predict(x_test, verbose=0), model.predict(x_test, verbose=0),
                               rtol=1e-5, atol=1e-5)


def test_fusion_shapes_audio_regression_and_errors():
    specs = [{"name": "wave", "type": "audio", "shape": [1600], "n_mels": 32},
             {"name": "mel", "type": "audio", "shape": [20, 16, 1]},
             {"name": "words", "type": "text", "shape": [6], "vocab_size": 10, "encoder": "pool"}]
    model = get("fusion")(specs, num_classes=None, combiner="transformer", hidden=16)
    out = model({"wave": torch.randn(3, 1600), "mel": torch.randn(3, 20, 16, 1),
                 "words": torch.randint(0, 10, (3, 6))})
    assert out.shape == (3, 1)
    with pytest.raises(KilnValueError) as err:
        get("fusion")([{"name": "a", "type": "numerc", "shape": [2]}, {"name": "b", "type": "category"}], 2)
    assert "did you mean 'numeric'" in str(err.value) and "vocab_size" in str(err.value)
    with pytest.raises(kiln.errors.ShapeError, match="missing"):
        model({"wave": torch.randn(3, 1600)})


# ---------------------------------------------------------------------- real data: spoken digits
_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
# espeak-ng's "en" is an alias of "en-gb", so it is left out of training; "+f2" etc. are its voice
# variants (pitch, formants, breathiness). Held out: the en-gb voice and the f2 variant.
_TRAIN_VOICES = ["en-us", "en+f3", "en+m3", "en-gb-scotland", "en+f4", "en-029", "en+m7", "en-us+m2"]
_TEST_VOICES = ["en-gb", "en+f2"]
_SPEEDS = [120, 160, 200]
_RATE = 16000


def _to_16k(wave: np.ndarray, rate: int) -> np.ndarray:
    """Resample by linear interpolation onto the 16 kHz time grid (espeak-ng writes 22050 Hz).
    No anti-alias filter: speech energy above 8 kHz is small, and the log-mel bands stop at 8 kHz."""
    if rate == _RATE:
        return wave
    t_new = np.arange(int(len(wave) * _RATE / rate)) / _RATE
    return np.interp(t_new, np.arange(len(wave)) / rate, wave).astype("float32")


def _spoken_digits(folder, voices):
    import soundfile
    xs, ys = [], []
    for voice in voices:
        for speed in _SPEEDS:
            for label, word in enumerate(_WORDS):
                path = os.path.join(folder, f"{voice}_{speed}_{word}.wav")
                subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", path, word], check=True,
                               capture_output=True)
                wave, rate = soundfile.read(path, dtype="float32", always_2d=True)
                wave = _to_16k(wave.mean(axis=1), rate)
                clip = np.zeros(_RATE, dtype="float32")                 # 1 s, zero-padded / cut
                clip[:min(len(wave), _RATE)] = wave[:_RATE]
                xs.append(clip)
                ys.append(label)
    return np.stack(xs), np.array(ys, dtype="int64")


@pytest.mark.slow
def test_spoken_digits_on_held_out_voices(tmp_path):
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (Debian: apt-get install -y espeak-ng); it synthesises the digits")
    x, y = _spoken_digits(tmp_path, _TRAIN_VOICES)                      # (240, 16000)
    x_test, y_test = _spoken_digits(tmp_path, _TEST_VOICES)             # (60, 16000): voices never seen
    model = get("audio_transformer")(num_classes=10, n_mels=64, patch=(8, 16), depth=3, heads=4, width=96,
                                     dropout=0.1)
    model.compile(kiln.optimizers.Adam(1e-3), _sce(), metrics=["accuracy"])
    model.fit(x, y, epochs=60, batch_size=32, verbose=0)
    accuracy = model.evaluate(x_test, y_test, verbose=0, return_dict=True)["accuracy"]
    print(f"spoken digits, held-out voices {_TEST_VOICES}: test accuracy {accuracy:.3f}")
    assert accuracy > 0.8, accuracy
