"""``--device``: the studies put their data, networks, simulators and ID pruning where the run says.

Without CUDA the tests check that the device reaches every shard and simulator (nothing silently stays
on the CPU); with CUDA, each study's tiny run on ``cuda`` matches the CPU run within a tolerance
(float32 arithmetic differs in the last bits on a GPU, so stages can drift a little).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from sciprune.files import read_csv
from sciprune.runner.config import validate
from sciprune.runner.run import run_config
from sciprune.studies.base import RunContext

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

MOTH = {"study": "moth", "seed": 3, "members": 4, "shards": 2, "threshold": 0.04, "schedule": [0.5, 0.9],
        "model": {"hidden": [12, 8], "activation": "tanh"},
        "train": {"lr": 3e-3, "batch_size": 64, "check_every": 10, "window": 20, "max_batches_dense": 60,
                  "max_batches_stage": 20, "val_rows": 200}}
CLASSIFY = {"study": "classify", "seed": 0, "repeats": 1, "model": {"hidden": [16, 8]}, "train": {"epochs": 2, "batch_size": 64},
            "timing_batch": 64, "prune": {"sparsities": [0.0, 0.5, 0.9], "retrain_epochs": 1, "id_samples": 64,
                                          "heatmap_sparsity": 0.5}}
AMR = {"study": "amr", "inr": "corner", "mode": "bulk", "max_it": 3, "max_dofs": 400, "rmse_points": 1024,
       "baseline_max_dofs": 2000}


@pytest.fixture(scope="module")
def moth_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sciprune.studies.moth.simulate import simulate_file

    path = tmp_path_factory.mktemp("mothdata") / "d.h5"
    simulate_file(path, 1200, seed=1, chunk=1200)
    return path


def test_moth_hands_the_device_to_every_shard_and_to_the_simulator(monkeypatch, tmp_path, moth_data):
    from sciprune.studies.moth import protocol

    seen: dict[str, Any] = {}

    def shards(fn: Any, jobs: list[Any], **kw: Any) -> list[Any]:
        seen["jobs"] = jobs
        return []

    def simulate(path: Any, samples: int, **kw: Any) -> None:
        seen["simulate"] = kw["device"]
        raise KeyboardInterrupt  # stop before the (unwritten) file is read

    monkeypatch.setattr(protocol, "map_shards", shards)
    monkeypatch.setattr(protocol, "simulate_file", simulate)
    ctx = RunContext(out=tmp_path, device=torch.device("cuda"))  # a device object needs no GPU
    protocol.run(validate({**MOTH, "data": {"path": str(moth_data)}}), ctx)
    assert [j.device for j in seen["jobs"]] == ["cuda", "cuda"]
    with pytest.raises(KeyboardInterrupt):
        protocol.run(validate({**MOTH, "data": {"samples": 100}}), ctx)
    assert seen["simulate"] == "cuda"


def test_an_inr_moved_to_a_device_gives_the_same_values_and_verdicts():
    pytest.importorskip("mfem")
    import numpy as np

    from sciprune.studies.amr.examine import ElementPass, examine
    from sciprune.studies.amr.inr import resolve_inr

    inr = resolve_inr("corner")
    moved = inr.to(torch.device("cpu"))
    assert moved.mlp is not inr.mlp and moved.device == torch.device("cpu")
    x = np.random.default_rng(0).random((50, 2))
    assert torch.equal(inr(x), moved(x))
    corners = np.array([[[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]]) * 0.5
    kw = dict(seed=0, it=0, id_samples=16, error_samples=16, epsilon=1e-3)
    a = examine(ElementPass("interpolation", inr, lambda p: p, **kw), corners, np.arange(1))
    b = examine(ElementPass("interpolation", moved, lambda p: p, **kw), corners, np.arange(1))
    assert np.array_equal(a.error, b.error)


def _close(cpu: Path, gpu: Path, keys: tuple[str, ...], rel: float) -> None:
    a, b = read_csv(cpu / "metrics.csv"), read_csv(gpu / "metrics.csv")
    assert len(a) == len(b)
    for ra, rb in zip(a, b):
        for k in keys:
            if ra.get(k) not in (None, "") and rb.get(k) not in (None, ""):
                assert float(rb[k]) == pytest.approx(float(ra[k]), rel=rel, abs=1e-6), k


@cuda
def test_classify_on_cuda_matches_the_cpu_run(tmp_path):
    cpu = run_config(CLASSIFY, out=tmp_path / "cpu", quiet=True)
    gpu = run_config(CLASSIFY, out=tmp_path / "gpu", quiet=True, device="cuda")
    _close(cpu, gpu, ("params_nnz", "sparsity"), 1e-9)
    _close(cpu, gpu, ("accuracy",), 0.1)


@cuda
def test_moth_on_cuda_matches_the_cpu_run(tmp_path, moth_data):
    cfg = {**MOTH, "data": {"path": str(moth_data)}}
    cpu = run_config(cfg, out=tmp_path / "cpu", quiet=True)
    gpu = run_config(cfg, out=tmp_path / "gpu", quiet=True, device="cuda")
    _close(cpu, gpu, ("sparsity",), 1e-9)
    _close(cpu, gpu, ("test_mse",), 0.2)


@cuda
def test_amr_on_cuda_matches_the_cpu_run(tmp_path):
    pytest.importorskip("mfem")
    cpu = run_config(AMR, out=tmp_path / "cpu", quiet=True)
    gpu = run_config(AMR, out=tmp_path / "gpu", quiet=True, device="cuda")
    _close(cpu, gpu, ("dofs", "elements"), 0.05)
    _close(cpu, gpu, ("rmse",), 0.1)
