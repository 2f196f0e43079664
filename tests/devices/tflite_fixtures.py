"""One real conversion per precision, shared by every TFLite test module of a session (a conversion takes seconds)."""

from __future__ import annotations

import pytest

_CONVERTED: dict = {}  # fixtures imported into several modules are several fixtures: convert once all the same


@pytest.fixture(scope="session", name="tflite_artifacts")
def tflite_artifacts_fixture(tmp_path_factory):
    """{precision: ModelArtifact} of the conformance network, written by the tflite exporter through check_exporter."""
    pytest.importorskip("litert_torch", reason="the tflite extra is not installed: pip install 'hwprof[tflite]'")
    if not _CONVERTED:
        from devices.export.tflite_export import TfliteExporter
        from hwprof.testing import check_exporter

        _CONVERTED.update(check_exporter(TfliteExporter, tmp_path_factory.mktemp("tflite")))
    return dict(_CONVERTED)
