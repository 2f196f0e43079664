"""What a predictor may need to know about architectures beyond their spec strings.

Most predictors featurize spec strings and ignore this. Predictors that work
on exported graphs (``ops``) need the search space to build networks, an
artifact cache to export them into, and the device (name and settings) whose
measurements they learn from; the training workflow and search costs pass it
to :meth:`predictors.base.Predictor.fit_archs` / ``predict_archs``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping


@dataclass(frozen=True)
class ArchContext:
    space: str  # registered space name, e.g. "nb201"
    device: str | None = None  # registered device name the latencies were measured on
    device_settings: Mapping[str, Any] = field(default_factory=dict)
    cache_dir: str | None = None  # artifact cache (default: ./.hwprof-cache)
    options: Mapping[str, Any] = field(default_factory=dict)  # predictor-specific, e.g. {"node_runs": 20}
