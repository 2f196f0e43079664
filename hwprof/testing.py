"""Conformance checks a device adapter runs against itself (as Optuna does for storages).

Usage in a third-party adapter's tests::

    from hwprof.testing import check_device
    def test_conformance(tmp_path):
        check_device(MyDevice, good_artifact, tmp_path)

A search space checks itself the same way with ``check_space(space, specs)``,
an exporter with ``check_exporter(MyExporter, tmp_path)``.
Each check raises AssertionError with a message naming the broken contract.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any, Callable

from hwprof.errors import ConfigError, DeviceUnavailable, HwprofError, ModelRunError
from hwprof.protocol import ProtocolSettings
from hwprof.types import DeviceInfo, Measurement, ModelArtifact

FAST_PROTOCOL = ProtocolSettings(min_warmup=1, max_warmup=5, warmup_window=2, min_runs=5, max_runs=30, max_time_s=2.0)


def check_device(device_factory: Callable[..., Any], artifact: ModelArtifact, tmp_path: Path) -> Measurement:
    """Run every contract check; returns the measurement of ``artifact`` for further asserts."""
    device = device_factory()
    assert device.name, "Device.name must be a non-empty string"
    assert artifact.format in device.supported_formats, "the artifact given must be in a supported format"
    _check_unknown_setting_rejected(device_factory)
    try:
        info = device.check()
    except DeviceUnavailable as exc:
        assert str(exc), "DeviceUnavailable must say why"
        raise
    _check_info(device, info)
    m = device.measure(artifact, FAST_PROTOCOL)
    _check_measurement(device, artifact, m)
    _check_handles(device, artifact)
    _check_worker(device, artifact, m)
    _check_corrupt_model_rejected(device, artifact, tmp_path)
    _check_truncated_model_rejected(device, artifact, tmp_path)
    _check_unsupported_refused(device, artifact)
    _check_repeatable(device, artifact, m)
    return m


REPEAT_MAX_RATIO = 3.0  # loose on purpose: conformance runs on loaded CI machines; benchmarks measure reproducibility


def _check_repeatable(device: Any, artifact: ModelArtifact, first: Measurement) -> None:
    """Measuring the same model again gives a median of the same order (catches timing the wrong thing, e.g. a load)."""
    again = device.measure(artifact, FAST_PROTOCOL)
    lo, hi = sorted((first.stats.median_ms, again.stats.median_ms))
    assert hi <= REPEAT_MAX_RATIO * lo, (
        f"two measurements of the same model must agree within a factor {REPEAT_MAX_RATIO:g}: "
        f"medians {first.stats.median_ms:.4g} and {again.stats.median_ms:.4g} ms"
    )


def _check_truncated_model_rejected(device: Any, artifact: ModelArtifact, tmp_path: Path) -> None:
    """The first half of a valid file (an interrupted copy) must be a ModelRunError naming the file, never a crash."""
    data = Path(artifact.path).read_bytes()
    bad = Path(tmp_path) / f"truncated.{artifact.format}"
    bad.write_bytes(data[: len(data) // 2])
    truncated = dataclasses.replace(artifact, path=str(bad), sha256="1" * 64, size_bytes=len(data) // 2)
    try:
        device.measure(truncated, FAST_PROTOCOL)
    except ModelRunError as exc:
        assert str(bad) in str(exc) or bad.name in str(exc), "ModelRunError must name the truncated file"
    except HwprofError as exc:
        raise AssertionError(f"a truncated model must raise ModelRunError, got {type(exc).__name__}: {exc}") from exc
    else:
        raise AssertionError("measuring a truncated model file must raise ModelRunError")


def _check_unsupported_refused(device: Any, artifact: ModelArtifact) -> None:
    """An artifact in a format or precision the device does not run is refused (ConfigError) before anything is loaded."""
    from hwprof.artifacts import PRECISIONS

    loads: list[Any] = []
    real_prepare = device.prepare
    device.prepare = lambda a: loads.append(a) or real_prepare(a)
    try:
        unsupported_precisions = [p for p in (*PRECISIONS, "fp8") if p not in device.supported_precisions]
        cases = [dataclasses.replace(artifact, format="no-such-format")]
        cases += [dataclasses.replace(artifact, precision=p) for p in unsupported_precisions]
        for case in cases:
            try:
                device.measure(case, FAST_PROTOCOL)
            except ConfigError:
                pass
            else:
                raise AssertionError(f"a {case.format} artifact of precision {case.precision!r} must be refused with ConfigError")
            try:
                device.measure_many([artifact, case], FAST_PROTOCOL)
            except ConfigError:
                pass
            else:
                raise AssertionError("measure_many must refuse a batch holding an unsupported artifact")
        assert not loads, "an unsupported format or precision must be refused before any model is loaded"
    finally:
        del device.prepare


def _check_handles(device: Any, artifact: ModelArtifact) -> None:
    from hwprof.devices import PreparedModel

    with device.measuring():
        handle = device.prepare(artifact)
        try:
            assert isinstance(handle, PreparedModel), "prepare() must return a hwprof.devices.PreparedModel"
            assert handle.artifact == artifact, "the handle must name the artifact it loaded"
            handle.run()
        finally:
            device.release(handle)


def _check_worker(device: Any, artifact: ModelArtifact, direct: Measurement) -> None:
    """The same adapter measured through the worker's JSON path gives an equivalent Measurement."""
    from hwprof.runners import InProcessRunner

    runner = InProcessRunner(device)
    info, host = runner.describe()
    assert info == device.check(), "DeviceInfo must survive the worker's JSON round trip unchanged"
    for key in ("cpu_model", "hostname", "python"):
        assert key in host, f"the worker's host metadata must include {key!r}"
    (m,) = runner.measure([artifact], FAST_PROTOCOL, interleaved=False)
    assert Measurement.from_json(json.loads(json.dumps(m.to_json()))) == m, "Measurement JSON round trip must be exact"
    assert (m.device, m.arch_id, m.artifact_sha256, dict(m.settings)) == (
        direct.device, direct.arch_id, direct.artifact_sha256, dict(direct.settings)
    ), "a measurement through the worker must describe the same device, artifact and settings"


def _check_unknown_setting_rejected(device_factory: Callable[..., Any]) -> None:
    try:
        device_factory(__no_such_setting__=1)
    except ConfigError as exc:
        assert "__no_such_setting__" in str(exc), "ConfigError must name the unknown setting"
    else:
        raise AssertionError("an unknown device setting must raise ConfigError")


def _check_info(device: Any, info: DeviceInfo) -> None:
    assert isinstance(info, DeviceInfo), "check() must return a DeviceInfo"
    assert info.name == device.name, f"DeviceInfo.name {info.name!r} != device name {device.name!r}"
    assert info.runtime and info.runtime_version, "DeviceInfo must name the runtime and its version"
    assert dict(info.settings) == dict(device.settings), "DeviceInfo.settings must be the effective settings"
    json.dumps(info.to_json())  # must be JSON-serialisable for the store


def _check_measurement(device: Any, artifact: ModelArtifact, m: Measurement) -> None:
    assert isinstance(m, Measurement), "measure() must return a Measurement"
    assert m.device == device.name and m.artifact_sha256 == artifact.sha256 and m.arch_id == artifact.arch_id
    s = m.stats
    assert s.n_runs == len(m.samples_ms) >= FAST_PROTOCOL.min_runs, "n_runs must equal the number of samples kept"
    assert all(x > 0 and math.isfinite(x) for x in m.samples_ms), "latency samples must be positive and finite"
    assert s.min_ms <= s.median_ms <= s.max_ms and s.min_ms <= s.p90_ms <= s.max_ms, "inconsistent order statistics"
    assert s.ci_half_width_ms >= 0 and s.std_ms >= 0
    assert m.n_warmup >= FAST_PROTOCOL.min_warmup, "warm-up must run at least min_warmup calls"
    assert m.stop_reason in ("ci_target", "max_runs", "max_time")
    assert dict(m.settings) == dict(device.settings), "a measurement must record the device settings"
    for key in ("cpu_model", "hostname", "python"):
        assert key in m.host, f"host metadata must include {key!r}"
    assert Measurement.from_json(json.loads(json.dumps(m.to_json()))) == m, "Measurement JSON round trip must be exact"


def _check_corrupt_model_rejected(device: Any, artifact: ModelArtifact, tmp_path: Path) -> None:
    bad = Path(tmp_path) / f"corrupt.{artifact.format}"
    bad.write_bytes(b"\x00not a model\xff" * 16)
    corrupt = dataclasses.replace(artifact, path=str(bad), sha256="0" * 64)
    try:
        device.measure(corrupt, FAST_PROTOCOL)
    except ModelRunError as exc:
        assert str(bad) in str(exc) or bad.name in str(exc), "ModelRunError must name the file"
    except HwprofError as exc:  # pragma: no cover - wrong subclass is a contract break
        raise AssertionError(f"a corrupt model must raise ModelRunError, got {type(exc).__name__}") from exc
    else:
        raise AssertionError("measuring a corrupt model file must raise ModelRunError")


def check_exporter(exporter_factory: Callable[..., Any], tmp_path: Path) -> dict[str, ModelArtifact]:
    """Contract of an exporter: class attributes, a file per precision it claims, cached with metadata naming the arch.

    Returns the artifact of each precision (a tiny conv network, input (1, 3, 8, 8)) for device checks.
    """
    import torch

    from hwprof.artifacts import ArtifactCache, Exporter
    from hwprof.types import Architecture, InputSpec

    exporter = exporter_factory()
    assert isinstance(exporter, Exporter), "an exporter must subclass hwprof.artifacts.Exporter"
    assert exporter.name and exporter.format and exporter.suffix, "name, format and suffix must be set"
    assert exporter.precisions and all(p in ("fp32", "int8") for p in exporter.precisions), "precisions must be fp32/int8"
    config = exporter.config()
    assert json.loads(json.dumps(config, sort_keys=True)) == config, "config() must be JSON values (it is hashed)"
    exporter.check()  # an exporter that cannot run here raises ExportError saying why; the check stops there
    inputs = (InputSpec("input", (1, 3, 8, 8), "float32"),)

    def build() -> Any:
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU()).eval()

    cache = ArtifactCache(Path(tmp_path) / "exporter-check")
    arch = Architecture("check", "tiny")
    artifacts: dict[str, ModelArtifact] = {}
    for precision in exporter.precisions:
        artifact = cache.get_or_export(arch, build, inputs, exporter, precision)
        numerics = artifact.exporter.get("numerics")
        if numerics is not None:
            assert json.loads(json.dumps(numerics)) == numerics, "the numerics report must be JSON values"
            assert numerics.get("precision") == precision, "the numerics report must name the precision it checked"
        assert Path(artifact.path).is_file() and artifact.size_bytes > 0, f"{precision}: no file written"
        assert artifact.format == exporter.format and artifact.precision == precision
        assert artifact.path.endswith(exporter.suffix), f"the file must end with {exporter.suffix!r}"
        again = cache.get_or_export(arch, build, inputs, exporter, precision)
        assert again == artifact, "a second export of the same network must reuse the cached file"
        artifacts[precision] = artifact
    assert len({a.path for a in artifacts.values()}) == len(exporter.precisions), "every precision must be its own artifact"
    try:
        exporter.check_precision("fp8")
    except ConfigError:
        pass
    else:
        raise AssertionError("an unsupported precision must raise ConfigError")
    return artifacts


def check_space(space: Any, specs: list[str]) -> None:
    """Contract of a search space on a few of its spec strings (needs torch for the builds)."""
    import numpy as np
    import torch

    assert space.name and space.num_layers == len(space.layers) >= 1
    archs = [space.parse(s) for s in specs]
    for spec, arch in zip(specs, archs):
        assert arch.spec == spec, f"parse() must keep a canonical spec: {spec!r} -> {arch.spec!r}"
        assert space.from_choices(space.to_choices(arch)) == arch, "choices round trip broken"
    enc = space.encode(archs)
    assert enc.shape == (len(archs), space.encoding_width)
    assert np.all(enc.sum(axis=1) == space.num_layers), "one-hot rows must hold one 1 per layer"
    arch = archs[0]
    a, b = space.build(arch, seed=7).state_dict(), space.build(arch, seed=7).state_dict()
    c = space.build(arch, seed=8).state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), "seeded builds must be identical"
    assert not all(torch.equal(a[k], c[k]) for k in a), "different seeds must give different weights"
    state = torch.random.get_rng_state()
    model = space.build(arch, seed=7)
    assert torch.equal(state, torch.random.get_rng_state()), "a seeded build must not move the global RNG"
    assert not model.training, "build() must return an eval-mode module"
    with torch.no_grad():
        out = model(torch.zeros(*space.input_shape))
    assert out.shape[0] == space.input_shape[0], "output batch must match the input batch"


def check_predictor(
    predictor_factory: Callable[[], Any],
    X: Any = None,
    y: Any = None,
    *,
    round_trip: Callable[[Any, Path], Any] | None = None,
) -> None:
    """Contract of a latency predictor (scikit-learn style) on ``X``, ``y`` (default: a seeded additive law).

    ``predictor_factory()`` (a class or a function) must give an unfitted
    predictor with fixed parameters, its seed included, so two of them fit
    the same model. ``round_trip(predictor, directory) -> predictor`` saves
    and loads one (e.g. with ``predictors.persistence``; the core does not
    import predictors); without it, the predictor's own ``save(directory)``
    and ``load(directory)`` class method are used.
    """
    import tempfile

    import numpy as np

    from hwprof.errors import DataError, NotFittedError

    if X is None or y is None:
        rng = np.random.default_rng(0)
        X = rng.integers(0, 2, size=(60, 6)).astype(np.float64)
        y = 1.0 + X @ np.linspace(0.5, 3.0, X.shape[1])
    X, y = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64)
    predictor = predictor_factory()
    owner = type(predictor).__name__
    _check_init_only_stores_params(predictor, owner)
    try:
        predictor.predict(X)
    except NotFittedError:
        pass
    else:
        raise AssertionError(f"{owner}.predict before fit must raise NotFittedError")
    params = predictor.get_params()
    assert predictor.fit(X, y) is predictor, f"{owner}.fit must return self"
    assert _same_params(predictor.get_params(), params), f"{owner}.fit must not change its parameters"
    pred = np.asarray(predictor.predict(X))
    assert pred.shape == (X.shape[0],), f"{owner}.predict must return shape ({X.shape[0]},), got {pred.shape}"
    assert np.all(np.isfinite(pred)), f"{owner}.predict must return finite latencies"
    again = np.asarray(predictor_factory().fit(X, y).predict(X))
    assert np.array_equal(pred, again), f"{owner} must fit the same model twice from the same parameters and data (fix its seed)"
    for bad in (X[:, :-1], np.hstack([X, X[:, :1]])):
        try:
            predictor.predict(bad)
        except DataError:
            pass
        else:
            raise AssertionError(f"{owner}.predict must raise DataError for X of {bad.shape[1]} features (fitted on {X.shape[1]})")
    with tempfile.TemporaryDirectory(prefix="hwprof-check-predictor-") as tmp:
        directory = Path(tmp) / "predictor"
        if round_trip is not None:
            loaded = round_trip(predictor, directory)
        else:
            assert callable(getattr(predictor, "save", None)) and callable(getattr(type(predictor), "load", None)), (
                f"{owner} has no save()/load(); pass round_trip=(predictor, directory) -> loaded predictor"
            )
            predictor.save(directory)
            loaded = type(predictor).load(directory)
        assert type(loaded) is type(predictor), f"loading a saved {owner} must give a {owner}, got {type(loaded).__name__}"
        assert _same_params(loaded.get_params(), params), f"a loaded {owner} must have the saved parameters"
        assert np.array_equal(np.asarray(loaded.predict(X)), pred), f"a loaded {owner} must predict exactly as the saved one"


def _check_init_only_stores_params(predictor: Any, owner: str) -> None:
    params = predictor.get_params()
    public = {k for k in vars(predictor) if not k.startswith("_")}
    extra = sorted(public - set(params))
    assert not extra, f"{owner}.__init__ must only store its parameters; it also sets {extra}"
    for name, value in params.items():
        assert getattr(predictor, name) is value, f"{owner}.get_params()[{name!r}] must be the attribute {name!r} itself"
    rebuilt = type(predictor)(**params)
    assert _same_params(rebuilt.get_params(), params), f"{owner}(**get_params()) must give the same parameters"
    assert predictor.set_params(**params) is predictor, f"{owner}.set_params must return self"
    try:
        predictor.set_params(__no_such_param__=1)
    except ConfigError as exc:
        assert "__no_such_param__" in str(exc), "ConfigError must name the unknown parameter"
    else:
        raise AssertionError(f"{owner}.set_params must raise ConfigError for an unknown parameter")


def _same_params(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a.keys() == b.keys() and all(a[k] is b[k] or a[k] == b[k] for k in a)
