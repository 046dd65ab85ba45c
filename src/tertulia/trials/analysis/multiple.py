"""Multiple-testing adjustments within an outcome family.

Sharpened FDR q-values follow Anderson (2008, JASA 103:1481), section 3.3, which applies the
two-stage step-up procedure of Benjamini, Krieger and Yekutieli (2006, Biometrika 93:491) over a
grid of q and reports for each hypothesis the smallest q at which it is rejected — exactly what
Anderson's published Stata code does (q from 1 down to 0.001 in steps of 0.001).

Romano–Wolf step-down p-values (Romano & Wolf 2005, Econometrica 73:1237) use the joint
re-randomization distribution of the outcomes' t statistics from `ri.py`, so the dependence
between outcomes is the one induced by the design.
"""

from __future__ import annotations

import numpy as np

GRID_STEP = 0.001


def bky_rejections(p: np.ndarray, q: float) -> np.ndarray:
    """Which hypotheses the BKY (2006) two-stage procedure rejects at level q."""
    p = np.asarray(p, dtype=float)
    m = p.size
    order = np.argsort(p, kind="stable")
    ranks = np.arange(1, m + 1)
    q1 = q / (1 + q)
    first = np.flatnonzero(p[order] <= q1 * ranks / m)
    r1 = int(first[-1]) + 1 if first.size else 0
    rejected = np.zeros(m, dtype=bool)
    if r1 == m:
        rejected[:] = True
        return rejected
    q2 = q1 * m / (m - r1)
    second = np.flatnonzero(p[order] <= q2 * ranks / m)
    r2 = int(second[-1]) + 1 if second.size else 0
    rejected[order[:r2]] = True
    return rejected


def sharpened_q_values(p: list[float] | np.ndarray) -> np.ndarray:
    """Anderson's (2008) sharpened q-value for each p-value (same order as given)."""
    p = np.asarray(p, dtype=float)
    if p.size == 0:
        return p.copy()
    if np.isnan(p).any():
        raise ValueError("sharpened q-values need every p-value; drop the missing ones first")
    grid = np.round(np.arange(1.0, 0.0, -GRID_STEP), 3)
    q_values = np.ones_like(p)
    for q in grid:
        rejected = bky_rejections(p, float(q))
        q_values[rejected] = q
    return q_values


def romano_wolf(t_observed: np.ndarray, t_null: np.ndarray) -> np.ndarray:
    """Romano–Wolf step-down p-values from observed |t| (k,) and null draws (draws, k)."""
    t_observed = np.abs(np.asarray(t_observed, dtype=float))
    t_null = np.abs(np.asarray(t_null, dtype=float))
    k = t_observed.size
    draws = t_null.shape[0]
    order = np.argsort(-t_observed, kind="stable")
    adjusted = np.empty(k)
    running = 0.0
    for step, j in enumerate(order):
        remaining = order[step:]
        max_null = t_null[:, remaining].max(axis=1)
        p = (1 + np.count_nonzero(max_null >= t_observed[j])) / (draws + 1)
        running = max(running, p)
        adjusted[j] = running
    return adjusted
