"""A toy exporter and a toy device: the smallest complete plug-ins, used by the walkthrough in docs/plugins.md.

The exporter writes a network's parameter count and input shape as JSON (a
"model" in format ``toyjson``); the device "runs" such a file by summing
``range(n_params)``, so bigger networks take longer, with no runtime installed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

from hwprof.artifacts import Exporter
from hwprof.devices import Device, PreparedModel
from hwprof.errors import ConfigError, ModelRunError
from hwprof.hostinfo import cpu_model
from hwprof.types import DeviceInfo, InputSpec, ModelArtifact

TOY_INPUTS = (InputSpec("input", (1, 3, 8, 8), "float32"),)


def toy_module(width: int):
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, width, 3, padding=1), torch.nn.ReLU()).eval()


class ToyExporter(Exporter):
    name = "toy-json"
    format = "toyjson"
    suffix = ".toy.json"
    precisions = ("fp32", "int8")

    def config(self) -> dict[str, Any]:
        return {"toy_version": 1}

    def export(self, module, inputs: Sequence[InputSpec], out_path: Path, precision: str) -> None:
        self.check_precision(precision)
        n_params = sum(p.numel() for p in module.parameters())
        if precision == "int8":
            n_params //= 4
        out_path.write_text(json.dumps({"n_params": n_params, "input": list(inputs[0].shape)}))


class ToyDevice(Device):
    name = "toy-cpu"
    description = "sums range(n_params) in Python for a toyjson file"
    supported_formats = ("toyjson",)
    default_settings = {"scale": 1}

    def validate_settings(self, settings: dict[str, Any]) -> dict[str, Any]:
        if isinstance(settings["scale"], bool) or not isinstance(settings["scale"], int) or settings["scale"] < 1:
            raise ConfigError(f"scale must be an integer >= 1, got {settings['scale']!r}")
        return settings

    def check(self) -> DeviceInfo:
        return DeviceInfo(self.name, "python-sum", "1", cpu_model(), os.cpu_count() or 0, settings=dict(self.settings))

    def prepare(self, artifact: ModelArtifact) -> PreparedModel:
        try:
            n = int(json.loads(Path(artifact.path).read_text())["n_params"]) * self.settings["scale"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelRunError(f"toy-cpu cannot load {artifact.path}: {exc}") from None
        return PreparedModel(artifact, lambda: sum(range(n)), state=n)
