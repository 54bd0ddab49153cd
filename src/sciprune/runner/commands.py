"""Each study's command, generated from its config model: ``sciprune <study> [--field VALUE ...]``.

Every leaf field of the study's pydantic config becomes one option; nested sections are prefixed
(``train.epochs`` -> ``--train-epochs``) unless the field names its own flag with
``Field(..., json_schema_extra={"cli": "dataset"})``. The option's help is the field's
``description``, or its entry in the model docstring's ``Attributes:`` section. A value given on the
command line is parsed like a ``--set`` value (YAML for lists, the text itself for strings) and
validated by the config model, so the command and the config file accept exactly the same values.

Common options of every study command: ``--preset``, ``--set``, ``--out``, ``--resume``,
``--quiet``, ``--device``, ``--workers``, ``--scheduler``, ``--plan`` (print the cost plan and exit:
:mod:`sciprune.runner.plan`) and ``--plan-workers``.

A study that needs more than one command (e.g. ``sciprune moth simulate|train|analyze``) sets
``Study.commands``: a hook ``commands(cli: StudyCLI)`` that adds its own Typer commands to
``cli.group`` and places the generated run command under a name of its choice with
``cli.add_run_command("train")``. ``sciprune <study>`` then is a group of those commands.
"""

from __future__ import annotations

import enum
import inspect
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from pydantic import BaseModel

from sciprune.errors import InputError
from sciprune.studies.base import Study

@dataclass(frozen=True)
class Flag:
    """One generated option: the config field at ``path`` set by ``--option``."""

    path: tuple[str, ...]
    option: str
    kind: str  # "bool" | "int" | "float" | "str" | "choice" | "yaml"
    help: str
    choices: tuple[str, ...] = ()

    @property
    def dest(self) -> str:
        return "f__" + "__".join(self.path)


def _args(ann: Any) -> tuple[Any, ...]:
    if typing.get_origin(ann) in (typing.Union, types.UnionType):
        return tuple(a for a in typing.get_args(ann) if a is not type(None))
    return (ann,)


def _kind(ann: Any) -> tuple[str, tuple[str, ...]]:
    args = _args(ann)
    if len(args) == 1:
        a = args[0]
        if typing.get_origin(a) is Literal:
            return "choice", tuple(str(v) for v in typing.get_args(a))
        if a is bool:
            return "bool", ()
        if a is int:
            return "int", ()
        if a is float:
            return "float", ()
        if a is str:
            return "str", ()
    return "yaml", ()


def _docstring_attributes(model: type[BaseModel]) -> dict[str, str]:
    """``name -> text`` from the ``Attributes:`` sections of the Google-style docstrings of ``model``
    and its bases (a field inherited from a base is described there; a subclass's text wins)."""
    out: dict[str, str] = {}
    for cls in reversed(model.__mro__):
        if isinstance(cls, type) and issubclass(cls, BaseModel) and "__doc__" in vars(cls):
            out.update(_own_attributes(vars(cls)["__doc__"] or ""))
    return out


def _own_attributes(raw: str) -> dict[str, str]:
    doc = inspect.cleandoc(raw)
    out: dict[str, str] = {}
    section = doc.split("Attributes:", 1)
    if len(section) < 2:
        return out
    current = None
    for line in section[1].splitlines():
        m = re.match(r"^\s{4}(\w+)(?:\s*\([^)]*\))?:\s*(.*)$", line)
        if m:
            current = m.group(1)
            out[current] = m.group(2).strip()
        elif current and line.startswith("        "):
            out[current] += " " + line.strip()
        elif line.strip() and not line.startswith(" "):
            break
    return out


_ROLE = re.compile(r":(\w+):`([^`]*)`")


def _role(m: re.Match[str]) -> str:
    role, text = m.group(1), m.group(2)
    if role == "math":  # TeX to text: \eta_E^2 -> eta_E^2, \frac{a}{b} stays readable as frac{a}{b}
        return re.sub(r"\\([A-Za-z]+)", r"\1", text).replace("\\", "")
    label = re.match(r"^(.*?)\s*<[^>]*>$", text)  # :ref:`words <target>` -> words
    if label:
        return label.group(1)
    return text.lstrip("~.").rsplit(".", 1)[-1] if text.startswith("~") else text.lstrip(".")


def plain_text(doc: str) -> str:
    """A docstring fragment as plain help text: Sphinx roles (``:mod:`.marking```, ``:math:`x```,
    ``:func:`~a.b``) become their text, double back-quotes are dropped, whitespace is one space."""
    return " ".join(_ROLE.sub(_role, doc).replace("``", "").split())


def _sub_model(ann: Any) -> type[BaseModel] | None:
    args = _args(ann)
    if len(args) == 1 and isinstance(args[0], type) and issubclass(args[0], BaseModel):
        return args[0]
    return None


def flags(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> list[Flag]:
    """The options of ``model``'s leaf fields (``study`` excluded), depth first, in field order."""
    docs = _docstring_attributes(model)
    out: list[Flag] = []
    for name, info in model.model_fields.items():
        if not prefix and name == "study":
            continue
        sub = _sub_model(info.annotation)
        if sub is not None:
            out += flags(sub, (*prefix, name))
            continue
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        option = str(extra.get("cli") or "-".join((*prefix, name)).replace("_", "-"))
        kind, choices = _kind(info.annotation)
        text = plain_text(info.description or docs.get(name, ""))
        out.append(Flag((*prefix, name), option, kind, text, choices))
    return out


def _annotated(flag: Flag) -> Any:
    """The Typer annotation of ``flag``'s option (every generated option defaults to ``None``)."""
    name = f"--{flag.option}"
    if flag.kind == "bool":
        return Annotated[bool | None, typer.Option(f"{name}/--no-{flag.option}", help=flag.help, show_default=False)]
    if flag.kind == "choice":
        choice = enum.Enum(flag.dest, {c: c for c in flag.choices}, type=str)  # type: ignore[misc]
        return Annotated[choice | None, typer.Option(name, help=flag.help, show_default=False)]
    ptype: Any = {"int": int, "float": float}.get(flag.kind, str)
    metavar = {"yaml": "YAML", "int": "INT", "float": "FLOAT", "str": "TEXT"}[flag.kind]
    return Annotated[ptype | None, typer.Option(name, help=flag.help, metavar=metavar, show_default=False)]


class _Preset(str, enum.Enum):
    demo = "demo"
    quick = "quick"
    paper = "paper"


def common_options(study: str) -> list[inspect.Parameter]:
    """The options every study command takes, as keyword parameters for Typer."""
    def p(name: str, ann: Any, default: Any) -> inspect.Parameter:
        return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=ann, default=default)

    return [
        p("preset", Annotated[_Preset, typer.Option("--preset", help="demo (seconds) | quick (minutes) | paper (published scale; GPU welcome).")], _Preset.quick),
        p("set_", Annotated[list[str] | None, typer.Option("--set", metavar="FIELD=VALUE", help="Override any config field: --set train.epochs=5 (repeatable; wins over the flags).")], None),
        p("out", Annotated[str | None, typer.Option("--out", help=f"Results directory (default: runs/{study}-<preset>).")], None),
        p("resume", Annotated[bool, typer.Option("--resume", help="Continue an interrupted run in --out.")], False),
        p("quiet", Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")], False),
        p("device", Annotated[str, typer.Option("--device", help="cpu or cuda[:N].")], "cpu"),
        p("workers", Annotated[int, typer.Option("--workers", help="Worker processes / threads; results do not depend on it.")], 1),
        p("scheduler", Annotated[str | None, typer.Option("--scheduler", help="dask.distributed scheduler address, tcp://host:port (default: in-process).")], None),
        p("plan", Annotated[bool, typer.Option("--plan", help="Print the run's cost plan (tasks, CPU time, memory, wall time on 1 / --workers / --plan-workers workers) and exit: nothing runs, --out is not created.")], False),
        p("plan_workers", Annotated[int | None, typer.Option("--plan-workers", metavar="M", help="With --plan: the remote workers (--scheduler) to plan for (default 16).")], None),
    ]


def _value(flag: Flag, raw: Any) -> Any:
    if flag.kind != "yaml":
        return raw
    from sciprune.validate import parse_yaml_value

    return parse_yaml_value(raw, f"--{flag.option}")


def config_from_options(study: Study, params: dict[str, Any]) -> dict[str, Any]:
    """The config dict a command line describes: preset, then the flags given, then ``--set``."""
    from sciprune.runner.config import apply_overrides, load_preset

    config = load_preset(study.name, params["preset"])
    for flag in flags(study.config):
        raw = params.get(flag.dest)
        if raw is None:
            continue
        node = config
        for part in flag.path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise InputError(f"--{flag.option}: the preset's field {part!r} is not a section")
            node = child
        node[flag.path[-1]] = _value(flag, raw)
    return apply_overrides(config, list(params.get("set_") or ()))


def run_function(study: Study, *, help: str | None = None) -> Callable[..., None]:
    """The generated run command as a function Typer can register: its signature lists every option."""

    def command(**params: Any) -> None:
        from sciprune.runner.run import run_config

        from sciprune.runner.config import given_fields

        params = {k: (v.value if isinstance(v, enum.Enum) else v) for k, v in params.items()}
        config = config_from_options(study, params)
        given = given_fields((".".join(f.path) for f in fields if params.get(f.dest) is not None), params.get("set_") or ())
        if params["plan"] or params["plan_workers"] is not None:
            from sciprune.runner.plan import print_plan

            typer.echo(print_plan(config, plan=params["plan"], workers=params["workers"], plan_workers=params["plan_workers"],
                                  preset=params["preset"], device=params["device"], given=given))
            return
        out = params["out"] if params["out"] is not None else str(Path("runs") / f"{study.name}-{params['preset']}")
        path = run_config(config, out=out, resume=params["resume"], quiet=params["quiet"], device=params["device"],
                          workers=params["workers"], scheduler=params["scheduler"], given=given)
        typer.echo(f"results: {path}  (report: {path / 'report.html'})")

    fields = flags(study.config)
    parameters = [*common_options(study.name),
                  *(inspect.Parameter(f.dest, inspect.Parameter.KEYWORD_ONLY, annotation=_annotated(f), default=None)
                    for f in fields)]
    command.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in parameters}
    command.__doc__ = plain_text(help or (inspect.getdoc(study.config) or study.title).split("\n\n")[0])
    command.__name__ = study.name
    return command


@dataclass
class StudyCLI:
    """What a study's ``commands`` hook receives.

    Attributes:
        study: the study.
        group: a Typer app; ``@cli.group.command()`` adds a sub-command ``sciprune <study> NAME``.
        runs: names under which the generated run command is added (see :meth:`add_run_command`).
    """

    study: Study
    group: typer.Typer
    runs: dict[str, str | None] = field(default_factory=dict)

    def add_run_command(self, name: str = "run", *, help: str | None = None) -> None:
        """Add the generated run command (every config flag, ``--preset``, ``--out``, ...) as ``name``."""
        self.runs[name] = help

    def add_report_command(self, name: str = "report") -> None:
        """Add ``sciprune <study> NAME RUN_DIR``: re-make a results directory's report (as ``sciprune report``)."""

        def report(run_dir: str) -> None:
            from sciprune.runner.run import make_report

            typer.echo(f"report: {make_report(run_dir, study=study)}")

        study = self.study.name
        # set as an object: with postponed annotations a string here could not see ``self``
        report.__annotations__["run_dir"] = Annotated[str, typer.Argument(help=f"A results directory of `sciprune {self.study.name}`.")]
        report.__doc__ = "Re-make summary.json, the plots and report.html from the recorded rows (no re-run)."
        self.group.command(name)(report)

    def options(self) -> list[Flag]:
        """The config flags of the study (for a hand-written command that wants to reuse them)."""
        return flags(self.study.config)


def study_command(study: Study) -> Any:
    """``sciprune <study>`` as a click command: the generated run command, or the group the study's
    ``commands`` hook builds."""
    if study.commands is None:
        single = typer.Typer(add_completion=False, rich_markup_mode=None)
        single.command(study.name, short_help=study.title)(run_function(study))
        return typer.main.get_command(single)
    cli = StudyCLI(study, typer.Typer(name=study.name, help=study.title, no_args_is_help=True, add_completion=False,
                                      rich_markup_mode=None))
    study.commands(cli)
    for name, text in cli.runs.items():
        cli.group.command(name, short_help=text)(run_function(study, help=text))
    group = typer.main.get_group(cli.group)
    group.name = study.name
    return group
