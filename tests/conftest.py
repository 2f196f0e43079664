"""Fixtures shared by every test package."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The team's benchmark folder (/work/shared/data next to the checkout); skips when absent."""
    path = Path(__file__).resolve().parents[2] / "shared" / "data"
    if not (path / "nb201.csv.gz").is_file():
        pytest.skip(f"shared benchmark data not found at {path} (expected nb201.csv.gz and fbnet.csv.gz there)")
    return path


def pytest_configure(config: pytest.Config) -> None:
    """One torch thread: on a 2-core CI box, intra-op threads fighting pytest make forward passes 50x slower.

    And Ctrl-C as Python's KeyboardInterrupt: a suite started in the background of a non-interactive shell
    (`bash .ci/run &`) inherits SIGINT *ignored*, which Python then keeps, and so would every worker and CLI
    subprocess the interrupt tests start (an ignored signal stays ignored across exec; a caught one does not).
    """
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency
        return
    torch.set_num_threads(1)
