"""A power log as an external meter's logging tool writes it: a header, then ``timestamp,watts`` rows, live."""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def constant_power_log(path: Path, watts: float, every_s: float = 0.02) -> Iterator[Path]:
    """Append a row of ``watts`` every ``every_s`` to ``path`` (for the csv meter) while the block runs."""
    path.write_text("timestamp,watts\n")
    stop = threading.Event()

    def write() -> None:
        while not stop.is_set():
            with open(path, "a") as fh:
                fh.write(f"{time.time():.6f},{watts}\n")
            time.sleep(every_s)

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    try:
        time.sleep(5 * every_s)  # a few samples before anything reads it
        yield path
    finally:
        stop.set()
        thread.join()
