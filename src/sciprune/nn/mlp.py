"""The multilayer perceptron every study and the ID / compaction code understand.

``MLP(sizes, activation)`` is a chain of ``nn.Linear`` layers ``layers[0..L-1]``; layer ``i`` maps
``sizes[i] -> sizes[i+1]`` and is followed by ``activations[i]`` (the last one is ``"identity"``
unless ``output_activation`` says otherwise). Activations are stored by name so an MLP can be
rebuilt from a checkpoint's metadata without unpickling code.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from sciprune.core import (
    ACTIVATIONS as ACTIVATIONS, MLPLike, PruningUnits, chain_units, compact_state,
    get_activation as get_activation, load_state_dict, register_family,
)
from sciprune.errors import InputError

class MLP(MLPLike):
    """``x -> act_{L-1}(W_{L-1} ... act_0(W_0 x + b_0) ... + b_{L-1})``.

    Args:
        sizes: layer widths ``[d_in, h_1, ..., h_{L-1}, d_out]`` (at least two entries).
        activation: hidden activation name (see :data:`ACTIVATIONS`), or one name per layer.
        output_activation: activation of the last layer (default ``"identity"``).
        generator: required: the source of the initial weights (PyTorch's default ``nn.Linear``
            scheme, uniform in ``±1/sqrt(fan_in)``, layer by layer, weight then bias); ``None``
            only where the weights are loaded next (zeros: :meth:`from_arch`, :meth:`from_layers`).
    """

    def __init__(
        self,
        sizes: Sequence[int],
        activation: str | Sequence[str] = "relu",
        *,
        output_activation: str = "identity",
        generator: torch.Generator | None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2 or min(sizes) < 1:
            raise InputError(f"MLP sizes must be >= 2 positive widths; got {sizes}")
        n = len(sizes) - 1
        if isinstance(activation, str):
            acts = [activation] * (n - 1) + [output_activation]
        else:
            acts = list(activation)
            if len(acts) != n:
                raise InputError(f"need {n} activations for sizes {sizes}; got {len(acts)}: {acts}")
        self._fns = [get_activation(a) for a in acts]  # validates the names
        self.sizes: list[int] = sizes
        self.activations: list[str] = acts
        # nn.Linear initialises from the global RNG: fork it so constructing an MLP leaves the
        # caller's random stream untouched, then draw the real initial values from `generator`.
        with torch.random.fork_rng(devices=[]):
            self.layers = nn.ModuleList(nn.Linear(i, o, dtype=dtype) for i, o in zip(sizes[:-1], sizes[1:]))
        with torch.no_grad():
            for layer in self.linears:
                bound = 1.0 / math.sqrt(layer.in_features)
                if generator is None:
                    layer.weight.zero_()
                    layer.bias.zero_()
                else:
                    layer.weight.uniform_(-bound, bound, generator=generator)
                    layer.bias.uniform_(-bound, bound, generator=generator)

    def forward(self, x: Tensor) -> Tensor:
        for layer, fn in zip(self.layers, self._fns):
            x = fn(layer(x))
        return x

    def hidden(self, x: Tensor) -> list[Tensor]:
        """Post-activation outputs of every hidden layer (``L-1`` tensors), then the output."""
        outs = []
        for layer, fn in zip(self.layers, self._fns):
            x = fn(layer(x))
            outs.append(x)
        return outs

    @property
    def arch(self) -> dict[str, object]:
        """JSON-able description from which :func:`MLP.from_arch` rebuilds the module."""
        return {"class": "MLP", "sizes": list(self.sizes), "activations": list(self.activations)}

    @classmethod
    def from_arch(cls, arch: dict[str, object], *, dtype: torch.dtype = torch.float32) -> "MLP":
        if arch.get("class") != "MLP":
            raise InputError(f"checkpoint architecture class {arch.get('class')!r}; expected 'MLP'")
        sizes = arch["sizes"]
        acts = arch["activations"]
        if not (isinstance(sizes, list) and isinstance(acts, list)):
            raise InputError(f"checkpoint architecture needs lists 'sizes' and 'activations'; got {arch}")
        return cls(sizes, acts, generator=None, dtype=dtype)

    @classmethod
    def from_layers(
        cls, weights: Sequence[Tensor], biases: Sequence[Tensor], activations: Sequence[str]
    ) -> "MLP":
        """An MLP holding copies of the given ``(out, in)`` weights and ``(out,)`` biases."""
        sizes = [int(weights[0].shape[1])] + [int(w.shape[0]) for w in weights]
        mlp = cls(sizes, list(activations), generator=None, dtype=weights[0].dtype).to(weights[0].device)
        with torch.no_grad():
            for layer, w, b in zip(mlp.linears, weights, biases):
                layer.weight.copy_(w)
                layer.bias.copy_(b)
        return mlp

    def pruning_units(self) -> PruningUnits:
        """Every weight matrix (layer ``layers.i``); every layer's neurons as a group (incoming row,
        bias, next layer's column folding into its bias), the output layer's group declared but not
        prunable by default (:func:`~sciprune.core._units.chain_units`)."""
        return chain_units(self.sizes, self.activations)

    def compact_units(self, keep: dict[str, Tensor]) -> "MLP":
        """A narrower MLP keeping, per hidden layer ``layers.i``, the neurons ``keep["layers.i"][0]``
        (see :func:`sciprune.core._shrink.compact_units`; :func:`sciprune.core._compact.compact` is the
        MLP-specific path that also folds non-zero biases of dead neurons)."""
        sd = compact_state(self, keep)
        sizes = [self.sizes[0]] + [
            int(keep[f"layers.{i}"].shape[1]) if f"layers.{i}" in keep else self.sizes[i + 1] for i in range(len(self.sizes) - 2)
        ] + [self.sizes[-1]]
        w = self.linears[0].weight
        small = MLP(sizes, self.activations, generator=None, dtype=w.dtype).to(w.device)
        load_state_dict(small, sd)
        return small

    def flops(self) -> int:
        """One forward for one sample: :math:`\\sum_l 2\\,\\mathrm{nnz}(W_l) + \\mathrm{nnz}(b_l)` (a
        multiply-add counts 2, a bias add 1, a zero bias (a pruned neuron's) none; activations free)."""
        return sum(2 * int((m.weight != 0).sum()) + int((m.bias != 0).sum()) for m in self.linears)

    def extra_repr(self) -> str:
        return f"sizes={self.sizes}, activations={self.activations}"


register_family("MLP", MLP.from_arch)
