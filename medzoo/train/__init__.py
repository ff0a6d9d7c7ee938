"""Training helpers."""

from medzoo.train.batchnorm import recompute_batchnorm_statistics

__all__ = ["recompute_batchnorm_statistics"]
