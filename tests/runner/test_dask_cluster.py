"""Scale-out as docs/scaleout.md describes it: a real ``dask scheduler`` process and two ``dask worker``
processes on 127.0.0.1 (started with ``shards.worker_environment()``, the doc's ``export`` line), and
every study that shards run through ``--scheduler tcp://127.0.0.1:PORT``: its metrics.csv is
byte-identical to the in-process run.

A study joins by adding a tiny config to ``TINY`` (and, if it needs a data file, a line in ``_config``);
a study that does not shard on this branch is listed in ``NOT_SHARDED`` with the reason.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import sciprune
from sciprune.runner.run import run_config
from sciprune.shards import MALLOC_ENV, WORKER_CONFIG, map_shards, worker_environment

pytestmark = pytest.mark.slow

TINY: dict[str, dict[str, Any]] = {
    "classify": {"study": "classify", "seed": 0, "repeats": 2, "model": {"hidden": [8]},
                 "train": {"epochs": 1, "batch_size": 128}, "timing_batch": 64,
                 "prune": {"sparsities": [0.0, 0.5], "retrain_epochs": 1, "id_samples": 64, "heatmap_sparsity": 0.5}},
    "moth": {"study": "moth", "seed": 3, "members": 4, "shards": 2, "threshold": 0.04, "schedule": [0.5],
             "model": {"hidden": [8], "activation": "tanh"},
             "train": {"lr": 3e-3, "batch_size": 64, "check_every": 10, "window": 20, "max_batches_dense": 30,
                       "max_batches_stage": 10, "val_rows": 100}},
    "flows": {"study": "flows", "seed": 0, "nets": 2, "densities": {"names": []},
              "classifiers": {"names": ["moons"], "n_train": 128, "n_test": 64,
                              "field": {"layers": 2, "hidden": 8, "activation": "tanh"},
                              "solver": {"method": "rk4", "steps": 2, "adjoint": False},
                              "train": {"epochs": 2, "batch_size": 64}},
              "prune": {"methods": ["wt"], "sparsities": [0.5], "retrain_epochs": 1},
              "analysis": {"ratios": [0.5], "grid": 8, "samples": 20, "mode_samples": 20, "hessian": False, "timing_repeats": 1}},
    "nif": {"study": "nif", "seed": 0, "data": {"kind": "wave", "test_fraction": 0.0},
            "model": {"shape": {"units": 8, "nlayers": 1}, "parameter": {"units": 8, "nlayers": 1}},
            "train": {"epochs": 3, "batch_size": 2000}, "prune": {"sparsities": [0.5], "retrain_epochs": 1, "id_samples": 100},
            "timing": False},
}
#: studies whose shards do not yet go through sciprune.shards.map_shards on this branch (issue #17)
NOT_SHARDED: dict[str, str] = {}
START_TIMEOUT = 30.0


def _dask() -> list[str]:
    exe = Path(sys.executable).with_name("dask")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("dask")
    if found is None:
        pytest.skip("the dask command-line tool is not installed")
    return [found]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``tcp://127.0.0.1:PORT`` of a scheduler process with two single-threaded worker processes; all
    three are killed at the end, whatever happened."""
    from distributed import Client

    folder = tmp_path_factory.mktemp("dask")
    info = folder / "scheduler.json"
    src = str(Path(sciprune.__file__).resolve().parents[1])  # the workers import this checkout's sciprune
    env = {**os.environ, **worker_environment(), "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1", "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    procs: list[subprocess.Popen[bytes]] = []
    logs = []
    try:
        def start(args: list[str], name: str) -> None:
            log = open(folder / f"{name}.log", "wb")
            logs.append(log)
            procs.append(subprocess.Popen([*_dask(), *args], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=folder))

        start(["scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard", "--scheduler-file", str(info)], "scheduler")
        deadline = time.monotonic() + START_TIMEOUT
        while not info.exists() or not info.read_text().strip():
            if time.monotonic() > deadline or procs[0].poll() is not None:
                pytest.fail(f"dask scheduler did not start: {(folder / 'scheduler.log').read_text()[-2000:]}")
            time.sleep(0.2)
        address = json.loads(info.read_text())["address"]
        for k in range(2):
            start(["worker", address, "--nthreads", "1", "--nworkers", "1", "--no-dashboard", "--memory-limit", "0",
                   "--host", "127.0.0.1", "--name", f"w{k}"], f"worker{k}")
        with Client(address, timeout="10s") as client:
            client.wait_for_workers(2, timeout=START_TIMEOUT)
        yield address
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in reversed(procs):
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)
        for log in logs:
            log.close()


@pytest.fixture(scope="module")
def moth_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sciprune.studies.moth.simulate import simulate_file

    path = tmp_path_factory.mktemp("mothdata") / "d.h5"
    simulate_file(path, 600, seed=1, chunk=600)
    return path


def _config(study: str, moth_data: Path) -> dict[str, Any]:
    cfg = json.loads(json.dumps(TINY[study]))
    if study == "moth":
        cfg["data"] = {"path": str(moth_data)}  # the workers read the file: a shared filesystem, here the same disk
    return cfg


@pytest.mark.parametrize("study", sorted(TINY))
def test_a_real_scheduler_with_two_worker_processes_gives_the_in_process_metrics(study, cluster, moth_data, tmp_path):
    if study in NOT_SHARDED:
        pytest.skip(NOT_SHARDED[study])
    cfg = _config(study, moth_data)
    here = run_config(cfg, out=tmp_path / "in-process", quiet=True)
    there = run_config(cfg, out=tmp_path / "cluster", quiet=True, scheduler=cluster)
    assert (there / "metrics.csv").read_bytes() == (here / "metrics.csv").read_bytes()


def test_the_documented_environment_gives_a_users_workers_the_local_workers_settings(cluster):
    """docs/scaleout.md's ``export`` line (``worker_environment()``) reaches the workers as the glibc
    variables and dask settings that map_shards gives its local workers."""
    import dask

    assert map_shards(os.getenv, list(MALLOC_ENV), scheduler=cluster) == list(MALLOC_ENV.values())
    assert map_shards(dask.config.get, list(WORKER_CONFIG), scheduler=cluster) == list(WORKER_CONFIG.values())
