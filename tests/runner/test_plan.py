"""``--plan``: the cost plan's arithmetic, and every study's command prints it without running anything."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

from sciprune.runner.config import load_preset, validate
from sciprune.runner.plan import duration, plan_text
from sciprune.runner.study import get_study
from sciprune.studies.planning import NOMINAL_FLOPS, Phase, Plan, Probe, calibrate, local_slots
from tests.runner.helpers import cli

STUDY_COMMANDS = {"classify": ["classify"], "amr": ["amr"], "moth": ["moth", "train"], "nif": ["nif"], "flows": ["flows"]}


def _phase(tasks: int, parallel: bool = True) -> Phase:
    # one task: 10 x 2 s (measured) + 3 x (1e10 FLOPs -> 1 s each, FLOP model) + 1 x (0.5 s run x scale 4) = 25 s
    probes = (Probe("a", 10, 1.0, seconds=2.0), Probe("b", 3, NOMINAL_FLOPS), Probe("c", 1, 1.0, scale=4.0, seconds=0.5))
    return Phase("k", tasks, probes, memory=1e6, parallel=parallel)


def test_the_arithmetic_tasks_times_seconds_over_workers_with_the_ceiling_of_shards():
    ph = _phase(5)
    assert ph.seconds == pytest.approx(25.0)
    assert [ph.wall(w) for w in (1, 2, 3, 4, 5, 6, 100)] == pytest.approx([125, 75, 50, 50, 25, 25, 25])
    serial = _phase(3, parallel=False)
    assert [serial.wall(w) for w in (1, 2, 8)] == pytest.approx([75, 75, 75])  # in the caller: workers do not help
    plan = Plan("x", (ph, serial))
    assert plan.tasks == 8 and plan.cpu_seconds == pytest.approx(200.0)
    assert plan.wall(2) == pytest.approx(75 + 75) and plan.wall(1) == pytest.approx(plan.cpu_seconds)
    assert plan.memory == 1e6


def test_a_probe_with_an_early_stop_makes_the_plan_a_range():
    # one task: 10 x 2 s, of which as few as 4 run (an early stop), + 5 x 1 s always = 25 s, at least 13 s
    ph = Phase("k", 3, (Probe("a", 10, 1.0, seconds=2.0, fewest=4), Probe("b", 5, 1.0, seconds=1.0)), memory=0.0)
    plan = Plan("x", (ph, _phase(2, parallel=False)))
    assert plan.has_range and not Plan("y", (_phase(2),)).has_range
    assert ph.least_seconds == pytest.approx(13.0) and ph.seconds == pytest.approx(25.0)
    assert plan.least_cpu_seconds == pytest.approx(3 * 13 + 2 * 25) and plan.cpu_seconds == pytest.approx(3 * 25 + 2 * 25)
    assert plan.wall(2, least=True) == pytest.approx(2 * 13 + 50) and plan.wall(2) == pytest.approx(2 * 25 + 50)
    text = plan_text(plan, local=2, remote=16)
    assert "(fewest 4)" in text and "CPU time: 89 s to 2.08 min" in text and "1 worker:                      89 s to 2.08 min" in text
    assert "13 s to 25 s CPU" in text and "phase 2: k: 2 tasks, run in the calling process, one after another; 25 s CPU" in text


def test_local_workers_count_at_most_one_per_core():
    cores = os.cpu_count() or 1
    assert local_slots(1) == 1 and local_slots(cores + 5) == cores


def test_calibration_measures_each_probe_it_can_run_and_keeps_the_flop_model_for_the_others():
    calls = {"n": 0}

    def run() -> None:
        calls["n"] += 1

    probes = (Probe("timed", 7, 1.0, run), Probe("model", 1, 3 * NOMINAL_FLOPS))
    plan = calibrate(Plan("x", (Phase("k", 2, probes, 0.0),)))
    timed, model = plan.phases[0].probes
    assert plan.calibrated and calls["n"] >= 2  # a warm-up and at least one timed run
    assert timed.seconds is not None and timed.seconds >= 0  # measured (no timing asserted)
    assert model.seconds is None and model.each == pytest.approx(3.0)


def test_the_printout_names_tasks_cpu_time_memory_and_the_three_wall_times():
    text = plan_text(Plan("x", (_phase(5),)), local=2, remote=16)
    for field in ("tasks: 5", "CPU time: 2.08 min", "peak memory per task", "1 worker:", "local workers (--workers 2)",
                  "16 remote workers (--plan-workers 16"):
        assert field in text, field
    assert duration(30) == "30 s" and duration(7200) == "2 h" and duration(3 * 86400) == "3 d"


@pytest.mark.parametrize("study", sorted(STUDY_COMMANDS))
def test_every_study_plans_its_paper_preset_from_the_flop_model(study):
    if study == "amr":
        pytest.importorskip("mfem")
    cfg = validate(load_preset(study, "demo" if study == "amr" else "paper"))
    plan = get_study(study).plan(cfg, False)  # type: ignore[misc]
    assert plan.tasks >= 1 and plan.phases
    assert math.isfinite(plan.cpu_seconds) and plan.cpu_seconds > 0 and plan.memory > 0
    assert plan.wall(1) == pytest.approx(plan.cpu_seconds)
    assert plan.wall(1000) <= plan.wall(2) <= plan.wall(1)


@pytest.mark.parametrize("study", sorted(STUDY_COMMANDS))
def test_plan_prints_the_fields_creates_nothing_and_exits_0(study, capsys, monkeypatch, tmp_path):
    if study == "amr":
        pytest.importorskip("mfem")
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "never"
    code, stdout, err = cli(capsys, monkeypatch, *STUDY_COMMANDS[study], "--preset", "demo", "--plan", "--workers", "2",
                            "--plan-workers", "8", "--out", str(out))
    assert code == 0, err
    for field in ("calibrated on this machine", "tasks:", "CPU time:", "peak memory per task", "1 worker:",
                  "2 local workers (--workers 2)", "8 remote workers"):
        assert field in stdout, field
    assert list(tmp_path.iterdir()) == []  # no --out, no runs/


def test_plan_workers_without_plan_is_refused(capsys, monkeypatch, tmp_path):
    out = tmp_path / "x"
    code, _, err = cli(capsys, monkeypatch, "classify", "--preset", "demo", "--plan-workers", "8", "--out", str(out))
    assert code == 2 and "--plan-workers" in err and not out.exists()


def test_run_plans_a_yaml_config_names_the_file_and_creates_nothing(capsys, monkeypatch, tmp_path):
    import yaml

    cfg = tmp_path / "slice.yaml"
    cfg.write_text(yaml.safe_dump(load_preset("classify", "demo")))
    monkeypatch.chdir(tmp_path)
    code, stdout, err = cli(capsys, monkeypatch, "run", str(cfg), "--plan", "--workers", "2", "--plan-workers", "4")
    assert code == 0, err
    assert stdout.startswith(f"plan: sciprune run {cfg} (classify), calibrated on this machine")
    assert "2 local workers (--workers 2)" in stdout and "4 remote workers" in stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["slice.yaml"]  # no runs/
    code, _, err = cli(capsys, monkeypatch, "run", str(cfg), "--plan-workers", "4")
    assert code == 2 and "--plan-workers" in err and not (tmp_path / "runs").exists()


SLICES = sorted((Path(__file__).resolve().parents[2] / "src" / "sciprune" / "studies").glob("*/presets/paper_slice.yaml"))


@pytest.mark.parametrize("path", SLICES, ids=[p.parent.parent.name for p in SLICES])
def test_every_paper_slice_is_a_valid_config_its_study_plans(path):
    """The paper-scale slices (issue 17) are configs `sciprune run` accepts, and their plans price them."""
    from sciprune.runner.config import load_yaml

    cfg = validate(load_yaml(path))
    assert cfg.study == path.parent.parent.name
    plan = get_study(cfg.study).plan(cfg, False)  # type: ignore[misc]
    assert plan.tasks >= 2 and any(ph.parallel and ph.tasks >= 2 for ph in plan.phases)  # shards for 2+ workers


def test_the_slices_exist():
    assert {p.parent.parent.name for p in SLICES} == {"flows", "moth"}


def test_a_probe_takes_its_fastest_round_and_a_slow_probe_runs_once(monkeypatch):
    """`_time` on a fake CPU clock: contention only adds time, so the fastest round's mean is kept."""
    from sciprune.studies import planning

    clock = {"t": 0.0}
    monkeypatch.setattr(planning.time, "process_time", lambda: clock["t"])
    costs = iter([1.0, 0.2, 0.05, 0.05, 0.1, 0.1])  # warm-up; round 1: one run of 0.2; round 2: two of 0.05

    def run() -> None:
        clock["t"] += next(costs)

    assert planning._time(run) == pytest.approx(0.05)  # rounds of 0.1 s budget; 0.3 s spent after round 2: stop
    calls = {"n": 0}

    def slow() -> None:
        calls["n"] += 1
        clock["t"] += 2.0

    assert planning._time(slow) == pytest.approx(2.0) and calls["n"] == 2  # warm-up + one timed run


def _flows_plan(solver: dict) -> str:
    cfg = validate({"study": "flows", "nets": 1, "classifiers": {"names": []},
                    "densities": {"names": ["gaussians"], "n_train": 64, "n_test": 64, "trace": "exact",
                                  "field": {"layers": 2, "hidden": 8, "activation": "tanh"}, "solver": solver,
                                  "train": {"epochs": 1, "batch_size": 64}, "nll_reps": 1},
                    "prune": {"methods": ["wt"], "sparsities": [0.5], "retrain_epochs": 1}})
    return plan_text(get_study("flows").plan(cfg, True), local=2, remote=4)  # type: ignore[misc]


def test_flows_plan_tells_an_adaptive_solver_that_its_probe_saw_the_untrained_field():
    from sciprune.studies.flows import plan as flows_plan

    text = _flows_plan({"method": "dopri5", "atol": 1e-3, "rtol": 1e-3, "adjoint": False})
    line = next(line for line in text.splitlines() if "adaptive solver" in line)
    probed = int(line.split("needed ")[1].split(" ")[0])
    assert probed >= 2 * 6  # dopri5: at least one step of 6 evaluations forward, and a backward through it
    assert f"{flows_plan.MEASURED_OVER_PLAN:.1f}x its plan" in line and flows_plan.MEASURED_OVER_PLAN > 1
    assert "adaptive solver" not in _flows_plan({"method": "rk4", "steps": 2, "adjoint": False})
