"""Search spaces, cost models, accuracy evaluators, search algorithms, Pareto/hypervolume."""
