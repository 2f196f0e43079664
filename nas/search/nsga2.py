"""NSGA-II (Deb et al. 2002) through pymoo, on one integer variable per layer.

pymoo drives the evolution (ask/tell); every individual goes through the
shared ``SearchProblem``, so duplicates cost nothing and the budget is the
number of unique accuracy evaluations. Objectives: -accuracy and every cost
(minimised); constraints become pymoo inequality constraints (G <= 0).
Individuals that break a constraint are not evaluated: their costs already
rank them behind every feasible one (constraint-domination), and their
accuracy is recorded as 0 for pymoo only. On a partial lookup table the
first population is drawn from the table and the repair projects every
offspring onto its nearest table architecture.
"""

from __future__ import annotations

import numpy as np

from hwprof.errors import ConfigError
from nas.search.base import SearchProblem


def _operators(search: SearchProblem):
    from pymoo.core.mutation import Mutation
    from pymoo.core.repair import Repair

    upper = np.asarray(search.sizes) - 1

    class ChoiceRepair(Repair):
        """Round and clip every variable to a valid option index (and onto the domain of a partial table)."""

        def _do(self, problem, X, **kwargs):
            X = np.clip(np.rint(np.asarray(X, dtype=np.float64)), 0, upper).astype(np.int64)
            if search.domain is not None:
                X = np.array([search.project(tuple(int(v) for v in row)) for row in X], dtype=np.int64)
            return X

    class OneLayerChoiceMutation(Mutation):
        """Each layer, with probability 1/L, switches to a different option chosen uniformly."""

        def _do(self, problem, X, random_state=None, **kwargs):
            X = np.asarray(X, dtype=np.int64).copy()
            n, L = X.shape
            hit = random_state.random((n, L)) < 1.0 / L
            for i, j in zip(*np.nonzero(hit)):
                if upper[j] > 0:
                    o = int(random_state.integers(upper[j]))
                    X[i, j] = o if o < X[i, j] else o + 1
            return X

    return ChoiceRepair(), OneLayerChoiceMutation()


def run(problem: SearchProblem, rng: np.random.Generator, *, population_size: int = 20, max_stale_generations: int = 200) -> str:
    from pymoo.algorithms.moo.nsga2 import NSGA2
    from pymoo.core.evaluator import Evaluator
    from pymoo.core.problem import Problem
    from pymoo.operators.crossover.ux import UniformCrossover
    from pymoo.operators.sampling.rnd import IntegerRandomSampling
    from pymoo.problems.static import StaticProblem

    if population_size < 2:
        raise ConfigError(f"nsga2 needs population_size >= 2, got {population_size}")
    sizes = problem.sizes
    sampling = IntegerRandomSampling()
    if problem.domain is not None:
        from pymoo.core.sampling import Sampling

        class DomainSampling(Sampling):
            """The first population from the table's architectures (random ones would all be projected)."""

            def _do(self, moo_problem, n_samples, *args, random_state=None, **kwargs):
                rows = random_state.choice(len(problem.domain), size=min(n_samples, len(problem.domain)), replace=False)
                return problem.domain[rows]

        sampling = DomainSampling()
    n_obj = 1 + len(problem.costs)
    n_con = len(problem.constraints)
    moo = Problem(n_var=len(sizes), n_obj=n_obj, n_ieq_constr=n_con, xl=np.zeros(len(sizes)), xu=np.asarray(sizes) - 1, vtype=int)
    repair, mutation = _operators(problem)
    algo = NSGA2(
        pop_size=population_size,
        sampling=sampling,
        crossover=UniformCrossover(repair=repair),
        mutation=mutation,
        repair=repair,
        eliminate_duplicates=True,
    )
    algo.setup(moo, termination=("n_gen", 10**9), seed=int(rng.integers(2**31 - 1)), verbose=False)
    stale = 0
    while stale < max_stale_generations:
        pop = algo.ask()
        X = np.asarray(pop.get("X"), dtype=np.int64)
        F = np.zeros((len(X), n_obj))
        G = np.zeros((len(X), n_con))
        before = problem.n_evaluations
        for i, row in enumerate(X):
            c = tuple(int(v) for v in row)
            costs = problem.cost_vector(c)
            F[i, 1:] = costs
            if n_con:
                G[i] = [costs[j] - con.max_value for con, j in zip(problem.constraints, problem.constraint_columns)]
            if problem.feasible(c):
                F[i, 0] = -problem.evaluate(c)  # BudgetExhausted ends the search here
        F[~np.isfinite(F)] = np.finfo(np.float64).max / 1e6
        Evaluator().eval(StaticProblem(moo, F=F, G=G), pop)
        algo.tell(infills=pop)
        stale = stale + 1 if problem.n_evaluations == before else 0
    return f"no new architecture in {max_stale_generations} generations"
