"""Network families that sciprune prunes."""

from sciprune.nn.mlp import ACTIVATIONS as ACTIVATIONS
from sciprune.nn.mlp import MLP as MLP
from sciprune.nn.mlp import get_activation as get_activation
