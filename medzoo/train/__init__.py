"""Training: `fit` into a resumable run folder, callbacks, strategies, configuration."""

from medzoo.train.batchnorm import recompute_batchnorm_statistics
from medzoo.train.callbacks import StochasticWeightAveraging
from medzoo.train.config import DEFAULTS, resolve_config
from medzoo.train.fit import fit, make_optimizer
from medzoo.train.strategy import choose_strategy

__all__ = [
    "DEFAULTS",
    "StochasticWeightAveraging",
    "choose_strategy",
    "fit",
    "make_optimizer",
    "recompute_batchnorm_statistics",
    "resolve_config",
]
