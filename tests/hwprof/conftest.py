"""A toy two-layer space and a scripted device, so orchestration tests run in milliseconds."""

from __future__ import annotations

import pytest

from hwprof.devices import Device, PreparedModel
from hwprof.protocol import ProtocolSettings, run_interleaved, run_protocol
from hwprof.types import DeviceInfo
from hwprof.spaces import SearchSpace

# The median's CI (stop_quantile 0.5) is met within these caps; the default p10 needs about 55 samples.
FAST = ProtocolSettings(min_warmup=1, max_warmup=4, warmup_window=2, min_runs=5, max_runs=20, max_time_s=1.0, check_every=5,
                        stop_quantile=0.5)


class ToySpace(SearchSpace):
    name = "toy"

    @property
    def layers(self):
        return [("width", ("4", "8", "16")), ("depth", ("1", "2"))]

    @property
    def input_shape(self):
        return (1, 3, 8, 8)

    def spec_from_choices(self, choices):
        w, d = self.layers[0][1][choices[0]], self.layers[1][1][choices[1]]
        return f"w{w}-d{d}"

    def choices_from_spec(self, spec):
        from hwprof.errors import InvalidArchitecture

        try:
            w, d = spec.split("-")
            return (self.layers[0][1].index(w[1:]), self.layers[1][1].index(d[1:]))
        except ValueError:
            raise InvalidArchitecture(f"toy: bad spec {spec!r}, expected like 'w8-d2'") from None

    def build(self, arch, seed=None):
        import torch

        w, d = arch.spec.split("-")
        c, depth = int(w[1:]), int(d[1:])
        if seed is not None:
            torch.manual_seed(seed)
        layers = [torch.nn.Conv2d(3, c, 3, padding=1)]
        for _ in range(depth - 1):
            layers += [torch.nn.ReLU(), torch.nn.Conv2d(c, c, 3, padding=1)]
        return torch.nn.Sequential(*layers).eval()


class ScriptedDevice(Device):
    """Times with a fake clock: latency = base_ms * (1 + drift_per_call * calls so far)."""

    name = "scripted"
    supported_formats = ("onnx",)
    default_settings = {"base_ms": 2.0, "drift_per_model": 0.0}

    def __init__(self, fail_on=-1, interrupt_on=-1, interrupt_at_call=-1, **settings):
        super().__init__(**settings)
        self.fail_on, self.interrupt_on = fail_on, interrupt_on
        self.interrupt_at_call = interrupt_at_call  # Ctrl-C inside the timing loop, at this (1-based) model call
        self.n_prepared = 0
        self.n_calls = 0
        self.now = 0.0

    def check(self):
        return DeviceInfo(self.name, "fake", "1.0", "test-cpu", 1, settings=dict(self.settings))

    def prepare(self, artifact):
        from hwprof.errors import ModelRunError

        self.n_prepared += 1
        if self.n_prepared == self.fail_on:
            raise ModelRunError(f"scripted failure on {artifact.path}")
        if self.n_prepared == self.interrupt_on:
            raise KeyboardInterrupt
        factor = 1 + self.settings["drift_per_model"] * (self.n_prepared - 1)
        duration = self.settings["base_ms"] * factor / 1000.0

        def fn():
            self.n_calls += 1
            if self.n_calls == self.interrupt_at_call:
                raise KeyboardInterrupt
            self.now += duration

        return PreparedModel(artifact, fn)

    def time(self, fn, protocol):
        return run_protocol(fn, protocol, clock=lambda: self.now)

    def time_many(self, fns, protocol):
        return run_interleaved(fns, protocol, clock=lambda: self.now)


@pytest.fixture
def toy_space():
    return ToySpace()


@pytest.fixture
def toy_plugins():
    """The toy exporter and device of tests/hwprof/plugins.py and the toy space, registered by name for one test."""
    from hwprof import registry
    from tests.hwprof.plugins import ToyDevice, ToyExporter

    registry.register("exporter", "toy-json", ToyExporter)
    registry.register("device", "toy-cpu", ToyDevice)
    registry.register("space", "toy", ToySpace)
    yield
    for kind, name in (("exporter", "toy-json"), ("device", "toy-cpu"), ("space", "toy")):
        registry.unregister(kind, name)
