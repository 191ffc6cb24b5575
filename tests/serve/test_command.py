"""`kiln serve RUN [--backend torch|onnx]` as a user starts it: a real process answers what `kiln
predict` writes, takes every flag, and with --backend onnx never loads torch where the model runs."""

import subprocess
import sys
from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx")

from kiln.serve import Client  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def start(run, port, *flags):
    """``python -m kiln serve RUN --port P FLAGS`` (kiln.cli, as the `kiln` console script runs it)."""
    return subprocess.Popen([sys.executable, "-m", "kiln", "serve", str(run), "--port", str(port), *flags],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.parametrize("kind", ["torch", "onnx"])
def test_kiln_serve_answers_like_kiln_predict(kind, tabular_run, reference, same, port, wait_until_up):
    records, expected = reference
    free = port()
    process = start(tabular_run, free, "--backend", kind, "--max-batch-size", "4", "--max-latency-ms", "2.5",
                    "--timeout-ms", "3000", "--max-body-bytes", "100000", "--max-records", "20",
                    "--max-image-pixels", "1000")
    try:
        wait_until_up(process, f"http://127.0.0.1:{free}")
        client = Client(f"http://127.0.0.1:{free}", timeout=5)
        same(client.predict(records[:20]), expected.iloc[:20], "kind")
        too_many = httpx.post(f"http://127.0.0.1:{free}/predict", json={"records": records[:21]})
        assert too_many.status_code == 413 and too_many.json()["field"] == "records"
        meta = client.metadata()
        assert meta["backend"] == kind
        assert meta["limits"] == {"max_batch_size": 4, "max_latency_ms": 2.5, "timeout_ms": 3000,
                                  "max_body_bytes": 100_000, "max_records": 20, "max_image_pixels": 1000}
        # The process we started is the server (--backend onnx replaces the `kiln` process, no child):
        # torch is in its modules, and its memory, only for the torch backend.
        assert meta["torch_loaded"] is (kind == "torch")
        maps = Path(f"/proc/{process.pid}/maps")
        if maps.exists():
            assert ("libtorch" in maps.read_text()) is (kind == "torch")
        assert "kiln_requests_total" in client.metrics()
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_kiln_serve_refuses_bad_flags_naming_them(tabular_run, capsys):
    from kiln.cli import main
    assert main(["serve", str(tabular_run), "--max-batch-size", "0", "--timeout-ms", "-1",
                 "--backend", "onnx"]) == 2
    err = capsys.readouterr().err
    assert "--max-batch-size" in err and "--timeout-ms" in err
