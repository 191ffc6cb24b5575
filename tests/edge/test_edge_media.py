"""kiln_edge's image and audio features against kiln's own (the torch reference), then whole runs.

Images must be bit-identical (kiln decodes with Pillow + NumPy too). Audio agrees up to float32
FFT rounding: torch.stft runs a float32 FFT that NumPy cannot reproduce bit for bit, so the
log-mel is compared with a tolerance that follows from that rounding (see ``fft_rounding_bound``).
"""

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kiln_edge import EdgeDataError, EdgeError

pytest.importorskip("PIL")
sf = pytest.importorskip("soundfile")
from PIL import Image  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


# ---- shared data -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mnist():
    from kiln.data import load_bundled
    frame = load_bundled("mnist5k")
    return [frame["image"][i] for i in range(40)]  # 28x28 uint8


@pytest.fixture(scope="module")
def digits():
    from kiln.data import load_bundled
    return load_bundled("sklearn:digits")["image"][:12].tolist()  # 8x8 float64, 0..16


@pytest.fixture(scope="module")
def image_files(tmp_path_factory, mnist, digits):
    """{kind: path}: real digits saved in every mode the edge must decode, all 28x28."""
    folder = tmp_path_factory.mktemp("images")
    gray = mnist[0]
    rgb = np.stack(mnist[1:4], axis=2)                                          # three digits, one per channel
    rgba = np.concatenate([rgb, mnist[4][:, :, None]], axis=2)                  # a fourth as alpha
    big_digit = np.kron(digits[0], np.ones((4, 4)))[2:30, 2:30]                 # 8x8 -> 32x32 -> 28x28
    images = {"gray.png": Image.fromarray(gray), "gray.jpg": Image.fromarray(mnist[5]),
              "rgb.png": Image.fromarray(rgb), "rgb.jpg": Image.fromarray(rgb), "rgba.png": Image.fromarray(rgba),
              "gray16.png": Image.fromarray((big_digit * 4000).astype(np.uint16)),
              "palette.png": Image.fromarray(rgb).convert("P"),
              "bw.png": Image.fromarray(mnist[6] > 127)}
    paths = {}
    for name, image in images.items():
        image.save(folder / name)
        paths[name] = folder / name
    return paths


def kiln_and_edge(kiln_feature, train, test, folder):
    """(kiln's transform, kiln_edge's transform) of ``test`` after fitting ``kiln_feature`` on ``train``."""
    from kiln.data.features import save_features
    from kiln_edge import load_features
    kiln_feature.fit(pd.Series(train))
    save_features([kiln_feature], folder)
    edge = load_features(folder)[kiln_feature.name]
    return kiln_feature.transform(pd.Series(test)).numpy(), edge.transform(pd.Series(test))


def kiln_and_edge_errors(kiln_feature, train, bad, folder):
    """(kiln's DataError message, kiln_edge's EdgeDataError message) for transforming ``bad``."""
    from kiln.data.features import save_features
    from kiln.errors import DataError
    from kiln_edge import load_features
    kiln_feature.fit(pd.Series(train))
    save_features([kiln_feature], folder)
    edge = load_features(folder)[kiln_feature.name]
    with pytest.raises(DataError) as theirs:
        kiln_feature.transform(pd.Series(bad))
    with pytest.raises(EdgeDataError) as ours:
        edge.transform(pd.Series(bad))
    return str(theirs.value), str(ours.value)


def option_id(options: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in options.items()) or "defaults"


# ---- images --------------------------------------------------------------------------------------------
IMAGE_OPTIONS = [
    {},                                                             # no resize: every image 28x28
    {"channels": 3},
    {"height": 20, "width": 24},                                    # bilinear
    {"height": 32, "width": 32, "channels": 3, "resize": "bicubic"},
    {"height": 14, "width": 14, "resize": "nearest"},
    {"height": 17, "width": 11, "channels": 1, "resize": "lanczos"},
]


@pytest.mark.parametrize("options", IMAGE_OPTIONS, ids=option_id)
def test_image_files_and_arrays_are_bit_identical(options, image_files, mnist, tmp_path):
    from kiln.data.features import ImageFeature
    paths = list(image_files.values())
    arrays = [mnist[7], mnist[8][:, :, None], np.stack(mnist[9:12], axis=2),
              np.stack(mnist[12:16], axis=2), mnist[16].astype(np.float64), mnist[17].astype(np.int32)]
    test = paths + [str(p) for p in paths[:2]] + arrays
    theirs, ours = kiln_and_edge(ImageFeature("img", **options), [image_files["gray.png"]] * 2, test, tmp_path)
    assert ours.dtype == np.float32 and ours.shape == theirs.shape and len(ours) == len(test)
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("options", [{"height": 12, "width": 12}, {"height": 8, "width": 8, "channels": 3},
                                     {"height": 5, "width": 9, "resize": "bicubic"}, {}])
def test_float_digits_and_16_bit_images_are_bit_identical(options, digits, image_files, tmp_path):
    """sklearn's 0..16 float digits: divisor = the training maximum; non-8-bit images resize as float planes."""
    from kiln.data.features import ImageFeature
    test = digits[6:] + [np.stack(digits[:3], axis=2), digits[3].astype(np.int64), digits[4][:, :, None]]
    theirs, ours = kiln_and_edge(ImageFeature("img", **options), digits[:6], test, tmp_path)
    np.testing.assert_array_equal(ours, theirs)
    if options:  # 16-bit PNGs (mode I;16, divisor 65535) need a resize from 28x28
        (tmp_path / "16").mkdir()
        theirs, ours = kiln_and_edge(ImageFeature("img", **options), [image_files["gray16.png"]],
                                     [image_files["gray16.png"], image_files["rgb.png"], digits[0]], tmp_path / "16")
        np.testing.assert_array_equal(ours, theirs)


def test_image_feature_from_mnist_png_and_jpeg_files(mnist, tmp_path):
    """A folder of real PNG + JPEG digits, decoded and resized the way kiln decodes them."""
    from kiln.data.features import ImageFeature
    paths = []
    for i, digit in enumerate(mnist[:20]):
        paths.append(tmp_path / f"{i}.{'png' if i % 2 else 'jpg'}")
        Image.fromarray(digit).save(paths[-1])
    (tmp_path / "features").mkdir()
    theirs, ours = kiln_and_edge(ImageFeature("img", height=16, width=16), paths[:10], paths, tmp_path / "features")
    np.testing.assert_array_equal(ours, theirs)


def test_image_errors_say_what_kiln_says(image_files, mnist, tmp_path):
    from kiln.data.features import ImageFeature
    (tmp_path / "broken.png").write_bytes(b"not a png at all")
    Image.fromarray(mnist[0][:20, :20]).save(tmp_path / "small.png")
    bad_values = {"missing value": [mnist[0], None], "nan": [np.nan], "no such file": [tmp_path / "nope.png"],
                  "corrupt file": [str(tmp_path / "broken.png")], "wrong size": [mnist[0], mnist[0][:20]],
                  "wrong size file": [image_files["gray.png"], tmp_path / "small.png"],
                  "bad shape": [np.zeros((28, 28, 2))], "text array": [np.array([["a"]])], "bytes": [b"\x89PNG"]}
    for i, (case, bad) in enumerate(bad_values.items()):
        (tmp_path / str(i)).mkdir()
        theirs, ours = kiln_and_edge_errors(ImageFeature("img"), [image_files["gray.png"]], bad, tmp_path / str(i))
        assert ours == theirs, case
        assert "'img'" in ours and "row" in ours, case


def test_image_error_messages_name_the_row_file_and_fix(mnist, tmp_path):
    from kiln.data.features import ImageFeature, save_features
    from kiln_edge import load_features
    save_features([ImageFeature("img").fit(pd.Series([mnist[0]]))], tmp_path)
    edge = load_features(tmp_path)["img"]
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    Image.fromarray(mnist[0][:20, :20]).save(tmp_path / "small.png")
    cases = [([None], "row 0 has no image.*Drop the row or fill it"),
             ([mnist[0], tmp_path / "nope.png"], "row 1 .*nope.png.*does not exist. Fix the path"),
             ([tmp_path / "broken.jpg"], "row 0 .*broken.jpg.*cannot be read as an image.*Replace or remove"),
             ([tmp_path / "small.png"], "small.png.*20x20.*28x28.*Set `height` and `width`"),
             ([np.zeros((28, 28, 2))], r"row 0 holds an array of shape \(28, 28, 2\)")]
    for values, message in cases:
        with pytest.raises(EdgeDataError, match=message):
            edge.transform(pd.Series(values))


def test_image_without_pillow_says_how_to_install_it(image_files, mnist, tmp_path, monkeypatch):
    from kiln.data.features import ImageFeature, save_features
    from kiln_edge import load_features
    save_features([ImageFeature("img").fit(pd.Series([mnist[0]]))], tmp_path)
    edge = load_features(tmp_path)["img"]
    monkeypatch.setitem(sys.modules, "PIL", None)  # `from PIL import Image` now raises ImportError
    with pytest.raises(EdgeError, match="pip install pillow"):
        edge.transform(pd.Series([image_files["gray.png"]]))


# ---- audio ---------------------------------------------------------------------------------------------
EPS32 = float(np.finfo(np.float32).eps)


def fft_rounding_bound(mel: np.ndarray) -> np.ndarray:
    """Per value, the relative error in a mel band that torch's float32 FFT rounding explains.

    A float32 FFT errs in every bin by about ``eps * ||X||`` (the frame's spectrum norm, led by
    its loudest bin); a band of power P then errs by ``~2 |X_band| eps ||X||``, relatively
    ``~eps * sqrt(peak / P)``. So the bound is a few ulps at a frame's loudest band and grows
    only in bands far below it (4 eps * 1e3 = 5e-4 at 60 dB down). The measured constant is
    <= 0.94 (the tests below; MKL torch 2.13 vs NumPy 2.4); 4 leaves room for other FFT libraries.
    ``mel``: kiln's linear mel power ``(rows, frames, n_mels)``.
    """
    peak = mel.max(axis=-1, keepdims=True)                  # each frame's loudest band
    return 4e-6 + 4 * EPS32 * np.sqrt(peak / np.maximum(mel, 1e-30))


def assert_mel_close(ours, theirs, mel, log=True, std=1.0):
    """|ours - theirs| within ``fft_rounding_bound`` (times the value for linear mel), over ``std`` for
    standardised values, plus 4 ulps of the value for the float32 rounding of the standardisation."""
    bound = fft_rounding_bound(mel) * (1.0 if log else mel) / std + 4 * EPS32 * np.abs(theirs)
    difference = np.abs(ours.astype(np.float64) - theirs.astype(np.float64))
    worst = np.unravel_index(np.argmax(difference / np.maximum(bound, 1e-300)), difference.shape)
    assert (difference <= bound).all(), (f"{difference[worst]:.3g} at {worst} exceeds the float32 FFT bound "
                                         f"{bound[worst]:.3g} (mel {mel[worst]:.3g})")


def write_wavs(folder: Path, rate: int) -> list:
    """Real clips of 1 s at ``rate``: chirp, noise, sines (loud, quiet), stereo, short, long, silence."""
    rng = np.random.default_rng(0)
    t = np.arange(rate) / rate
    clips = {"chirp_float.wav": (0.8 * np.sin(2 * np.pi * (50 * t + (rate / 2.2 - 50) / 2 * t ** 2)), "FLOAT"),
             "noise_int16.wav": (rng.normal(scale=0.3, size=t.size).clip(-1, 1), "PCM_16"),
             "sine440.wav": (0.5 * np.sin(2 * np.pi * 440 * t), "PCM_16"),
             "sine1000_loud.wav": (0.99 * np.sin(2 * np.pi * 1000 * t), "PCM_16"),
             "sine3000_quiet.wav": (0.01 * np.sin(2 * np.pi * 3000 * t), "FLOAT"),
             "stereo.wav": (np.stack([0.4 * np.sin(2 * np.pi * 300 * t), 0.3 * np.sin(2 * np.pi * 2500 * t)], 1),
                            "PCM_24"),
             "short.wav": (0.5 * np.sin(2 * np.pi * 700 * t[:rate // 3]), "PCM_16"),     # zero-padded
             "long.wav": (np.tile(0.3 * np.sin(2 * np.pi * 200 * t), 2), "DOUBLE"),       # cut
             "silence.wav": (np.zeros(t.size), "PCM_16")}
    folder.mkdir(parents=True, exist_ok=True)
    for name, (wave, subtype) in clips.items():
        sf.write(folder / name, wave, rate, subtype=subtype)
    return [folder / name for name in clips]


def in_memory_waves(rate: int) -> list:
    """Waveforms as arrays kiln accepts: int16 PCM, float64, a short float32 one, a plain list."""
    t = np.arange(rate) / rate
    chirp = 0.8 * np.sin(2 * np.pi * (50 * t + (rate / 2.2 - 50) / 2 * t ** 2))
    return [(chirp * 32767).astype(np.int16), chirp, chirp.astype(np.float32)[:100],
            list(0.2 * np.sin(2 * np.pi * 5 * t))]


AUDIO_OPTIONS = [
    {},                                                                   # 16 kHz, 1 s, n_fft 400, hop 160, 64 mels
    {"sample_rate": 8000, "duration": 0.25, "n_mels": 16},
    {"mel_scale": "slaney", "n_fft": 512, "hop_length": 128, "n_mels": 40},
    {"n_fft": 401, "duration": 0.5},                                      # odd window
    {"log": False},
]


def test_mel_filterbank_is_kilns_and_the_window_is_torchs():
    import torch
    from kiln.data.features.audio import mel_filterbank as kiln_filterbank
    from kiln_edge import audio
    for args in ((16000, 400, 64), (8000, 400, 16), (22050, 2048, 128), (16000, 512, 40)):
        for scale in ("htk", "slaney"):
            np.testing.assert_array_equal(audio.mel_filterbank(*args, scale=scale),
                                          kiln_filterbank(*args, scale=scale).numpy())
    for n_fft in (400, 401, 512, 2048):
        # torch's vectorised cos differs from a correctly rounded one by 1 ulp at a few points
        np.testing.assert_allclose(audio.hann_window(n_fft), torch.hann_window(n_fft).numpy(), rtol=0, atol=EPS32)


@pytest.mark.parametrize("options", AUDIO_OPTIONS, ids=option_id)
def test_audio_matches_kiln_up_to_float32_fft_rounding(options, tmp_path):
    import torch
    from kiln.data.features import AudioFeature, save_features
    from kiln_edge import load_features
    theirs = AudioFeature("clip", **options)
    paths = write_wavs(tmp_path / "wavs", theirs.sample_rate)
    values = pd.Series(paths + [str(paths[0])] + in_memory_waves(theirs.sample_rate))
    theirs.fit(pd.Series(paths[:4]))
    save_features([theirs], tmp_path)
    ours = load_features(tmp_path)["clip"]
    waves = ours.waveforms(values)
    np.testing.assert_array_equal(waves, theirs.waveforms(values).numpy())  # reading, mixing, padding: exact
    their_mel = theirs.spectrogram(torch.from_numpy(waves)).numpy()
    mel = np.maximum(np.exp(their_mel.astype(np.float64)) - 1e-6, 0.0) if theirs.log else their_mel.astype(np.float64)
    assert_mel_close(ours.spectrogram(waves), their_mel, mel, log=theirs.log)
    transformed = ours.transform(values)
    assert transformed.dtype == np.float32 and transformed.shape == tuple(theirs.transform(values).shape)
    assert_mel_close(transformed[..., 0], theirs.transform(values).numpy()[..., 0], mel, log=theirs.log,
                     std=theirs.std)


def test_audio_errors_say_what_kiln_says(tmp_path):
    from kiln.data.features import AudioFeature
    paths = write_wavs(tmp_path / "wavs", 8000)
    (tmp_path / "broken.wav").write_bytes(b"RIFF not really")
    sf.write(tmp_path / "fast.wav", np.zeros(4000), 16000)
    bad_values = {"missing value": [paths[0], None], "no such file": [tmp_path / "nope.wav"],
                  "corrupt file": [str(tmp_path / "broken.wav")], "sample rate": [paths[1], tmp_path / "fast.wav"],
                  "2-D array": [np.zeros((2, 100))], "text array": [np.array(["a", "b"])]}
    for i, (case, bad) in enumerate(bad_values.items()):
        (tmp_path / str(i)).mkdir()
        feature = AudioFeature("clip", sample_rate=8000, duration=0.25, n_mels=16)
        theirs, ours = kiln_and_edge_errors(feature, paths[:2], bad, tmp_path / str(i))
        assert ours == theirs, case
        assert "'clip'" in ours and "row" in ours, case


def test_audio_without_soundfile_says_how_to_install_it(tmp_path, monkeypatch):
    from kiln.data.features import AudioFeature, save_features
    from kiln_edge import load_features
    paths = write_wavs(tmp_path / "wavs", 8000)
    save_features([AudioFeature("clip", sample_rate=8000, duration=0.25, n_mels=16).fit(pd.Series(paths))], tmp_path)
    edge = load_features(tmp_path)["clip"]
    monkeypatch.setitem(sys.modules, "soundfile", None)
    assert edge.transform(pd.Series(in_memory_waves(8000))).shape == (4, 13, 16, 1)  # arrays need no soundfile
    with pytest.raises(EdgeError, match="pip install soundfile"):
        edge.transform(pd.Series(paths[:1]))


# ---- whole runs: train with kiln, export ONNX, predict with kiln_edge ------------------------------------
RUN_CONFIG = """\
    name: {name}
    seed: 0
    output_dir: {out}
    data:
      source: {source}
      split: {{train: 0.6, validation: 0.2, test: 0.2}}
    input_features:
      - {feature}
    output_features:
      - {{name: label, type: category}}
    training: {{epochs: 1, batch_size: 8, early_stopping: null}}
"""


def train_and_export(folder: Path, name: str, source: Path, feature: str) -> Path:
    """A run trained through the YAML lifecycle, with export/model.onnx beside it."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from kiln.config import load_config_text
    from kiln.export.onnx import export_onnx
    from kiln.workflows.run import load_run
    from kiln.workflows.train import train
    config = load_config_text(textwrap.dedent(RUN_CONFIG.format(name=name, out=folder / "runs", source=source,
                                                                feature=feature)))
    path = Path(train(config, verbose=0).run_dir)
    (path / "export").mkdir(exist_ok=True)
    export_onnx(load_run(path), path / "export" / "model.onnx")
    return path


@pytest.fixture(scope="module")
def image_run(tmp_path_factory, mnist):
    folder = tmp_path_factory.mktemp("image_run")
    for i, digit in enumerate(mnist[:30]):
        label = ("even", "odd")[i % 2]
        (folder / "digits" / label).mkdir(parents=True, exist_ok=True)
        Image.fromarray(digit).save(folder / "digits" / label / f"{i}.{'png' if i % 3 else 'jpg'}")
    feature = "{name: image, type: image, preprocessing: {height: 16, width: 16, channels: 1}}"
    return train_and_export(folder, "edge-image", folder / "digits", feature)


@pytest.fixture(scope="module")
def audio_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("audio_run")
    rate, t = 8000, np.arange(2000) / 8000
    for cls, freq in (("low", 300.0), ("high", 2000.0)):
        (folder / "wavs" / cls).mkdir(parents=True)
        for i in range(8):
            sf.write(folder / "wavs" / cls / f"{i}.wav", 0.5 * np.sin(2 * np.pi * (freq + 20 * i) * t), rate)
    feature = "{name: audio, type: audio, preprocessing: {sample_rate: 8000, duration: 0.25, n_mels: 16}}"
    return train_and_export(folder, "edge-audio", folder / "wavs", feature)


def image_rows(image_files, mnist, digits) -> pd.DataFrame:
    """Raw rows a user would send: PNG/JPEG/RGBA/16-bit paths and in-memory arrays of other sizes."""
    return pd.DataFrame({"image": list(image_files.values()) + [str(image_files["gray.jpg"]), mnist[30],
                                                                np.stack(mnist[31:34], axis=2), mnist[34][:20, :],
                                                                digits[0]]})


def audio_rows(folder: Path) -> pd.DataFrame:
    return pd.DataFrame({"audio": write_wavs(folder, 8000) + in_memory_waves(8000)})


def assert_same_predictions(got: pd.DataFrame, expected: pd.DataFrame, atol: float):
    assert list(got.columns) == list(expected.columns) and list(got.index) == list(expected.index)
    assert got["label"].tolist() == expected["label"].tolist()
    np.testing.assert_allclose(got.iloc[:, 1:].to_numpy(), expected.iloc[:, 1:].to_numpy(), rtol=0, atol=atol)


def test_image_run_predicts_like_kiln(image_run, image_files, mnist, digits):
    from kiln.workflows.run import load_run
    from kiln_edge import OnnxRun
    rows = image_rows(image_files, mnist, digits)
    assert_same_predictions(OnnxRun(image_run).predict_frame(rows), load_run(image_run).predict_frame(rows), 1e-4)


def test_audio_run_predicts_like_kiln(audio_run, tmp_path):
    from kiln.workflows.run import load_run
    from kiln_edge import OnnxRun
    rows = audio_rows(tmp_path)
    assert_same_predictions(OnnxRun(audio_run).predict_frame(rows), load_run(audio_run).predict_frame(rows), 1e-4)


@pytest.mark.parametrize("kind", ["image", "audio"])
def test_media_runs_predict_without_importing_torch(kind, request, image_files, mnist, digits, tmp_path):
    """A fresh interpreter predicts a CSV of media paths through kiln_edge, and torch never loads."""
    run = request.getfixturevalue(f"{kind}_run")
    rows = (pd.DataFrame({"image": [str(p) for p in image_files.values()]}) if kind == "image"
            else pd.DataFrame({"audio": [str(p) for p in write_wavs(tmp_path / "wavs", 8000)]}))
    rows.to_csv(tmp_path / "rows.csv", index=False)
    script = textwrap.dedent(f"""
        import sys
        import pandas as pd
        from kiln_edge import OnnxRun
        out = OnnxRun({str(run)!r}).predict_frame(pd.read_csv({str(tmp_path / 'rows.csv')!r}))
        out.to_csv({str(tmp_path / 'edge.csv')!r}, index=False)
        assert 'torch' not in sys.modules, 'torch was imported'
        print("no torch")
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "no torch" in done.stdout
    from kiln.workflows.run import load_run
    expected = load_run(run).predict_frame(rows)
    assert_same_predictions(pd.read_csv(tmp_path / "edge.csv"), expected, 1e-4)
