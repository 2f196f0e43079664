"""Regularized (aging) evolution, Real et al. 2019 (AmoebaNet).

A population of ``population_size`` evaluated architectures; each cycle draws
``sample_size`` of them at random, mutates the best one (one layer set to a
different option) and adds the child while the oldest member dies. Infeasible
mutants are redrawn without being evaluated (costs are free), and so, up to
``mutation_tries`` draws, are mutants evaluated before: with a cache they
would cost nothing and only age the population into copies of one model. In
multi-objective mode the parent is a random non-dominated member of the sample
(accuracy up, costs down), so the population spreads along the trade-off.
On a partial lookup table a mutant is projected onto the nearest table
architecture with the mutated layer's new option (``SearchProblem.project``).
"""

from __future__ import annotations

from collections import deque

import numpy as np

from hwprof.errors import ConfigError
from nas.pareto import pareto_mask
from nas.search.base import Choices, SearchProblem
from nas.search.random_search import feasible_draws


def mutate(parent: Choices, sizes: tuple[int, ...], rng: np.random.Generator) -> Choices:
    """``parent`` with one uniformly chosen layer set to a different uniformly chosen option."""
    mutable = [i for i, s in enumerate(sizes) if s > 1]
    i = mutable[int(rng.integers(len(mutable)))]
    o = int(rng.integers(sizes[i] - 1))
    child = list(parent)
    child[i] = o if o < parent[i] else o + 1
    return tuple(child)


def run(
    problem: SearchProblem,
    rng: np.random.Generator,
    *,
    population_size: int = 20,
    sample_size: int = 5,
    mutation_tries: int = 50,
    max_stale_cycles: int = 10_000,
) -> str:
    if not 2 <= sample_size <= population_size:
        raise ConfigError(f"evolution needs 2 <= sample_size <= population_size, got {sample_size} and {population_size}")
    if all(s == 1 for s in problem.sizes):
        return "the space has a single architecture"
    population: deque[tuple[Choices, float]] = deque()
    for c in feasible_draws(problem, rng, 20_000):
        population.append((c, problem.evaluate(c)))
        if len(population) == population_size:
            break
    if len(population) < sample_size:
        return f"only {len(population)} feasible architectures found for the initial population"
    stale = 0
    while stale < max_stale_cycles:
        idx = rng.choice(len(population), size=sample_size, replace=False)
        sample = [population[i] for i in idx]
        if problem.multi_objective:
            pts = np.array([[acc, *problem.cost_vector(c)] for c, acc in sample])
            front = np.flatnonzero(pareto_mask(pts, ["max"] + ["min"] * (pts.shape[1] - 1)))
            parent = sample[int(front[rng.integers(front.size)])][0]
        else:
            parent = max(sample, key=lambda t: t[1])[0]
        child = None
        for _ in range(mutation_tries):
            cand = mutate(parent, problem.sizes, rng)
            if problem.domain is not None:
                layer = next(i for i, (a, b) in enumerate(zip(parent, cand)) if a != b)
                cand = problem.project(cand, keep=layer)
                if cand is None or cand == parent:
                    continue
            if problem.feasible(cand):
                child = cand
                if not problem.is_evaluated(cand):
                    break
        if child is None:
            stale += 1
            continue
        stale = 0 if not problem.is_evaluated(child) else stale + 1
        population.append((child, problem.evaluate(child)))
        population.popleft()
    return f"no new architecture in {max_stale_cycles} cycles"
