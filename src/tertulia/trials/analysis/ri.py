"""Randomization inference: re-run the Assignment many times and see how unusual the real one is.

Assignments are re-drawn as the trial drew them: complete randomization within strata, keeping
each stratum's number of treated units (and whole clusters when clusters were randomized).
The statistic is the studentized treatment coefficient of the same ANCOVA regression (robust,
or cluster-robust when a cluster is given), which keeps the test valid for the average effect
under heteroskedasticity as well as for the sharp null (Young 2019; Wu & Ding 2021).

Vectorized: by Frisch–Waugh–Lovell the coefficient only needs the outcome and the assignment
residualized on the controls. The outcome is residualized once; all permuted assignments of a
chunk are residualized together with one matrix product against an orthonormal basis of the
controls, and every coefficient and standard error follows from column sums.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from tertulia.trials.analysis.estimate import cluster_codes

CHUNK = 250


@dataclass(frozen=True)
class RiProblem:
    """One outcome's regression, reduced to what the permutations need."""

    rows: np.ndarray  # positions of this outcome's sample in the randomized sample
    basis: np.ndarray  # orthonormal basis of the controls (constant, strata, covariates)
    y_resid: np.ndarray
    groups: sparse.csr_matrix | None  # cluster membership (clusters x rows), None = robust


def make_problem(
    y: np.ndarray,
    controls: np.ndarray,
    rows: np.ndarray,
    cluster: np.ndarray | None,
    *,
    basis: np.ndarray | None = None,
) -> RiProblem:
    """`basis` (orthonormal, spanning `controls`) can be passed when already computed."""
    if basis is None:
        basis, _ = np.linalg.qr(controls)
    y = np.asarray(y, dtype=float)
    y_resid = y - basis @ (basis.T @ y)
    groups = None
    if cluster is not None:
        # Codes need not be contiguous: an empty row of `groups` adds nothing to the meat.
        codes = cluster_codes(cluster)[0]
        groups = sparse.csr_matrix(
            (np.ones(codes.size), (codes, np.arange(codes.size))),
            shape=(codes.max() + 1, codes.size),
        )
    return RiProblem(rows=rows, basis=basis, y_resid=y_resid, groups=groups)


def t_statistics(
    problem: RiProblem, assignments: np.ndarray, work: np.ndarray | None = None
) -> np.ndarray:
    """Studentized coefficient for each column of `assignments` (rows = randomized sample).

    `work` (2 x at least n x columns, float64) is scratch space reused across calls: at a
    million rows, allocating fresh n x chunk arrays for every outcome and chunk cost more than
    the arithmetic (page faults), so every large intermediate is written into it in place.
    """
    n, columns = problem.rows.size, assignments.shape[1]
    if work is None:
        work = np.empty((2, n, columns))
    d, scratch = work[0, :n, :columns], work[1, :n, :columns]
    np.take(np.asarray(assignments, dtype=float), problem.rows, axis=0, out=d)
    np.matmul(problem.basis, problem.basis.T @ d, out=scratch)
    np.subtract(d, scratch, out=d)
    ss = np.einsum("ij,ij->j", d, d)
    beta = (d.T @ problem.y_resid) / ss
    np.multiply(d, beta[None, :], out=scratch)
    np.subtract(problem.y_resid[:, None], scratch, out=scratch)  # residuals
    score = np.multiply(d, scratch, out=scratch)
    if problem.groups is None:
        meat = np.einsum("ij,ij->j", score, score)
    else:
        summed = problem.groups @ score
        meat = np.einsum("ij,ij->j", summed, summed)
    return beta / np.sqrt(meat / ss**2)


def assignment_draws(
    treatment: np.ndarray,
    strata: np.ndarray,
    permutations: int,
    *,
    seed: int,
    unit: np.ndarray | None = None,
    chunk: int = CHUNK,
) -> Iterator[np.ndarray]:
    """Re-randomized assignments, (units x draws) per chunk, reproducible from the seed.

    With `unit` (cluster codes), whole units are permuted within strata and then broadcast to
    their members; the unit's stratum is its members' stratum.
    """
    rng = np.random.default_rng(seed)
    if unit is not None:
        first = np.unique(unit, return_index=True)[1]
        unit_treatment = treatment[first]
        unit_strata = strata[first]
    else:
        unit_treatment, unit_strata = treatment, strata
    order = np.argsort(unit_strata, kind="stable")
    base = unit_treatment[order].astype(np.float32)
    bounds = np.flatnonzero(np.diff(unit_strata[order])) + 1
    blocks = list(zip(np.r_[0, bounds], np.r_[bounds, base.size], strict=True))
    done = 0
    while done < permutations:
        size = min(chunk, permutations - done)
        draws = np.broadcast_to(base, (size, base.size)).copy()
        for start, stop in blocks:
            if stop - start > 1:
                draws[:, start:stop] = rng.permuted(draws[:, start:stop], axis=1)
        shuffled = np.empty_like(draws)
        shuffled[:, order] = draws
        if unit is not None:
            shuffled = shuffled[:, np.unique(unit, return_inverse=True)[1]]
        yield shuffled.T
        done += size


def ri_p_values(
    problems: list[RiProblem],
    treatment: np.ndarray,
    strata: np.ndarray,
    permutations: int,
    *,
    seed: int,
    unit: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two-sided p-values, observed t and the (draws x problems) null t's, for all outcomes.

    All outcomes see the same draws, which is what the Romano–Wolf step-down needs.
    p = (1 + #{|t*| >= |t|}) / (1 + draws), never zero (Phipson & Smyth 2010).
    """
    observed = np.array([t_statistics(p, treatment[:, None])[0] for p in problems])
    null = np.empty((permutations, len(problems)))
    filled = 0
    # Chunks sized so one chunk's matrices stay around a few hundred megabytes at any n.
    chunk = max(1, min(CHUNK, 20_000_000 // max(treatment.size, 1)))
    draws_iter = assignment_draws(
        treatment, strata, permutations, seed=seed, unit=unit, chunk=chunk
    )
    largest = max((p.rows.size for p in problems), default=1)
    work = np.empty((2, largest, min(chunk, permutations)))
    for draws in draws_iter:
        size = draws.shape[1]
        # float64 once per chunk, shared by every outcome (0/1, so exactly the same values).
        draws = np.ascontiguousarray(draws, dtype=float)
        for k, problem in enumerate(problems):
            null[filled : filled + size, k] = t_statistics(problem, draws, work)
        filled += size
    # A tolerance keeps draws equal to the observed assignment from losing ties to rounding.
    exceed = (np.abs(null) >= np.abs(observed)[None, :] - 1e-10).sum(axis=0)
    return (1 + exceed) / (1 + permutations), observed, null
