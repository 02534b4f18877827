"""bayeslift: per-customer spend uplift from a Bayesian causal model and a fast PyTorch surrogate."""
import logging

__version__ = "0.1.0"

logging.getLogger("bayeslift").addHandler(logging.NullHandler())
