"""Images and audio over HTTP: a base64 PNG, a nested list of pixels and a multipart upload; a WAV
upload, a base64 WAV and a list of samples — each answer equal to `kiln predict` on the same files.
Both backends, where kiln_edge can preprocess the media (else the onnx case is skipped, saying why)."""

import base64
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

httpx = pytest.importorskip("httpx")
PIL = pytest.importorskip("PIL")
sf = pytest.importorskip("soundfile")
from PIL import Image  # noqa: E402

from kiln.serve import Client, ServeSettings  # noqa: E402

CONFIG = """\
    name: {name}
    seed: 0
    output_dir: {out}
    data:
      source: {folder}
      split: {{train: 0.6, validation: 0.2, test: 0.2}}
    input_features:
      - {feature}
    output_features:
      - {{name: label, type: category}}
    training: {{epochs: 1, batch_size: 8, early_stopping: null}}
"""
RATE = 8000
AUDIO = "{name: audio, type: audio, preprocessing: {sample_rate: 8000, duration: 0.25, n_mels: 16}}"


def write_image(path, light, seed):
    rng = np.random.default_rng(seed)
    pixels = rng.integers(150, 256, (8, 8)) if light else rng.integers(0, 100, (8, 8))
    Image.fromarray(pixels.astype(np.uint8)).save(path)


def write_tone(path, high, seed):
    t = np.arange(RATE // 4) / RATE
    sf.write(path, 0.5 * np.sin(2 * np.pi * ((2000.0 if high else 300.0) + 20 * seed) * t), RATE)


def train_run(tmp, name, feature, write, classes, suffix):
    """Train a 1-epoch run on a class folder of media; return it and `kiln predict` on 4 unseen files."""
    from kiln.config import load_config_text
    from kiln.workflows.train import train
    for flag, cls in enumerate(classes):
        (tmp / "data" / cls).mkdir(parents=True)
        for i in range(8):
            write(tmp / "data" / cls / f"{i}{suffix}", flag, i)
    files = [tmp / f"new-{i}{suffix}" for i in range(4)]
    for i, path in enumerate(files):
        write(path, i % 2, 100 + i)
    config = load_config_text(textwrap.dedent(CONFIG.format(name=name, out=tmp / "runs", folder=tmp / "data",
                                                            feature=feature)))
    run_dir = Path(train(config, verbose=0).run_dir)
    column = "image" if suffix == ".png" else "audio"
    pd.DataFrame({column: [str(p) for p in files]}).to_csv(tmp / "new.csv", index=False)
    return run_dir, files, tmp / "new.csv"


@pytest.fixture(scope="module")
def image_run(tmp_path_factory, predict_reference):
    run_dir, files, csv = train_run(tmp_path_factory.mktemp("image"), "shades", "{name: image, type: image}",
                                    lambda p, light, seed: write_image(p, light, seed), ("dark", "light"), ".png")
    return run_dir, files, predict_reference(run_dir, csv, csv.with_name("p.csv"))


@pytest.fixture(scope="module")
def audio_run(tmp_path_factory, predict_reference):
    run_dir, files, csv = train_run(tmp_path_factory.mktemp("audio"), "tones", AUDIO,
                                    lambda p, high, seed: write_tone(p, high, seed), ("low", "high"), ".wav")
    return run_dir, files, predict_reference(run_dir, csv, csv.with_name("p.csv"))


def media_server(kind, run_dir, files, column, serve):
    """``serve(app)`` for the run on ``kind``'s backend; the onnx case is skipped if kiln_edge cannot
    preprocess this media type yet."""
    if kind == "torch":
        from kiln.serve import create_app, load_backend
        return serve(create_app(load_backend(run_dir), ServeSettings()))
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from kiln.export.onnx import export_onnx
    from kiln.workflows.run import load_run
    from kiln_edge import OnnxRun, UnsupportedFeatureError
    from kiln_edge.server import create_app
    onnx_file = run_dir / "export" / "model.onnx"
    if not onnx_file.exists():
        onnx_file.parent.mkdir(exist_ok=True)
        export_onnx(load_run(run_dir), onnx_file)
    backend = OnnxRun(run_dir, threads=1)
    try:
        backend.predict_frame(pd.DataFrame({column: [str(files[0])]}))
    except UnsupportedFeatureError as err:
        pytest.skip(f"kiln_edge cannot preprocess {column} features yet, so the onnx server cannot serve them: {err}")
    return serve(create_app(backend, ServeSettings()))


def b64(path):
    return base64.b64encode(Path(path).read_bytes()).decode()


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["torch", "onnx"])
def test_images_as_base64_nested_lists_and_uploads_equal_kiln_predict(kind, image_run, serve, same):
    run_dir, files, expected = image_run
    with media_server(kind, run_dir, files, "image", serve) as server:
        client = Client(server.url)
        assert "/predict/file" in httpx.get(server.url + "/openapi.json").json()["paths"]  # a single-image run
        same(client.predict([{"image": b64(p)} for p in files]), expected, "label")
        pixels = [np.asarray(Image.open(p)).tolist() for p in files]  # (8, 8) nested lists of 0..255
        same(client.predict([{"image": grid} for grid in pixels]), expected, "label")
        data_url = "data:image/png;base64," + b64(files[0])
        same(client.predict([{"image": data_url}]), expected.iloc[[0]], "label")
        for i, path in enumerate(files):
            same(client.predict_file(path), expected.iloc[[i]], "label")
        bad = httpx.post(server.url + "/predict", json={"records": [{"image": "not base64!"}]})
        assert bad.status_code == 422 and bad.json()["field"] == "records[0].image"
        unreadable = httpx.post(server.url + "/predict", json={"records": [{"image": b64(__file__)}]})
        assert unreadable.status_code == 422 and "cannot be read as an image" in unreadable.json()["error"]
        ragged = httpx.post(server.url + "/predict", json={"records": [{"image": [[1, 2], [3]]}]})
        assert ragged.status_code == 422 and ragged.json()["field"] == "records[0].image"
        upload = httpx.post(server.url + "/predict/file", files={"file": ("x.png", b"not a png")})
        assert upload.status_code == 422 and "image" in upload.json()["error"]
        assert client.health()["status"] == "ok"


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["torch", "onnx"])
def test_audio_as_wav_uploads_base64_and_samples_equal_kiln_predict(kind, audio_run, serve, same):
    run_dir, files, expected = audio_run
    # Held to 1e-5 on onnx too: kiln_edge's log-mel differs from torch.stft's by float32 FFT rounding
    # only (kiln_edge/audio.py), far below what moves these tones' probabilities by 1e-5.
    with media_server(kind, run_dir, files, "audio", serve) as server:
        client = Client(server.url)
        for i, path in enumerate(files):
            same(client.predict_file(path), expected.iloc[[i]], "label")
        same(client.predict([{"audio": b64(p)} for p in files]), expected, "label")
        samples = [sf.read(p, dtype="float32")[0].tolist() for p in files]  # what soundfile gives kiln
        same(client.predict([{"audio": wave} for wave in samples]), expected, "label")
        stereo = httpx.post(server.url + "/predict", json={"records": [{"audio": [[0.0, 0.1], [0.2, 0.3]]}]})
        assert stereo.status_code == 422 and stereo.json()["field"] == "records[0].audio"
        upload = httpx.post(server.url + "/predict/file", files={"file": ("x.wav", b"RIFF....WAVE")})
        assert upload.status_code == 422 and "audio" in upload.json()["error"]
        assert client.health()["status"] == "ok"


def _png_header(width, height):
    """A PNG that declares ``width`` x ``height`` RGB pixels and holds none: what the server must
    refuse from the header alone, before any decoder allocates the image."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) + \
        chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.mark.slow
def test_images_over_the_pixel_limit_are_413_naming_the_field_before_decoding(image_run, serve):
    from kiln.serve import create_app, load_backend
    run_dir, files, _ = image_run
    bomb = base64.b64encode(_png_header(10_000, 10_000)).decode()  # 100 M pixels: 300 MB decoded, 1.2 GB as float
    with serve(create_app(load_backend(run_dir), ServeSettings())) as server:
        response = httpx.post(server.url + "/predict", json={"records": [{"image": b64(files[0])}, {"image": bomb}]})
        assert response.status_code == 413, response.text
        assert response.json() == {"field": "records[1].image", "error": (
            "`records[1].image` is an image of 10000 x 10000 = 100000000 pixels; the server takes at most 16777216 "
            "pixels per image (--max-image-pixels). Resize it before sending.")}
        upload = httpx.post(server.url + "/predict/file", files={"file": ("big.png", _png_header(5000, 4000))})
        assert upload.status_code == 413 and upload.json()["field"] == "file"
        assert "5000 x 4000 = 20000000 pixels" in upload.json()["error"]
    # The limit applies to real images, and to nested lists of pixels, at the configured size.
    with serve(create_app(load_backend(run_dir), ServeSettings(max_image_pixels=63))) as server:
        for record in ({"image": b64(files[0])}, {"image": np.asarray(Image.open(files[0])).tolist()}):
            response = httpx.post(server.url + "/predict", json={"records": [record]})
            assert response.status_code == 413 and "8 x 8 = 64 pixels" in response.json()["error"], response.text
        assert httpx.get(server.url + "/metadata").json()["limits"]["max_image_pixels"] == 63
