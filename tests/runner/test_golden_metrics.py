"""Every study's ``metrics.csv`` on its shrunk demo preset equals the stored golden file.

The golden files (``golden/<study>.csv``) were written by the code *before* the cascade-protocol and
methods-registry redesign (issue 18, base commit 115fe7e), with
``SCIPRUNE_WRITE_GOLDEN=1 pytest tests/runner/test_golden_metrics.py``; the redesign must not change a
number. ``golden/meta.json`` records torch's version and CPU capability
(``torch.backends.cpu.get_cpu_capability()``) of that run:

* when both match, the comparison is **byte for byte**: the same kernels on the same inputs give the
  same bits, so any difference is a change of arithmetic (an operation reordered, a seed drawn
  differently), which is what this test exists to catch;
* otherwise every numeric cell must agree within **rtol 1e-6** (and every other cell exactly): another
  SIMD width or torch release sums float32 in another order, and training carries that on. Measured
  with ``ATEN_CPU_CAPABILITY=default`` against the AVX2 golden files (torch 2.13): classify equal,
  moth and nif off by up to ~1.3e-8 relative (``retrain_loss``, ``test_mse``, ``rel_l2``), so 1e-9
  would fail on another CPU for no change of the code; 1e-6 (about 100x that) still refuses a real
  change (a seed drawn differently or another pruning decision moves these metrics by 1e-3 or more).

The presets are shrunk as ``tests/runner/test_demo.py`` shrinks them (seconds per study). Runs use one
intra-op thread, as the golden ones did: nif's dense training sums in an order that depends on the
thread count, so its metrics differ between 1 and 2 threads.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
import torch

from sciprune.files import read_csv
from tests.runner.helpers import cli
from tests.runner.test_demo import SMALL

GOLDEN = Path(__file__).parent / "golden"
STUDIES = ["classify", "flows", "moth", "nif", "amr"]
WRITE = os.environ.get("SCIPRUNE_WRITE_GOLDEN") == "1"
RTOL = 1e-6  # another CPU capability or torch release (see the module docstring)


def _platform() -> dict[str, str]:
    return {"torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability()}


def _close(a: str, b: str) -> bool:
    try:
        x, y = float(a), float(b)
    except ValueError:
        return a == b
    if math.isnan(x) or math.isnan(y):
        return math.isnan(x) and math.isnan(y)
    return math.isclose(x, y, rel_tol=RTOL, abs_tol=0.0)


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("study", STUDIES)
def test_demo_metrics_equal_the_golden_file(capsys, monkeypatch, tmp_path, one_thread, study):
    if study == "amr":
        pytest.importorskip("mfem.ser")
    sets = [arg for kv in SMALL[study] for arg in ("--set", kv)]
    out = tmp_path / study
    command = ["moth", "train"] if study == "moth" else [study]
    code, _, err = cli(capsys, monkeypatch, *command, "--preset", "demo", "--out", str(out), "--quiet", *sets)
    assert code == 0, err
    got = (out / "metrics.csv").read_bytes()
    golden = GOLDEN / f"{study}.csv"
    if WRITE:
        golden.write_bytes(got)
        (GOLDEN / "meta.json").write_text(json.dumps(_platform(), indent=1) + "\n")
        return
    meta = json.loads((GOLDEN / "meta.json").read_text())
    if meta == _platform():
        assert got == golden.read_bytes(), f"{study}: metrics.csv differs from {golden} (same torch and CPU capability)"
        return
    rows, expected = read_csv(out / "metrics.csv"), read_csv(golden)
    assert len(rows) == len(expected)
    for i, (r, e) in enumerate(zip(rows, expected)):
        assert list(r) == list(e), f"{study} row {i}: columns differ"
        bad = {k: (r[k], e[k]) for k in r if not _close(str(r[k]), str(e[k]))}
        assert not bad, f"{study} row {i}: {bad} (rtol {RTOL}; recorded on {meta}, running on {_platform()})"
