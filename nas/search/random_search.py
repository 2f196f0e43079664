"""Random search: uniform over the feasible architectures not evaluated yet.

Costs are free, so candidates that break a constraint are rejected before
their accuracy is evaluated (a stronger baseline than sampling blindly).
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from nas.search.base import Choices, SearchProblem


def feasible_draws(problem: SearchProblem, rng: np.random.Generator, max_misses: int) -> Iterator[Choices]:
    """Uniform random feasible, not yet evaluated choices; stops after ``max_misses`` draws in a row find none.

    With a domain (a partial lookup table) the draws are its architectures in a
    random order, and the stream ends when every one has been offered.
    """
    if problem.domain is not None:
        for i in rng.permutation(len(problem.domain)):
            c = tuple(int(x) for x in problem.domain[i])
            if not problem.is_evaluated(c) and problem.feasible(c):
                yield c
        return
    sizes = np.asarray(problem.sizes)
    misses = 0
    while misses < max_misses:
        block = rng.integers(0, sizes, size=(256, sizes.size))
        for row in block:
            c = tuple(int(x) for x in row)
            if problem.is_evaluated(c) or not problem.feasible(c):
                misses += 1
                if misses >= max_misses:
                    return
                continue
            misses = 0
            yield c


def run(problem: SearchProblem, rng: np.random.Generator, *, max_misses: int = 20_000) -> str:
    for c in feasible_draws(problem, rng, max_misses):
        problem.evaluate(c)
    if problem.domain is not None:
        return "every feasible architecture of the lookup table is evaluated"
    return f"no new feasible architecture in {max_misses} random draws"
