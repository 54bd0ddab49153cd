"""The registry of studies: name -> module holding ``STUDY`` (see :mod:`sciprune.studies.base`)."""

from __future__ import annotations

import importlib
from collections.abc import Mapping

from sciprune.errors import InputError
from sciprune.studies.base import Study

STUDIES: Mapping[str, str] = {
    "classify": "sciprune.studies.classify.study",
    "amr": "sciprune.studies.amr.study",
    "moth": "sciprune.studies.moth.study",
}


def get_study(name: str) -> Study:
    """The study called ``name``; an unknown name lists the valid ones."""
    if name not in STUDIES:
        raise InputError(f"unknown study {name!r}; expected one of {', '.join(STUDIES)}")
    module = importlib.import_module(STUDIES[name])
    study: Study = module.STUDY
    return study


def available_studies() -> list[str]:
    return list(STUDIES)
