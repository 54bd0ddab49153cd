"""The pruning core: masks, criteria, ID pruning, compaction, counting, schedules, cascades, I/O.

Knows no study, YAML or CLI. Everything here is re-exported explicitly; submodules hold the rest.
"""

from sciprune.core.cascade import CascadeSpec as CascadeSpec
from sciprune.core.cascade import Dense as Dense
from sciprune.core.cascade import run_cascade as run_cascade
from sciprune.core.cascade import train_dense as train_dense
from sciprune.core.compact import CSRMLP as CSRMLP
from sciprune.core.compact import compact as compact
from sciprune.core.compact import compact_with_indices as compact_with_indices
from sciprune.core.compact import to_csr as to_csr
from sciprune.core.count import count_params as count_params
from sciprune.core.count import dense_weights as dense_weights
from sciprune.core.count import flops as flops
from sciprune.core.count import network_stats as network_stats
from sciprune.core.count import layer_sparsity as layer_sparsity
from sciprune.core.count import mlp_flops as mlp_flops
from sciprune.core.criteria import Criterion as Criterion
from sciprune.core.criteria import available_criteria as available_criteria
from sciprune.core.criteria import get_criterion as get_criterion
from sciprune.core.criteria import register_criterion as register_criterion
from sciprune.core.idprune import PrunedMLPBatch as PrunedMLPBatch
from sciprune.core.idprune import id_prune as id_prune
from sciprune.core.idprune import id_prune_mlp as id_prune_mlp
from sciprune.core.idprune import interpolative_decomposition as interpolative_decomposition
from sciprune.core.io import load_checkpoint as load_checkpoint
from sciprune.core.io import build_model as build_model
from sciprune.core.io import load_model as load_model
from sciprune.core.io import register_family as register_family
from sciprune.core.io import save_checkpoint as save_checkpoint
from sciprune.core.masks import apply_masks as apply_masks
from sciprune.core.masks import enforce_masks as enforce_masks
from sciprune.core.masks import get_masks as get_masks
from sciprune.core.masks import import_torch_prune as import_torch_prune
from sciprune.core.masks import load_state_dict as load_state_dict
from sciprune.core.masks import mask_gradients as mask_gradients
from sciprune.core.masks import remove_masks as remove_masks
from sciprune.core.masks import set_mask as set_mask
from sciprune.core.pruning import layer_reports as layer_reports
from sciprune.core.pruning import prune as prune
from sciprune.core.schedule import explicit as explicit
from sciprune.core.schedule import geometric_linear as geometric_linear
from sciprune.core.schedule import named_schedule as named_schedule
from sciprune.core.schedule import polynomial as polynomial
from sciprune.core.seeding import derive_seed as derive_seed
from sciprune.core.seeding import torch_generator as torch_generator
from sciprune.core.units import NeuronGroup as NeuronGroup
from sciprune.core.units import PruningUnits as PruningUnits
from sciprune.core.units import Slice as Slice
from sciprune.core.units import WeightUnit as WeightUnit
from sciprune.core.units import units_of as units_of
from sciprune.core.traced import Traced as Traced
from sciprune.core.explain import Explanation as Explanation
from sciprune.core.explain import explain as explain
from sciprune.core.idtraced import id_prune_traced as id_prune_traced
