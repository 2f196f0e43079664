"""Latency predictors: features, models, metrics, few-shot transfer, persistence."""
