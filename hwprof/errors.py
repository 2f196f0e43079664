"""One exception root; the CLI turns any HwprofError into one line and exit code 1."""


class HwprofError(Exception):
    """Root of every error hwprof raises on purpose."""


class ConfigError(HwprofError):
    """Invalid option values or combinations given by the user."""


class UnknownNameError(HwprofError):
    """A device, space, predictor or other registered name that does not exist."""


class InvalidArchitecture(HwprofError):
    """An architecture string or choice vector that does not belong to its space."""


class DeviceUnavailable(HwprofError):
    """The device adapter cannot run here; the message says why."""


class ExportError(HwprofError):
    """A model could not be exported or the exported file failed validation."""


class ModelRunError(HwprofError):
    """A runtime failed to load or execute an exported model."""


class StoreError(HwprofError):
    """The measurement database is unusable (corrupt, foreign, newer schema, unwritable)."""


class StoreBusy(StoreError):
    """Another connection held the store's write lock past the busy timeout; retrying later may succeed."""


class RunInProgress(HwprofError):
    """A live process is already profiling the same device with the same settings into the same store."""


class DataError(HwprofError):
    """Input data (CSV, samples, latencies) is malformed or insufficient."""


class NotFittedError(HwprofError):
    """A predictor or model was used before fit()/train()."""


class PersistenceError(HwprofError):
    """A saved predictor/model directory is missing, stale or incompatible."""


class SearchError(HwprofError):
    """A search cannot run as configured (infeasible constraint, budget too small...)."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (or its type name): for one-line errors."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
