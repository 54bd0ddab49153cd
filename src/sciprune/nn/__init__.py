"""Network families that sciprune prunes; importing this package registers each with ``core.io``."""

from sciprune.nn.mlp import ACTIVATIONS as ACTIVATIONS
from sciprune.nn.mlp import MLP as MLP
from sciprune.nn.mlp import get_activation as get_activation
from sciprune.nn.stacked import StackedMLP as StackedMLP
from sciprune.nn.odefield import ConcatField as ConcatField
from sciprune.nn.odefield import ConcatSquashField as ConcatSquashField
from sciprune.nn.hypernet import ShapeNetLayout as ShapeNetLayout
