"""The conformance checks added for issue 13 catch the adapters they are meant to catch."""

from pathlib import Path

import pytest

from hwprof.artifacts import ArtifactCache
from hwprof.devices import PreparedModel
from hwprof.testing import check_device
from hwprof.types import Architecture
from tests.hwprof.plugins import TOY_INPUTS, ToyDevice, ToyExporter, toy_module


@pytest.fixture
def artifact(tmp_path):
    return ArtifactCache(tmp_path / "cache").get_or_export(Architecture("toy", "w8-d1"), lambda: toy_module(8), TOY_INPUTS, ToyExporter())


class ReadsWhatItCan(ToyDevice):
    """Loads a truncated file as an empty model instead of refusing it."""

    def prepare(self, artifact):
        try:
            return super().prepare(artifact)
        except Exception:
            if Path(artifact.path).name.startswith("truncated"):
                return PreparedModel(artifact, lambda: None)
            raise


class LoadsBeforeRefusing(ToyDevice):
    """Loads the model, then finds out it cannot run its precision."""

    def _check_format(self, artifact):
        if artifact.format not in self.supported_formats:
            super()._check_format(artifact)

    def prepare(self, artifact):
        handle = super().prepare(artifact)
        self.check_precision(artifact.precision)
        return handle


class SlowsDown(ToyDevice):
    """Each load makes the model ten times bigger: the second measurement of the same file is not like the first."""

    loads = 0

    def prepare(self, artifact):
        n = super().prepare(artifact).state  # refuses bad files like the toy device
        type(self).loads += 1
        n *= 10 ** min(type(self).loads, 4)
        return PreparedModel(artifact, lambda: sum(range(n)))


def test_the_toy_device_passes(artifact, tmp_path):
    check_device(ToyDevice, artifact, tmp_path)


def test_a_truncated_file_must_be_refused(artifact, tmp_path):
    with pytest.raises(AssertionError, match="truncated model file must raise ModelRunError"):
        check_device(ReadsWhatItCan, artifact, tmp_path)


def test_an_unsupported_precision_must_be_refused_before_loading(artifact, tmp_path):
    with pytest.raises(AssertionError, match="refused before any model is loaded"):
        check_device(LoadsBeforeRefusing, artifact, tmp_path)


def test_measurements_of_the_same_model_must_agree(artifact, tmp_path):
    SlowsDown.loads = 0
    with pytest.raises(AssertionError, match="must agree within a factor 3"):
        check_device(SlowsDown, artifact, tmp_path)
