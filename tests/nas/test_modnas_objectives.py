"""How a MODNAS task turns its preference and two normalised objectives into one loss."""

import pytest
import torch

from hwprof.errors import ConfigError
from nas.search.modnas import ModnasConfig
from nas.search.modnas.objectives import CHEBYSHEV_AUGMENT, scalarise

# A front with a concave middle: B lies above the segment A-C, so no weighted sum ever prefers it.
A, B, C = (0.0, 1.0), (0.6, 0.6), (1.0, 0.0)
FRONT = torch.tensor([A, B, C])


def best(kind: str, preference: tuple[float, float]) -> int:
    return int(torch.argmin(scalarise(FRONT, torch.tensor(preference), kind)))


def test_weighted_sum_is_the_preference_dot_the_objectives():
    obj = torch.tensor([[0.2, 0.7], [0.5, 0.1]])
    pref = torch.tensor([0.3, 0.7])
    assert torch.allclose(scalarise(obj, pref, "weighted_sum"), obj @ pref)


@pytest.mark.parametrize("accuracy_weight", [0.45, 0.5, 0.55])
def test_chebyshev_reaches_the_concave_part_of_a_front_that_a_weighted_sum_skips(accuracy_weight):
    pref = (accuracy_weight, 1.0 - accuracy_weight)
    assert best("weighted_sum", pref) in (0, 2)
    assert best("chebyshev", pref) == 1


def test_chebyshev_value_is_the_largest_weighted_objective_plus_the_augmentation():
    obj = torch.tensor([0.2, 0.8])
    pref = torch.tensor([0.7, 0.3])
    expected = max(0.7 * 0.2, 0.3 * 0.8) + CHEBYSHEV_AUGMENT * 1.0
    assert float(scalarise(obj, pref, "chebyshev")) == pytest.approx(expected)


def test_augmentation_breaks_ties_towards_the_dominating_network():
    # With all weight on error, both networks have the same weighted maximum; the faster one must win.
    obj = torch.tensor([[0.2, 0.5], [0.2, 0.3]])
    assert int(torch.argmin(scalarise(obj, torch.tensor([1.0, 0.0]), "chebyshev"))) == 1


def test_scalarisation_broadcasts_over_tasks_and_samples():
    obj = torch.rand(4, 3, 2)
    pref = torch.rand(4, 1, 2)
    assert scalarise(obj, pref, "chebyshev").shape == (4, 3)


def test_unknown_scalarisation_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown scalarisation"):
        scalarise(FRONT, torch.tensor([0.5, 0.5]), "max")
    with pytest.raises(ConfigError, match="scalarisation must be one of"):
        ModnasConfig.create(str(tmp_path), scalarisation="max")
