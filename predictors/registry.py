"""Predictors by name, through the ``hwprof.predictors`` entry-point group (third parties add their own)."""

from __future__ import annotations

from hwprof import registry
from hwprof.errors import UnknownNameError
from predictors.base import Predictor


def available_predictors() -> list[str]:
    return registry.names("predictor")


def get_predictor_class(name: str) -> type[Predictor]:
    """The class registered under ``name``; UnknownNameError lists the known names."""
    cls = registry.load("predictor", name)
    if not (isinstance(cls, type) and issubclass(cls, Predictor)):
        raise UnknownNameError(f"predictor {name!r} is registered as {cls!r}, which is not a predictors.base.Predictor subclass")
    return cls
