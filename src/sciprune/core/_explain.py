"""``explain(model, example_inputs)``: what tracing found, group by group, and what it left out and why.

``str(explain(...))`` lists every prunable group (name, size, the tensors coupled with it, where its
units are read by something else than a column: sums and products), then every group of channels
left unprunable with the op that blocked it and its source line (``torch.fx`` stack traces), and the
weight units (always prunable entry by entry).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from sciprune.core._trace import Blocked, TraceResult
from sciprune.core._traced import Traced


@dataclass(frozen=True)
class Explanation:
    """The trace of one model; ``str()`` is the report (see the module docstring)."""

    trace: TraceResult

    @property
    def prunable(self) -> list[str]:
        return [g.name for g in self.trace.units.groups if g.prunable]

    @property
    def unprunable(self) -> dict[str, list[Blocked]]:
        return dict(self.trace.blocked)

    def __str__(self) -> str:
        t = self.trace
        lines = []
        if t.error:
            lines.append(f"torch.fx could not trace the model: {t.error}")
            lines.append("every channel is unprunable; weights stay prunable entry by entry")
        groups = [g for g in t.units.groups if g.prunable]
        lines.append(f"{len(groups)} prunable group(s):")
        for g in groups:
            roles = [("in", g.incoming), ("out", g.outgoing), ("with", g.attached)]
            parts = [f"{role} {s.param.removeprefix('module.')}[axis {s.axis}]" for role, ss in roles for s in ss]
            bufs = [f"with {b.removeprefix('module.')}" for b, _, _ in t.buffers.get(g.name, [])]
            lines.append(f"  {g.name}: {g.size} unit(s), activation {g.activation}; " + ", ".join(parts + bufs))
            for where in t.sinks.get(g.name, []):
                lines.append(f"    also read by {where} (exact: its term is 0 once the unit's weights are zero)")
        blocked = {**t.blocked}
        lines.append(f"{len(blocked) + len(t.unowned)} unprunable channel set(s):")
        sizes = {g.name: g.size for g in t.units.groups}
        for name, whys in blocked.items():
            n = sizes.get(name)
            lines.append(f"  {name}" + (f" ({n} channel(s))" if n is not None else "") + ":")
            lines += [f"    {_line(b)}" for b in whys]
        for b in t.unowned:
            lines.append(f"  {_line(b)}")
        lines.append(f"{len(t.units.weights)} weight unit(s) (pruned entry by entry): "
                     + ", ".join(w.param.removeprefix("module.") for w in t.units.weights))
        return "\n".join(lines)


def _line(b: Blocked) -> str:
    return f"{b.reason}: {b.node} at {b.where}" if b.node else b.reason


def explain(model: nn.Module, example_inputs: tuple[Tensor, ...] | Tensor) -> Explanation:
    """Trace ``model`` on ``example_inputs`` and explain its units (a :class:`Traced` is read as is)."""
    return Explanation(model.trace if isinstance(model, Traced) else Traced(model, example_inputs).trace)
