from pathlib import Path

import numpy as np
import pytest
import torch

import kiln


@pytest.fixture(autouse=True)
def _seed_and_threads():
    """Each test starts from the same seed; kiln's own thread choice is restored by kiln."""
    kiln.utils.set_random_seed(1234)
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def regression_data():
    g = np.random.default_rng(0)
    x = g.random((96, 10)).astype("float32")
    y = (x @ g.random((10, 1)) + 0.05 * g.standard_normal((96, 1))).astype("float32")
    return x, y


def _free_port() -> int:
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def port():
    """``port()``: a free TCP port on 127.0.0.1 (for servers the tests start)."""
    return _free_port


def _wait_until_up(process, url: str, seconds: float = 60.0) -> None:
    """Poll ``url``/health until it answers 200; fail with the process's output if it exits first."""
    import time

    import httpx
    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if process is not None and process.poll() is not None:
            out = process.stdout.read() if process.stdout else ""
            raise AssertionError(f"the server exited with {process.returncode} before answering /health:\n{out}")
        assert time.monotonic() < deadline, f"{url} did not answer /health within {seconds:g} s"
        time.sleep(0.1)


@pytest.fixture(scope="session")
def wait_until_up():
    """``wait_until_up(process, url)``: block until a server process answers /health (or fail)."""
    return _wait_until_up


def write_iris_csv(folder) -> Path:
    """scikit-learn's iris as a CSV (sepal_length ... petal_width, species as names): the small
    real table the CLI, compression and distribution tests train on."""
    from sklearn.datasets import load_iris
    data = load_iris(as_frame=True)
    frame = data.frame.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
    frame["species"] = [data.target_names[t] for t in frame.pop("target")]
    path = Path(folder) / "iris.csv"
    frame.to_csv(path, index=False)
    return path
