"""Plot regressions: distinct log-axis tick labels; final-mesh titles that do not overlap."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from sciprune.studies.amr.config import AMRConfig
from sciprune.studies.amr.plots import DistinctFormatter, error_vs_dofs_figure


def test_distinct_formatter_adds_digits_only_when_needed() -> None:
    f = DistinctFormatter(2)
    assert f.format_ticks([0.0175, 0.0178, 0.0182, 0.0185]) == ["0.0175", "0.0178", "0.0182", "0.0185"]
    assert f.format_ticks([0.02, 0.03]) == ["0.02", "0.03"]


def test_error_axis_over_less_than_a_decade_has_no_duplicate_tick_labels() -> None:
    rows = [{"role": "run", "dofs": d, "true_dofs": d, "rmse": r, "max_error": 3 * r}
            for d, r in ((300, 0.0186), (420, 0.0181), (650, 0.0176), (900, 0.0171))]
    fig = error_vs_dofs_figure(AMRConfig(), rows)
    FigureCanvasAgg(fig).draw()
    for ax in fig.axes:
        labels = [t.get_text() for t in ax.yaxis.get_majorticklabels() + ax.yaxis.get_minorticklabels()
                  if t.get_visible() and t.get_text() and ax.get_ylim()[0] <= t.get_position()[1] <= ax.get_ylim()[1]]
        assert labels and len(labels) == len(set(labels)), labels


def test_an_error_axis_over_decades_labels_only_the_decades() -> None:
    rows = [{"role": "run", "dofs": d, "true_dofs": d, "rmse": r, "max_error": 3 * r}
            for d, r in ((100, 0.2), (1000, 0.02), (10000, 0.002), (100000, 0.0002))]
    fig = error_vs_dofs_figure(AMRConfig(), rows)
    FigureCanvasAgg(fig).draw()
    for ax in fig.axes:
        lo, hi = ax.get_ylim()
        minor = [t.get_text() for t in ax.yaxis.get_minorticklabels() if t.get_visible() and lo <= t.get_position()[1] <= hi]
        major = [t.get_text() for t in ax.yaxis.get_majorticklabels() if t.get_visible() and lo <= t.get_position()[1] <= hi]
        assert not any(minor), minor  # no crowd of 0.09, 0.08, ... between the decades
        assert len([m for m in major if m]) >= 3, major


mfem = pytest.importorskip("mfem.ser")


@pytest.mark.mfem
def test_final_mesh_titles_do_not_overlap_with_a_long_inr_path(tmp_path: Path) -> None:
    from sciprune.studies.amr.inr import DATA
    from sciprune.studies.amr.plots import final_mesh_figure
    from tests.studies.amr.conftest import run_study

    deep = tmp_path / ("a_rather_long_folder_name_" * 3) / "my_own_inr_with_a_long_name.safetensors"
    deep.parent.mkdir(parents=True)
    shutil.copy(DATA / "corner.safetensors", deep)
    cfg, _ = run_study(tmp_path / "run", inr=str(deep), mode="uniform", max_it=2, rmse_points=1024)
    fig = final_mesh_figure(cfg, tmp_path / "run", 1)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in [fig._suptitle] + [ax.title for ax in fig.axes[:2]]]  # type: ignore[list-item]
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            assert not boxes[i].overlaps(boxes[j]), (i, j)
    assert str(deep.parent) not in fig._suptitle.get_text()  # type: ignore[union-attr]

