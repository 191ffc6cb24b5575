"""`kiln serve` over a real socket: predictions equal `kiln predict`, bad requests get a 4xx naming
the field, concurrent requests are micro-batched, and /metrics parses."""

import asyncio
import json
import socket
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from kiln.serve.app import ServeSettings, create_app  # noqa: E402
from kiln.serve.client import Client, ServeError  # noqa: E402

CONFIG = """\
    # kiln train cfg.yaml
    name: tiny
    seed: 0
    output_dir: {out}
    data:
      source: {csv}
      split: {{train: 0.7, validation: 0.15, test: 0.15}}
    input_features:
      - {{name: size, type: numeric}}
      - {{name: weight, type: numeric}}
      - {{name: colour, type: category}}
    output_features:
      - {{name: kind, type: category}}
    training:
      epochs: 2
      batch_size: 16
      optimizer: {{name: adam, learning_rate: 0.01}}
      early_stopping: null
"""


def make_rows(n, seed=0):
    rng = np.random.default_rng(seed)
    size = rng.normal(size=n).round(3)
    weight = rng.normal(size=n).round(3)
    colour = rng.choice(["red", "green", "blue"], size=n)
    kind = np.where(size + (colour == "red") > 0.5, "big", np.where(weight > 0, "heavy", "small"))
    return pd.DataFrame({"size": size, "weight": weight, "colour": colour, "kind": kind})


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from kiln.config import load_config_text
    from kiln.workflows.run import load_run
    from kiln.workflows.train import train
    folder = tmp_path_factory.mktemp("serve")
    make_rows(120).to_csv(folder / "data.csv", index=False)
    config = load_config_text(textwrap.dedent(CONFIG.format(out=folder / "runs", csv=folder / "data.csv")))
    return load_run(train(config, verbose=0).run_dir)


class Server:
    """A real uvicorn server on 127.0.0.1 and a free port, in a background thread."""

    def __init__(self, app):
        import uvicorn
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("the server did not start")

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def server(run):
    with Server(create_app(run, ServeSettings(max_batch_size=32, max_latency_ms=20, max_body_bytes=200_000))) as s:
        yield s


def records(frame):
    return json.loads(frame.drop(columns=["kind"]).to_json(orient="records"))


def assert_same(predictions, expected):
    assert len(predictions) == len(expected)
    for got, (_, want) in zip(predictions, expected.iterrows()):
        assert set(got) == set(want.index)
        assert got["kind"] == want["kind"]
        for column in want.index.drop("kind"):
            assert got[column] == pytest.approx(float(want[column]), abs=1e-5)


def test_predictions_equal_predict_frame_and_kiln_predict(run, server, tmp_path):
    from kiln.cli import main
    rows = make_rows(25, seed=1)
    predictions = Client(server.url).predict(records(rows))
    assert_same(predictions, run.predict_frame(rows.drop(columns=["kind"])))
    rows.drop(columns=["kind"]).to_csv(tmp_path / "rows.csv", index=False)
    assert main(["predict", str(run.path), "--data", str(tmp_path / "rows.csv"),
                 "--output", str(tmp_path / "p.csv")]) == 0
    assert_same(predictions, pd.read_csv(tmp_path / "p.csv").drop(columns=["row"]))


def test_health_metadata_openapi(server):
    client = Client(server.url)
    assert client.health()["status"] == "ok"
    meta = client.metadata()
    assert meta["model"] == "tiny" and meta["backend"] == "torch" and meta["kiln_version"]
    assert [(f["name"], f["type"]) for f in meta["inputs"]] == [("size", "numeric"), ("weight", "numeric"),
                                                                ("colour", "category")]
    assert meta["outputs"][0]["spec"]["classes"] == ["big", "heavy", "small"]
    doc = httpx.get(server.url + "/openapi.json").json()
    schema = doc["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert set(schema["properties"]["records"]["items"]["required"]) == {"size", "weight", "colour"}
    assert "/predict/file" in doc["paths"]


@pytest.mark.parametrize("body, status, field", [
    ({"records": [{"size": 1.0, "weight": 0.1}]}, 422, "records[0].colour"),
    ({"records": [{"size": 1.0, "weight": 0.1, "colour": "red"}, {"size": "big", "weight": 0, "colour": "red"}]},
     422, "records[1].size"),
    ({"records": [{"size": 1.0, "weight": 0.1, "colour": ["red"]}]}, 422, "records[0].colour"),
    ({"records": [{"size": 1.0, "weight": 0.1, "colour": {"a": 1}}]}, 422, "records[0].colour"),
    ({"records": [5]}, 422, "records[0]"),
    ({"records": []}, 422, "records"),
    ({"records": "x"}, 422, "records"),
    ({"rows": []}, 422, "records"),
    ({"records": [{"size": 1, "weight": 1, "colour": "red"}] * 1001}, 413, "records"),
])
def test_validation_errors_are_4xx_naming_the_field(server, body, status, field):
    response = httpx.post(server.url + "/predict", json=body, timeout=10)
    assert response.status_code == status, response.text
    assert response.json()["field"] == field
    assert field.split(".")[-1] in response.json()["error"]


def test_malformed_json_oversized_body_and_file_endpoint(server):
    response = httpx.post(server.url + "/predict", content=b'{"records": [', headers={"content-type": "application/json"})
    assert response.status_code == 400 and response.json()["field"] == "body"
    response = httpx.post(server.url + "/predict", content=b"x" * 300_000)
    assert response.status_code == 413 and "max-body-bytes" in response.json()["error"]
    response = httpx.post(server.url + "/predict/file", files={"file": ("a.png", b"123")})
    assert response.status_code == 422 and response.json()["field"] == "file"
    with pytest.raises(ServeError) as err:
        Client(server.url).predict([{"size": "x", "weight": 1, "colour": "red"}])
    assert err.value.status == 422 and err.value.field == "records[0].size"


def test_concurrent_mixed_stream_is_batched_and_each_caller_gets_its_rows(run, server):
    rows = make_rows(48, seed=2)
    expected = run.predict_frame(rows.drop(columns=["kind"]))
    good = records(rows)
    bad = [{"records": [{"size": "oops", "weight": 1, "colour": "red"}]}, {"records": [{"size": 1}]}, None, "big"]

    def send(i):
        with httpx.Client(base_url=server.url, timeout=30) as http:
            if i % 6 == 5:  # a bad request among the good ones
                kind = bad[(i // 6) % len(bad)]
                if kind is None:
                    r = http.post("/predict", content=b"{not json", headers={"content-type": "application/json"})
                elif kind == "big":
                    r = http.post("/predict", content=b"[" + b"1," * 150_000 + b"1]")
                else:
                    r = http.post("/predict", json=kind)
                return i, None, r
            row = i % len(good)
            return i, row, http.post("/predict", json={"records": [good[row]]})

    before = _batch_histogram(httpx.get(server.url + "/metrics").text)
    with ThreadPoolExecutor(max_workers=24) as pool:
        results = list(pool.map(send, range(72)))
    for i, row, response in results:
        if row is None:
            assert 400 <= response.status_code < 500, response.text
        else:
            assert response.status_code == 200, response.text
            assert_same(response.json()["predictions"], expected.iloc[[row]])
    assert httpx.get(server.url + "/health").status_code == 200  # still up
    after = _batch_histogram(httpx.get(server.url + "/metrics").text)
    single = after["1"] - before["1"]
    total = after["+Inf"] - before["+Inf"]
    assert total < 60 and single < total, (before, after)  # 60 good rows went in fewer, larger batches


def _batch_histogram(text):
    return {line.split('le="')[1].split('"')[0]: float(line.split()[-1])
            for line in text.splitlines() if line.startswith("kiln_batch_size_bucket")}


def test_metrics_text_parses(server):
    httpx.post(server.url + "/predict", json={"records": [{"size": 1, "weight": 1, "colour": "red"}]})
    httpx.post(server.url + "/predict", json={"records": [{"size": 1}]})
    text = httpx.get(server.url + "/metrics").text
    samples = {}
    for line in text.splitlines():
        if line.startswith("#"):
            assert line.startswith(("# HELP ", "# TYPE "))
            continue
        name, value = line.rsplit(" ", 1)
        samples[name] = float(value)
    assert samples['kiln_requests_total{endpoint="/predict",status="200"}'] >= 1
    assert samples['kiln_requests_total{endpoint="/predict",status="422"}'] >= 1
    assert samples['kiln_errors_total{endpoint="/predict"}'] >= 1
    buckets = [v for k, v in samples.items() if k.startswith('kiln_request_latency_seconds_bucket{endpoint="/predict"')]
    assert buckets == sorted(buckets) and buckets[-1] == samples['kiln_request_latency_seconds_count{endpoint="/predict"}']
    assert samples["kiln_batch_size_count"] >= 1


class _Slow:
    """A backend that takes longer than the timeout: the server answers 504 and keeps going."""

    def __init__(self, run, seconds):
        self.run, self.seconds, self.inputs, self.outputs = run, seconds, run.inputs, run.outputs
        self.name, self.backend_name = "slow", "test"

    def predict_frame(self, frame):
        time.sleep(self.seconds)
        return self.run.predict_frame(frame)


def test_slow_prediction_times_out_with_504_and_server_stays_up(run):
    with Server(create_app(_Slow(run, 0.5), ServeSettings(timeout_ms=100))) as server:
        response = httpx.post(server.url + "/predict", json={"records": [{"size": 1, "weight": 1, "colour": "red"}]},
                              timeout=10)
        assert response.status_code == 504 and "timeout" in response.json()["error"]
        assert Client(server.url).metadata()["backend"] == "test"
        assert httpx.get(server.url + "/health").status_code == 200


def test_micro_batcher_returns_each_callers_rows():
    from kiln.serve.batching import MicroBatcher
    sizes = []

    def predict_frame(frame):
        if (frame["x"] < 0).any():
            raise ValueError("negative")
        return pd.DataFrame({"y": frame["x"] * 2})

    async def main():
        batcher = MicroBatcher(predict_frame, max_batch_size=8, max_latency_ms=50, on_batch=sizes.append)
        frames = [pd.DataFrame({"x": [i, i + 100]}) for i in range(10)] + [pd.DataFrame({"x": [-1]})]
        results = await asyncio.gather(*(batcher.submit(f) for f in frames), return_exceptions=True)
        await batcher.stop()
        return results

    results = asyncio.run(main())
    for i, result in enumerate(results[:10]):
        assert result["y"].tolist() == [2 * i, 2 * (i + 100)]
    assert isinstance(results[10], ValueError)
    assert max(sizes) == 8  # joined up to max_batch_size records, never more


def test_kiln_serve_command_answers(run):
    import subprocess
    import sys
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "kiln", "serve", str(run.path), "--port", str(port),
                                "--max-batch-size", "4"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        client, deadline = Client(f"http://127.0.0.1:{port}", timeout=5), time.monotonic() + 60
        while True:
            try:
                assert client.health()["status"] == "ok"
                break
            except httpx.HTTPError:
                assert process.poll() is None and time.monotonic() < deadline, process.stdout.read().decode()
                time.sleep(0.2)
        rows = make_rows(3, seed=3)
        assert_same(client.predict(records(rows)), run.predict_frame(rows.drop(columns=["kind"])))
        assert client.metadata()["limits"]["max_batch_size"] == 4
    finally:
        process.terminate()
        process.wait(timeout=20)
