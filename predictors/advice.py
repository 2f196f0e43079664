"""Which predictor for how many measured networks: the advice ``hwprof train`` and the quickstart give.

The sizes come from ``benchmarks/few_networks.py`` (results in
``benchmarks/results/few_networks.json``, table in docs/predictors.md): on this
project's own ort-cpu profiles of NAS-Bench-201, with 100 held-out networks
and 5 seeds, each model trained from scratch ranked the held-out networks
clearly worse below these sizes than few-shot adaptation of the bundled
21-device table (``hwprof adapt``) did from 10 measurements; above them it
comes within a few hundredths. Measured on one machine and one space: a
warning, never a refusal.
"""

from __future__ import annotations

# model -> training networks below which a from-scratch model trails few-shot adaptation by a wide margin
FEW_NETWORKS = {"gbdt": 50, "linear": 50, "mlp": 150}
ADAPT_SPACES = ("nb201", "fbnet")  # spaces with a bundled multi-device table to adapt from


def few_networks_warning(model: str, n_train: int, space: str | None) -> str | None:
    """One line when ``n_train`` networks are too few for ``model`` (None when enough or not known for it)."""
    need = FEW_NETWORKS.get(model)
    if need is None or n_train >= need:
        return None
    line = (
        f"{model} trained on {n_train} networks: below {need} it ranks held-out networks poorly "
        f"(benchmarks/few_networks.py); profile more (`hwprof profile -n {max(2 * need, 200)}`)"
    )
    if space in ADAPT_SPACES:
        line += f", or adapt the bundled {space} device table to these measurements (`hwprof adapt`, docs/predictors.md)"
    return line
