"""``sciprune nif --device``: the split, every network and every cascade job follow the run's device.

Without CUDA, the ``meta`` device (shapes only, no numbers) stands in for a GPU: whatever nif builds
must land there, so a tensor or network left on the CPU fails the test. With CUDA, the demo preset on
``cuda`` matches the CPU run (same draws from CPU generators; float32 arithmetic on a GPU differs in
the last bits and training drifts a little, hence the tolerance on the errors).
"""

from __future__ import annotations

import pickle
from dataclasses import fields, replace
from typing import Any

import pytest
import torch

from sciprune.files import read_csv
from sciprune.runner.config import load_preset, validate
from sciprune.runner.run import run_config
from sciprune.studies.base import RunContext
from sciprune.studies.nif import protocol
from sciprune.studies.nif.config import NifConfig
from tests.runner.helpers import cli

META = torch.device("meta")


class Stop(Exception):
    """Raised by a spy once it has seen what it checks."""


@pytest.fixture
def cfg() -> NifConfig:
    c = validate({**load_preset("nif", "demo"), "timing": False})
    assert isinstance(c, NifConfig)
    return c


def _on(module: torch.nn.Module, device: torch.device) -> bool:
    tensors = [*module.parameters(), *module.buffers()]
    return bool(tensors) and all(t.device == device for t in tensors)


def _tensors(sp: Any) -> list[torch.Tensor]:
    return [v for f in fields(sp) if isinstance(v := getattr(sp, f.name), torch.Tensor)]


def test_prepare_puts_every_split_tensor_and_network_on_the_device(cfg):
    with_val = validate({**load_preset("nif", "demo"), "train": {**load_preset("nif", "demo")["train"], "patience": 3}})
    assert isinstance(with_val, NifConfig)
    su = protocol.prepare(with_val, META)
    assert len(_tensors(su.sp)) == 8 and all(t.device == META for t in _tensors(su.sp))  # validation rows too
    assert _on(su.build(su.arch), META)
    cpu = protocol.prepare(with_val)
    assert cpu.device == torch.device("cpu") and all(t.device.type == "cpu" for t in _tensors(cpu.sp))
    assert [t.shape for t in _tensors(su.sp)] == [t.shape for t in _tensors(cpu.sp)]
    weighted = replace(cpu.sp, train_w=torch.ones(cpu.sp.train_in.shape[0])).to(META)  # a user file's weights
    assert len(_tensors(weighted)) == 9 and all(t.device == META for t in _tensors(weighted))


def test_the_dense_nif_is_trained_on_the_device(monkeypatch, tmp_path, cfg):
    seen: dict[str, Any] = {}

    def train_dense(model: torch.nn.Module, trainer: Any, **kw: Any) -> Any:
        seen["model"] = model
        raise Stop

    monkeypatch.setattr(protocol, "train_dense", train_dense)
    with pytest.raises(Stop):
        protocol.run(cfg, RunContext(out=tmp_path, device=META))
    assert _on(seen["model"], META)


def test_every_cascade_job_carries_the_device_by_name(tmp_path, cfg):
    su = protocol.prepare(cfg)
    jobs = protocol.cascade_jobs(cfg, RunContext(out=tmp_path, device=torch.device("cuda", 1)), su)  # needs no GPU
    assert len(jobs) == 5 and {j.device for j in jobs} == {"cuda:1"}  # the control, l2 and id × oneshot, retrained
    assert pickle.loads(pickle.dumps(jobs)) == jobs


def test_a_job_rebuilds_its_data_and_networks_on_its_device(monkeypatch, tmp_path, cfg):
    su = protocol.prepare(cfg)
    net = su.build(su.arch)
    saved = {"arch": net.arch, "state": net.state_dict(), "rewind": net.state_dict(), "lrs": [1e-3], "optimizer": {},
             "losses": [1.0]}
    seen: dict[str, Any] = {}

    def run_cascade(dense: Any, spec: Any, steps: Any, **kw: Any) -> Any:
        seen["steps"], seen["arch"] = steps, dense.arch
        raise Stop

    monkeypatch.setattr(protocol, "load_state", lambda path: saved)
    monkeypatch.setattr(protocol, "run_cascade", run_cascade)
    job = protocol.CascadeJob(cfg, tmp_path, False, "id", "retrained", "iterative", 2, device="meta")
    with pytest.raises(Stop):
        protocol.run_job(job)
    steps = seen["steps"]
    assert steps.su.device == META and steps.su.sp.train_in.device == META and steps.p_train.device == META
    assert _on(steps.build(seen["arch"]), META)  # the cascade's every rebuild (stages, one-shot restarts)


@pytest.mark.skipif(torch.cuda.is_available(), reason="the message of a machine without CUDA")
def test_cuda_without_a_gpu_is_one_line(capsys, monkeypatch, tmp_path):
    # the runner's availability check, as for every study: no silent CPU run
    code, _, err = cli(capsys, monkeypatch, "nif", "--out", str(tmp_path / "gpu"), "--quiet", "--preset", "demo",
                       "--device", "cuda")
    assert code == 2 and "no CUDA device is available" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "gpu" / "metrics.csv").exists()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_the_demo_on_cuda_matches_the_cpu_run(tmp_path):
    config = {**load_preset("nif", "demo"), "timing": True, "timing_points": 4096}
    cpu = run_config(config, out=tmp_path / "cpu", quiet=True)
    gpu = run_config(config, out=tmp_path / "gpu", quiet=True, device="cuda")
    a, b = read_csv(cpu / "metrics.csv"), read_csv(gpu / "metrics.csv")
    assert [(r["method"], r["variant"], r["stage"]) for r in a] == [(r["method"], r["variant"], r["stage"]) for r in b]
    for ra, rb in zip(a, b):
        # sizes are structural: equal; the pruned node sets may differ only if scores tie within round-off
        for key in ("params_total", "shape_nodes", "sparsity", "pod_rank"):
            assert ra[key] == rb[key], key
        for key in ("rel_l2", "train_rel_l2"):
            if ra.get(key) not in (None, ""):
                assert float(rb[key]) == pytest.approx(float(ra[key]), rel=0.1, abs=1e-3), (ra["method"], key)
    assert {r["device"] for r in read_csv(gpu / "timing.csv")} == {"cuda"}
