"""The torchrun command behind `kiln train --nproc`, and every bad input named with its fix."""

import socket

import pytest

import kiln
from kiln.distribution import DataParallel, set_distribution
from kiln.distribution.launch import check_port_free, torchrun_command, worker_rank
from kiln.errors import KilnTypeError, KilnValueError


def test_one_machine_is_standalone_and_forwards_the_train_arguments():
    command = torchrun_command(["cfg.yaml", "--set", "training.epochs=2"], nproc=2, python="py")
    assert command == ["py", "-m", "torch.distributed.run", "--standalone", "--nnodes", "1", "--nproc-per-node", "2",
                       "--max-restarts", "0", "-m", "kiln", "train", "cfg.yaml", "--set", "training.epochs=2"]


def test_several_machines_meet_at_the_rendezvous_endpoint():
    command = torchrun_command(["cfg.yaml"], nproc=8, nnodes=2, node_rank=1, rdzv_endpoint="node0:29400",
                               max_restarts=3, python="py")
    assert command[3:13] == ["--nnodes", "2", "--node-rank", "1", "--rdzv-backend", "c10d", "--rdzv-endpoint",
                             "node0:29400", "--nproc-per-node", "8"]
    assert command[13:15] == ["--max-restarts", "3"]


@pytest.mark.parametrize("kwargs,message", [
    ({"nproc": 0}, "Received an invalid value for --nproc, expected a positive integer (the number of processes "
                   "per machine, e.g. --nproc 2). Received: --nproc 0"),
    ({"nproc": 2, "nnodes": 2}, "--nnodes 2 needs --rdzv-endpoint HOST:PORT"),
    ({"nproc": 2, "nnodes": 2, "node_rank": 2, "rdzv_endpoint": "h:1"}, "expected 0..1"),
    ({"nproc": 2, "nnodes": 2, "rdzv_endpoint": "node0"}, "expected HOST:PORT (e.g. node0:29400). Received: "
                                                            "--rdzv-endpoint node0"),
    ({"nproc": 2, "max_restarts": -1}, "Received: --max-restarts -1"),
])
def test_bad_launch_flags_name_the_value_and_the_fix(kwargs, message):
    with pytest.raises(KilnValueError) as err:
        torchrun_command(["cfg.yaml"], **kwargs)
    assert message in str(err.value)


def test_a_port_in_use_is_refused_before_anything_starts():
    with socket.socket() as busy:
        busy.bind(("", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(KilnValueError, match=f"port {port} is already in use on this machine"):
            check_port_free(f"localhost:{port}")


def test_worker_rank_reads_torchruns_environment():
    assert worker_rank({"RANK": "1", "WORLD_SIZE": "2", "TORCHELASTIC_RUN_ID": "x"}) == (1, 2)
    assert worker_rank({"RANK": "1", "WORLD_SIZE": "2"}) is None  # not started by torchrun


def test_cli_usage_errors_exit_2_before_launching(tmp_path, capsys):
    from kiln.cli import main
    from tests.workflows.test_cli import IRIS, write_config
    cfg = write_config(tmp_path, IRIS.format(out=tmp_path / "runs", csv=tmp_path / "none.csv", epochs=1))
    assert main(["train", str(cfg), "--nproc", "0"]) == 2
    assert "Received: --nproc 0" in capsys.readouterr().err
    assert main(["train", str(cfg), "--nproc", "2", "--nnodes", "2"]) == 2
    assert "--rdzv-endpoint HOST:PORT" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_data_parallel_bad_inputs(monkeypatch):
    with pytest.raises(KilnValueError, match=r"expected one of \['gloo', 'nccl'\] or None \(automatic\). "
                                             r"Received: backend='glo'"):
        DataParallel(backend="glo")
    with pytest.raises(KilnTypeError, match="set_distribution expects a kiln.distribution.DataParallel or None; "
                                            "received str"):
        set_distribution("data_parallel")
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with pytest.raises(KilnValueError, match="DataParallel runs under torchrun"):
        set_distribution(DataParallel())
    assert kiln.distribution.distribution() is None


def test_more_processes_than_rows_is_refused():
    import torch
    trainer = kiln.Trainer(torch.nn.Linear(2, 1))
    trainer.compile(loss="mse")
    data = kiln.training.data_adapter.adapt(torch.zeros(3, 2), torch.zeros(3, 1))
    parallel = DataParallel()
    parallel.world_size = 4  # as if torchrun had started 4 processes
    with pytest.raises(KilnValueError, match="The training data has 3 rows for 4 processes; each process needs at "
                                             "least one. Use at most 3 processes"):
        parallel.check_fit(trainer, data)
