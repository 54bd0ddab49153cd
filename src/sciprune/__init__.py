"""sciprune: pruning for scientific machine learning.

The public API: ``sciprune.core`` (masks, criteria, ID pruning, compaction, counting, schedules,
cascades, checkpoints) and ``sciprune.nn`` (the MLP). Studies live in ``sciprune.studies`` and are
run through ``sciprune.runner`` or the ``sciprune`` command.
"""

from sciprune.errors import InputError as InputError
from sciprune.nn.mlp import MLP as MLP

__version__ = "0.1.0"
