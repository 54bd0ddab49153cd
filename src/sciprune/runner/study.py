"""The registry of studies: name -> module holding ``STUDY`` (see :mod:`sciprune.studies.base`).

Adding a study is its package ``sciprune/studies/<name>/`` (config model, ``study.STUDY``,
``presets/{demo,quick,paper}.yaml``) plus one line here. Its command ``sciprune <name>`` and that
command's ``--help`` are generated from the config model (:mod:`sciprune.runner.commands`): one option
per config field, plus ``--preset``, ``--set``, ``--out``, ``--resume``, ``--quiet``, ``--device``,
``--workers`` and ``--scheduler``.

A study that needs sub-commands (``sciprune moth simulate|train|analyze``) sets the hook
``Study.commands``: ``commands(cli)`` receives a :class:`sciprune.runner.commands.StudyCLI`, adds its
own Typer commands with ``@cli.group.command()`` and places the generated run command (every config
flag) under a name with ``cli.add_run_command("train")``.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping

from sciprune.errors import InputError
from sciprune.studies.base import Study

STUDIES: Mapping[str, str] = {
    "classify": "sciprune.studies.classify.study",
    "amr": "sciprune.studies.amr.study",
    "flows": "sciprune.studies.flows.study",
    "nif": "sciprune.studies.nif.study",
    "moth": "sciprune.studies.moth.study",
    "prune": "sciprune.studies.prune.study",
}


def get_study(name: str) -> Study:
    """The study called ``name``; an unknown name lists the valid ones."""
    if name not in STUDIES:
        raise InputError(f"unknown study {name!r}; expected one of {', '.join(STUDIES)}")
    module = importlib.import_module(STUDIES[name])
    study: Study = module.STUDY
    return study


def study_package(name: str) -> str:
    """The package of study ``name`` (where its ``presets/`` folder lives)."""
    get_study(name)
    return STUDIES[name].rpartition(".")[0]


def available_studies() -> list[str]:
    return list(STUDIES)
