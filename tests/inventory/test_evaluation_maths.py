"""Supplier-evaluation maths against published worked examples: Saaty's 3×3 AHP example (weights
0.637 / 0.258 / 0.105, λmax 3.039, CR 0.033), an inconsistent matrix refused with its CR, the TOPSIS
example of Sennaroğlu's Decision Analysis notes (weights 0.714 / 0.286, alternatives (17, 12),
(10, 9), (8, 6): weighted normalised matrix 0.5703 0.2124 / 0.3355 0.1593 / 0.2684 0.1062), and the
entropy and linear-weighting definitions."""
import math

import numpy as np
import pytest

from inventory.errors import Refused
from inventory.services.evaluation_maths import ahp_weights, entropy_weights, linear_scores, topsis


def test_ahp_of_saatys_worked_example():
    weights, cr = ahp_weights([[1, 3, 5], [1 / 3, 1, 3], [1 / 5, 1 / 3, 1]])

    assert np.round(weights, 3).tolist() == [0.637, 0.258, 0.105]
    assert round(cr, 3) == 0.033


def test_ahp_with_cr_over_a_tenth_is_refused_showing_the_cr():
    cyclic = [[1, 9, 1 / 9], [1 / 9, 1, 9], [9, 1 / 9, 1]]  # A ≫ B ≫ C ≫ A

    with pytest.raises(Refused) as refused:
        ahp_weights(cyclic)

    assert refused.value.code == "AHP_INCONSISTENT"
    assert "CR = " in refused.value.detail and float(refused.value.problems[0].params["cr"]) >= 0.1


def test_ahp_refuses_a_matrix_that_is_not_reciprocal():
    with pytest.raises(Refused) as refused:
        ahp_weights([[1, 3], [3, 1]])
    assert refused.value.code == "INVALID_REQUEST"


def test_topsis_of_the_published_example():
    closeness, weighted = topsis([[17, 12], [10, 9], [8, 6]], [0.714, 0.286], [True, True])

    assert np.round(weighted, 4).tolist() == [[0.5703, 0.2124], [0.3355, 0.1593], [0.2684, 0.1062]]
    assert closeness[0] == pytest.approx(1.0) and closeness[2] == pytest.approx(0.0)
    assert closeness[1] == pytest.approx(0.2623, abs=1e-3)


def test_topsis_reverses_a_cost_indicator():
    # Same quality, different price: the cheaper supplier is the ideal one.
    closeness, _ = topsis([[90, 1200], [90, 1000]], [0.5, 0.5], [True, False])
    assert closeness.tolist() == pytest.approx([0.0, 1.0])


def test_entropy_weights_favour_the_indicator_that_tells_suppliers_apart():
    matrix = [[95, 10], [95, 50], [95, 90]]  # the first indicator is the same for everyone

    weights = entropy_weights(matrix)

    assert weights[0] == pytest.approx(0.0, abs=1e-12) and weights[1] == pytest.approx(1.0)
    p = np.array([10, 50, 90]) / 150
    expected_entropy = -(p * np.log(p)).sum() / math.log(3)
    assert 1 - expected_entropy > 0


def test_linear_weighting_scales_each_indicator_then_weights():
    scores = linear_scores([[100, 5], [80, 1], [90, 3]], [0.6, 0.4], [True, False])
    assert scores.tolist() == pytest.approx([0.6, 0.4, 0.5])
