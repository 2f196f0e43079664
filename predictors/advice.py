"""Which predictor for how many measured networks: the advice ``hwprof train`` and the quickstart give.

The sizes come from ``benchmarks/few_networks.py`` (results in
``benchmarks/results/few_networks.json``, table in docs/predictors.md): on this
project's own ort-cpu profiles of NAS-Bench-201, with 100 held-out networks
and 5 seeds, few-shot adaptation of the bundled 21-device table
(``hwprof adapt``) reached a held-out Spearman of 0.98 from 10 measurements;
below these sizes each model trained from scratch stayed under 0.95 (GBDT
0.82 from 10, 0.92 from 50, 0.95 from 100; MLP 0.91 from 100, 0.94 from 150;
one-hot linear never above 0.94). Measured on one machine and one space: a
warning, never a refusal.
"""

from __future__ import annotations

# model -> training networks below which a from-scratch model trails few-shot adaptation by a wide margin
FEW_NETWORKS = {"gbdt": 100, "linear": 100, "mlp": 150}
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
