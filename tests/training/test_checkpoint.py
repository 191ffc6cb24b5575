"""Resuming from a checkpoint gives exactly the weights of a run that never stopped."""

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import kiln
from kiln.errors import SerializationError
from kiln.layers import Dense, Dropout
from kiln.training.checkpoint import load_checkpoint, save_checkpoint


class Interrupt(Exception):
    pass


class KillAt(kiln.callbacks.Callback):
    """Raises in the middle of an epoch, like a crash after the step's backup was written."""

    def __init__(self, epoch, step):
        super().__init__()
        self.at = (epoch, step)
        self.epoch = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            raise Interrupt()


def data():
    g = np.random.default_rng(0)
    x = g.random((100, 6)).astype("float32")
    return x, (x @ g.random((6, 1))).astype("float32")


def make_model():
    kiln.utils.set_random_seed(42)
    model = kiln.Sequential([Dense(16, activation="relu", input_shape=(6,)), Dropout(0.3), Dense(1)])
    model.compile(optimizer=kiln.optimizers.Adam(0.01), loss="mse", metrics=["mae"], num_threads=1)
    return model


@pytest.mark.parametrize("kill_at", [(1, 4), (2, 0), (0, 8)])
def test_resume_mid_epoch_equals_uninterrupted(tmp_path, kill_at):
    x, y = data()
    straight = make_model()
    h_straight = straight.fit(x, y, epochs=4, batch_size=10, verbose=0)

    model = make_model()
    backup = kiln.callbacks.BackupAndRestore(tmp_path / "backup", save_freq=1)
    with pytest.raises(Interrupt):
        model.fit(x, y, epochs=4, batch_size=10, verbose=0, callbacks=[backup, KillAt(*kill_at)])
    assert (tmp_path / "backup" / "latest.ckpt").exists()

    # a new process would start from scratch: a fresh model, other RNG draws in between
    torch.rand(7)
    resumed = make_model()
    restore = kiln.callbacks.BackupAndRestore(tmp_path / "backup", save_freq=1)
    h_resumed = resumed.fit(x, y, epochs=4, batch_size=10, verbose=0, callbacks=[restore])
    assert restore.restored_from is not None
    for a, b in zip(resumed.get_weights(), straight.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert h_resumed.epoch == [0, 1, 2, 3]
    np.testing.assert_allclose(h_resumed.history["loss"], h_straight.history["loss"], rtol=1e-6)
    np.testing.assert_allclose(h_resumed.history["mae"], h_straight.history["mae"], rtol=1e-6)
    assert not (tmp_path / "backup" / "latest.ckpt").exists()  # deleted after a completed fit


def test_resume_says_where_and_removes_partial_writes(tmp_path, capsys):
    x, y = data()
    model = make_model()
    with pytest.raises(Interrupt):
        model.fit(x, y, epochs=4, batch_size=10, verbose=0,
                  callbacks=[kiln.callbacks.BackupAndRestore(tmp_path / "backup", save_freq=1), KillAt(1, 4)])
    # what a write killed before its rename leaves behind (atomic_write_bytes' temporary name)
    partial = tmp_path / "backup" / ".latest.ckpt.a1b2c3.tmp"
    partial.write_bytes(b"half a checkpoint")
    restore = kiln.callbacks.BackupAndRestore(tmp_path / "backup", save_freq=1, verbose=1)
    make_model().fit(x, y, epochs=4, batch_size=10, verbose=0, callbacks=[restore])
    assert not partial.exists()
    # KillAt(1, 4) stops in the second epoch after batch index 4: 5 steps done and backed up
    assert f"resumed at epoch 2, step 5 (from {tmp_path / 'backup' / 'latest.ckpt'})" in capsys.readouterr().out


def test_epoch_backups_resume_at_the_epoch(tmp_path):
    x, y = data()
    straight = make_model()
    straight.fit(x, y, epochs=3, batch_size=10, verbose=0)
    model = make_model()
    with pytest.raises(Interrupt):
        model.fit(x, y, epochs=3, batch_size=10, verbose=0,
                  callbacks=[kiln.callbacks.BackupAndRestore(tmp_path), KillAt(2, 3)])
    resumed = make_model()
    resumed.fit(x, y, epochs=3, batch_size=10, verbose=0, callbacks=[kiln.callbacks.BackupAndRestore(tmp_path)])
    for a, b in zip(resumed.get_weights(), straight.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_sigkill_in_a_subprocess_then_resume(tmp_path):
    """The real thing: SIGKILL a training process mid-epoch, resume in a new process."""
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(f"""
        import os, signal, sys
        import numpy as np
        import kiln
        from kiln.layers import Dense, Dropout
        g = np.random.default_rng(0)
        x = g.random((200, 6)).astype("float32"); y = (x @ g.random((6, 1))).astype("float32")
        kiln.utils.set_random_seed(42)
        model = kiln.Sequential([Dense(16, activation="relu", input_shape=(6,)), Dropout(0.3), Dense(1)])
        model.compile(optimizer=kiln.optimizers.Adam(0.01), loss="mse", num_threads=1)
        class Die(kiln.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None): self.epoch = epoch
            def on_train_batch_end(self, batch, logs=None):
                if sys.argv[1] == "kill" and self.epoch == 1 and batch == 7:
                    os.kill(os.getpid(), signal.SIGKILL)
        cbs = [Die()] if sys.argv[1] == "straight" else [kiln.callbacks.BackupAndRestore(r"{tmp_path / 'bk'}", save_freq=1), Die()]
        model.fit(x, y, epochs=3, batch_size=10, verbose=0, callbacks=cbs)
        np.save(sys.argv[2], np.concatenate([w.ravel() for w in model.get_weights()]))
    """))
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    run = lambda *args: subprocess.run([sys.executable, str(script), *args], env=env, capture_output=True, text=True)
    killed = run("kill", str(tmp_path / "never.npy"))
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert run("resume", str(tmp_path / "resumed.npy")).returncode == 0
    assert run("straight", str(tmp_path / "straight.npy")).returncode == 0
    np.testing.assert_array_equal(np.load(tmp_path / "resumed.npy"), np.load(tmp_path / "straight.npy"))


def test_a_file_that_is_not_a_checkpoint_is_refused(tmp_path):
    (tmp_path / "x.ckpt").write_bytes(b"\x80\x04 not a checkpoint")
    with pytest.raises(SerializationError, match="not a kiln checkpoint"):
        load_checkpoint(tmp_path / "x.ckpt")
    save_checkpoint(tmp_path / "ok.ckpt", {"anything": torch.ones(2)})
    assert torch.equal(load_checkpoint(tmp_path / "ok.ckpt")["anything"], torch.ones(2))
