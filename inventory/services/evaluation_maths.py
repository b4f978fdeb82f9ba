"""The arithmetic of supplier evaluation (供应商评价), on numpy: weights by expert input, by the
entropy method or by AHP (with its consistency ratio checked), and scores by linear weighting or
TOPSIS. Pure functions over arrays: the evaluation service (indicator sets, computed and entered
indicators, complaints, reports) is to be built on them.

Conventions: a decision matrix has one row per alternative (supplier) and one column per indicator;
`benefit[j]` is True when more is better (on-time rate) and False when less is better (price,
complaints). Weights are normalised to sum to 1.
"""
from collections.abc import Sequence

import numpy as np

from inventory.errors import Refusal, Refused

# Saaty's random consistency index by matrix order (1–10).
RANDOM_INDEX = (0.0, 0.0, 0.58, 0.90, 1.12, 1.24, 1.32, 1.41, 1.45, 1.49)
CR_LIMIT = 0.1


def normalised_weights(weights: Sequence[float]) -> np.ndarray:
    """Expert weights as given, scaled to sum to 1 (refused when negative or all zero)."""
    array = np.asarray(weights, dtype=float)
    if array.ndim != 1 or array.size == 0 or (array < 0).any() or array.sum() <= 0:
        raise Refused(Refusal.INVALID_REQUEST, detail="weights must be non-negative and not all zero")
    return array / array.sum()


def entropy_weights(matrix: Sequence[Sequence[float]]) -> np.ndarray:
    """Weights by the entropy method: an indicator that tells the suppliers apart more weighs more.

    p_ij = x_ij / Σ_i x_ij; e_j = −Σ_i p_ij ln p_ij / ln m; d_j = 1 − e_j; w_j = d_j / Σ d_j
    (0 · ln 0 taken as 0). Values must be non-negative (normalise cost indicators first)."""
    x = _matrix(matrix)
    if (x < 0).any():
        raise Refused(Refusal.INVALID_REQUEST, detail="the entropy method needs non-negative values")
    m = x.shape[0]
    if m < 2:
        raise Refused(Refusal.INVALID_REQUEST, detail="the entropy method needs at least two alternatives")
    totals = x.sum(axis=0)
    p = np.divide(x, totals, out=np.zeros_like(x), where=totals > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p), 0.0)
    entropy = -terms.sum(axis=0) / np.log(m)
    diversity = 1 - entropy
    if diversity.sum() <= 0:
        return np.full(x.shape[1], 1 / x.shape[1])
    return diversity / diversity.sum()


def ahp_weights(pairwise: Sequence[Sequence[float]]) -> tuple[np.ndarray, float]:
    """Weights from a pairwise comparison matrix (Saaty's 1–9 scale) by its principal eigenvector,
    and the consistency ratio CR = ((λmax − n) / (n − 1)) / RI(n). Refused (AHP_INCONSISTENT, with
    the CR) when CR ≥ 0.1, and when the matrix is not square, positive and reciprocal."""
    a = _matrix(pairwise)
    n = a.shape[0]
    if a.shape != (n, n) or not 1 <= n <= len(RANDOM_INDEX) or (a <= 0).any() or not np.allclose(a * a.T, 1, atol=1e-6):
        raise Refused(Refusal.INVALID_REQUEST, detail="a pairwise matrix is square (≤ 10), positive and reciprocal")
    eigenvalues, eigenvectors = np.linalg.eig(a)
    principal = int(np.argmax(eigenvalues.real))
    vector = np.abs(eigenvectors[:, principal].real)
    weights = vector / vector.sum()
    lambda_max = float(eigenvalues[principal].real)
    ratio = 0.0 if n <= 2 else ((lambda_max - n) / (n - 1)) / RANDOM_INDEX[n - 1]
    if ratio >= CR_LIMIT:
        raise Refused(Refusal.AHP_INCONSISTENT, cr=f"{ratio:.3f}", limit=CR_LIMIT)
    return weights, ratio


def linear_scores(matrix: Sequence[Sequence[float]], weights: Sequence[float], benefit: Sequence[bool]) -> np.ndarray:
    """Linear weighting: each indicator scaled to 0–1 over the alternatives (min–max; reversed for
    cost indicators; 1 when all are equal), then the weighted sum."""
    x = _matrix(matrix)
    w = _weights_for(x, weights)
    low, high = x.min(axis=0), x.max(axis=0)
    span = np.where(high > low, high - low, 1.0)
    scaled = np.where(np.asarray(benefit), (x - low) / span, (high - x) / span)
    scaled = np.where(high > low, scaled, 1.0)
    return scaled @ w


def topsis(
    matrix: Sequence[Sequence[float]], weights: Sequence[float], benefit: Sequence[bool]
) -> tuple[np.ndarray, np.ndarray]:
    """TOPSIS (Hwang & Yoon): vector-normalise, weight, measure the distance to the ideal and the
    anti-ideal alternative; returns (closeness C_i in 0–1, the weighted normalised matrix)."""
    x = _matrix(matrix)
    w = _weights_for(x, weights)
    norms = np.sqrt((x ** 2).sum(axis=0))
    v = np.divide(x, norms, out=np.zeros_like(x), where=norms > 0) * w
    benefit_mask = np.asarray(benefit)
    ideal = np.where(benefit_mask, v.max(axis=0), v.min(axis=0))
    anti = np.where(benefit_mask, v.min(axis=0), v.max(axis=0))
    to_ideal = np.sqrt(((v - ideal) ** 2).sum(axis=1))
    to_anti = np.sqrt(((v - anti) ** 2).sum(axis=1))
    total = to_ideal + to_anti
    closeness = np.divide(to_anti, total, out=np.full(total.shape, 0.5), where=total > 0)
    return closeness, v


def _matrix(values: Sequence[Sequence[float]]) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 2 or 0 in array.shape or not np.isfinite(array).all():
        raise Refused(Refusal.INVALID_REQUEST, detail="a matrix of finite numbers is needed")
    return array


def _weights_for(x: np.ndarray, weights: Sequence[float]) -> np.ndarray:
    w = normalised_weights(weights)
    if w.size != x.shape[1]:
        raise Refused(Refusal.INVALID_REQUEST, detail="one weight per indicator")
    return w
