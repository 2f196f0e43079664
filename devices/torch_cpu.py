"""PyTorch on the local CPU: the baseline users compare deployment runtimes against.

Runs ``.pt2`` archives (``torch.export``, see :mod:`devices.export.torch_export`),
in one of two modes:

- ``eager``: the exported ATen graph run op by op by PyTorch's eager kernels
  (``ExportedProgram.module()``), i.e. what ``model(x)`` costs in PyTorch,
  without the ``nn.Module`` call overhead;
- ``compile``: the same graph compiled by ``torch.compile`` (Inductor,
  generated C++ kernels) when the model is loaded; needs a C++ compiler.

Threads are pinned like ``ort-cpu``'s: ``intra_op_threads`` through
``torch.set_num_threads`` for the duration of a measurement (restored after),
``inter_op_threads`` through ``torch.set_num_interop_threads``, which torch
allows once per process: a different value later is refused with the reason.
fp32 only.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from typing import Any, ContextManager, Iterator

from devices.cpu_settings import local_device_info, pinned_to, validate_cpu_settings
from devices.export.calibration import random_feeds
from devices.export.torch_export import load_pt2, torch_args
from hwprof.devices import Device, PreparedModel
from hwprof.errors import ConfigError, DeviceUnavailable, ModelRunError, first_line
from hwprof.types import DeviceInfo, ModelArtifact

MODES = ("eager", "compile")


class TorchCpuDevice(Device):
    name = "torch-cpu"
    description = "PyTorch on this machine's CPU (torch.export archives, eager or torch.compile)"
    supported_formats = ("pt2",)
    supported_precisions = ("fp32",)
    default_settings = {
        "mode": "eager",
        "intra_op_threads": 1,
        "inter_op_threads": 1,
        "cpu_affinity": None,
        "input_seed": 0,
    }

    def validate_settings(self, settings: dict[str, Any]) -> dict[str, Any]:
        if settings["mode"] not in MODES:
            raise ConfigError(f"mode must be one of {', '.join(MODES)}, got {settings['mode']!r}")
        return validate_cpu_settings(settings, ("intra_op_threads", "inter_op_threads"))

    def runtime_packages(self) -> tuple[str, ...]:
        return ("torch",)

    def check(self) -> DeviceInfo:
        import torch

        extra: dict[str, Any] = {
            "mode": self.settings["mode"],
            "inter_op_threads_effective": self._set_interop_threads(),
            "mkldnn": bool(torch.backends.mkldnn.is_available()),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        }
        if self.settings["mode"] == "compile":
            compiler = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")
            if not compiler:
                raise DeviceUnavailable(
                    "torch-cpu: mode=compile needs a C++ compiler for torch.compile (Inductor); none found "
                    "(install g++ or set CXX), or use mode=eager"
                )
            extra.update({"compile_backend": "inductor", "cxx": compiler})
        return local_device_info(self, "torch", torch.__version__, extra)

    def _set_interop_threads(self) -> int:
        """Apply ``inter_op_threads`` (0: leave torch's default); DeviceUnavailable when torch has fixed another value."""
        import torch

        wanted = self.settings["inter_op_threads"]
        current = torch.get_num_interop_threads()
        if wanted == 0 or wanted == current:
            return current
        try:
            torch.set_num_interop_threads(wanted)
        except RuntimeError as exc:
            raise DeviceUnavailable(
                f"torch-cpu: inter_op_threads={wanted} cannot be applied, this process already runs torch with "
                f"{current} inter-op threads (torch sets them once per process: {first_line(exc)}); "
                f"use inter_op_threads={current} or measure in a fresh worker process"
            ) from exc
        return wanted

    def measuring(self) -> ContextManager[None]:
        return self._pinned()

    @contextlib.contextmanager
    def _pinned(self) -> Iterator[None]:
        """Threads, cores and no autograd for prepare -> time -> release; the previous values are restored after."""
        import torch

        self._set_interop_threads()
        saved_threads = torch.get_num_threads()
        if self.settings["intra_op_threads"] > 0:
            torch.set_num_threads(self.settings["intra_op_threads"])
        try:
            with pinned_to(self.settings["cpu_affinity"]), torch.inference_mode():
                yield
        finally:
            torch.set_num_threads(saved_threads)

    def prepare(self, artifact: ModelArtifact) -> PreparedModel:
        import torch

        try:
            program = load_pt2(artifact.path)
            graph = program.module()
        except Exception as exc:  # zipfile, torch serialization and pickle errors alike
            raise ModelRunError(f"torch cannot load {artifact.path}: {type(exc).__name__}: {first_line(exc)}") from exc
        fn = graph
        if self.settings["mode"] == "compile":
            fn = torch.compile(graph, backend="inductor", fullgraph=True, dynamic=False)
        feed = random_feeds(artifact.inputs, 1, self.settings["input_seed"])[0]
        args = torch_args(artifact.inputs, feed)
        try:
            with torch.inference_mode():
                fn(*args)  # loads (and in compile mode compiles) now, not in the first timed call
        except Exception as exc:
            raise ModelRunError(f"torch failed to run {artifact.path} ({self.settings['mode']}): {first_line(exc)}") from exc
        return PreparedModel(artifact, lambda: fn(*args), state=fn)


__all__ = ["MODES", "TorchCpuDevice"]
