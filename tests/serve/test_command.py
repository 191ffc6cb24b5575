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


@pytest.mark.parametrize("command", ["kiln serve", "kiln serve --backend onnx", "python -m kiln_edge.serve"])
def test_a_port_in_use_is_one_line_and_exit_1_before_the_model_loads(command, tabular_run, capsys, monkeypatch):
    import socket
    loaded = []
    import kiln.serve.app
    import kiln_edge.run
    monkeypatch.setattr(kiln.serve.app, "load_backend", lambda path: loaded.append(path))
    monkeypatch.setattr(kiln_edge.run, "OnnxRun", lambda *a, **k: loaded.append(a))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        if command.startswith("kiln"):
            from kiln.cli import main
            code = main(["serve", str(tabular_run), "--port", str(busy), *command.split()[2:]])
        else:
            from kiln_edge.serve import main
            code = main([str(tabular_run), "--port", str(busy)])
    err = capsys.readouterr().err
    assert code == 1 and loaded == []
    assert err == f"error: port {busy} on 127.0.0.1 is already in use; stop what listens there or pick another " \
                  f"--port.\n"


def test_a_truncated_onnx_model_is_one_line_naming_the_file(tabular_run, tmp_path, port, capsys):
    import shutil

    from kiln_edge.serve import main
    run = shutil.copytree(tabular_run, tmp_path / "run")
    onnx_file = run / "export" / "model.onnx"
    onnx_file.write_bytes(onnx_file.read_bytes()[:1000])
    assert main([str(run), "--port", str(port())]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {onnx_file} cannot be loaded by onnxruntime (")
    assert f"export it again with `kiln export {run} --format onnx`" in err
