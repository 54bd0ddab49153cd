"""A zoo of networks users bring, written by hand for the tracer's tests (issue 16).

Every entry of :data:`ZOO` is ``name -> (factory, input shapes)``: ``factory(**kwargs)`` builds the
module with weights from ``torch.manual_seed``-free generators (``seed`` keyword), the shapes give
example inputs (batch first). Factories are importable as ``"tests.core.zoo:<name>"`` so checkpoints
of traced zoo models can be rebuilt. ``EXPECT_BLOCKED`` names the models whose channels are expected to
be (partly) unprunable and why.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn


def _init(model: nn.Module, seed: int) -> nn.Module:
    """Deterministic weights, and non-trivial norm parameters/statistics, from one generator."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            fan = p.shape[1] * (p[0, 0].numel() if p.dim() > 2 else 1) if p.dim() > 1 else max(1, p.shape[0])
            p.copy_((torch.rand(p.shape, generator=gen, dtype=torch.float64) * 2 - 1) / fan ** 0.5 * 1.5)
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen, dtype=torch.float64) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=gen, dtype=torch.float64) + 0.5)
    return model


def mlp(seed: int = 0, width: int = 8) -> nn.Module:
    return _init(nn.Sequential(nn.Linear(3, width), nn.Tanh(), nn.Linear(width, width), nn.Tanh(), nn.Linear(width, 2)), seed)


class ResidualMLP(nn.Module):
    """The usual deep PINN: ``h = h + tanh(W h)``."""

    def __init__(self, d_in: int = 2, width: int = 8, blocks: int = 3, d_out: int = 1) -> None:
        super().__init__()
        self.inp = nn.Linear(d_in, width)
        self.blocks = nn.ModuleList(nn.Linear(width, width) for _ in range(blocks))
        self.out = nn.Linear(width, d_out)

    def forward(self, x: Tensor) -> Tensor:
        h = self.inp(x)
        for b in self.blocks:
            h = h + torch.tanh(b(h))
        return self.out(h)


def residual_mlp(seed: int = 0, width: int = 8) -> nn.Module:
    return _init(ResidualMLP(width=width), seed)


class PFNN(nn.Module):
    """DeepXDE-style parallel sub-networks: one small MLP per output, outputs concatenated."""

    def __init__(self, d_in: int = 2, widths: tuple[int, ...] = (6, 7), d_out: int = 3) -> None:
        super().__init__()
        self.nets = nn.ModuleList()
        for _ in range(d_out):
            sizes = [d_in, *widths, 1]
            self.nets.append(nn.ModuleList(nn.Linear(i, o) for i, o in zip(sizes[:-1], sizes[1:])))

    def forward(self, x: Tensor) -> Tensor:
        outs = []
        for net in self.nets:
            h = x
            for j, layer in enumerate(net):
                h = layer(h)
                if j + 1 < len(net):
                    h = torch.tanh(h)
            outs.append(h)
        return torch.cat(outs, dim=1)


def pfnn(seed: int = 0) -> nn.Module:
    return _init(PFNN(), seed)


class DeepONet(nn.Module):
    """Branch (linear last layer) · trunk (tanh last layer), summed: ``G(u)(y) = Σ_i b_i t_i + b0``.

    With ``p == d_y`` the branch output width equals the trunk input width (the case the module-order
    guess got wrong)."""

    def __init__(self, m: int = 5, d_y: int = 4, width: int = 6, p: int = 4) -> None:
        super().__init__()
        self.branch = nn.Sequential(nn.Linear(m, width), nn.Tanh(), nn.Linear(width, p))
        self.trunk = nn.Sequential(nn.Linear(d_y, width), nn.Tanh(), nn.Linear(width, p), nn.Tanh())
        self.b0 = nn.Parameter(torch.zeros(1))

    def forward(self, u: Tensor, y: Tensor) -> Tensor:
        return torch.sum(self.branch(u) * self.trunk(y), dim=1, keepdim=True) + self.b0


def deeponet(seed: int = 0) -> nn.Module:
    return _init(DeepONet(), seed)


class DeepONetCartesian(nn.Module):
    """Cartesian-product DeepONet: ``G[b, n] = Σ_i B[b, i] T[n, i]`` (einsum)."""

    def __init__(self, m: int = 5, d_y: int = 2, width: int = 6, p: int = 5) -> None:
        super().__init__()
        self.branch = nn.Sequential(nn.Linear(m, width), nn.ReLU(), nn.Linear(width, p))
        self.trunk = nn.Sequential(nn.Linear(d_y, width), nn.Tanh(), nn.Linear(width, p), nn.Tanh())

    def forward(self, u: Tensor, y: Tensor) -> Tensor:
        return torch.einsum("bi,ni->bn", self.branch(u), self.trunk(y))


def deeponet_cartesian(seed: int = 0) -> nn.Module:
    return _init(DeepONetCartesian(), seed)


class MIONet(nn.Module):
    """Two branches and a trunk, multiplied element-wise and summed."""

    def __init__(self, m1: int = 4, m2: int = 3, d_y: int = 2, width: int = 6, p: int = 5) -> None:
        super().__init__()
        self.branch1 = nn.Sequential(nn.Linear(m1, width), nn.Tanh(), nn.Linear(width, p))
        self.branch2 = nn.Sequential(nn.Linear(m2, width), nn.Tanh(), nn.Linear(width, p))
        self.trunk = nn.Sequential(nn.Linear(d_y, width), nn.Tanh(), nn.Linear(width, p), nn.Tanh())

    def forward(self, u1: Tensor, u2: Tensor, y: Tensor) -> Tensor:
        return (self.branch1(u1) * self.branch2(u2) * self.trunk(y)).sum(-1, keepdim=True)


def mionet(seed: int = 0) -> nn.Module:
    return _init(MIONet(), seed)


class FourierINR(nn.Module):
    """Random Fourier features ``[sin 2πBx, cos 2πBx]`` (a fixed buffer ``B``) into an MLP."""

    def __init__(self, d_in: int = 2, features: int = 4, width: int = 8, d_out: int = 1) -> None:
        super().__init__()
        self.register_buffer("B", torch.randn(features, d_in, generator=torch.Generator().manual_seed(7)))
        self.l1 = nn.Linear(2 * features, width)
        self.l2 = nn.Linear(width, width)
        self.l3 = nn.Linear(width, d_out)

    def forward(self, x: Tensor) -> Tensor:
        z = 2 * torch.pi * x @ self.B.T
        h = torch.cat([torch.sin(z), torch.cos(z)], dim=-1)
        h = torch.relu(self.l1(h))
        h = torch.relu(self.l2(h))
        return self.l3(h)


def fourier_inr(seed: int = 0) -> nn.Module:
    return _init(FourierINR(), seed)


class SIREN(nn.Module):
    """``sin(ω0 (W h + b))`` layers."""

    def __init__(self, d_in: int = 2, width: int = 8, depth: int = 3, d_out: int = 1, w0: float = 3.0) -> None:
        super().__init__()
        sizes = [d_in] + [width] * depth
        self.layers = nn.ModuleList(nn.Linear(i, o) for i, o in zip(sizes[:-1], sizes[1:]))
        self.out = nn.Linear(width, d_out)
        self.w0 = w0

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layers:
            x = torch.sin(self.w0 * layer(x))
        return self.out(x)


def siren(seed: int = 0) -> nn.Module:
    return _init(SIREN(), seed)


class CNN1d(nn.Module):
    """A 1-D convolutional surrogate: conv, conv, flatten, linear head."""

    def __init__(self, c_in: int = 2, c: int = 5, length: int = 12, d_out: int = 3) -> None:
        super().__init__()
        self.c1 = nn.Conv1d(c_in, c, 3, padding=1)
        self.c2 = nn.Conv1d(c, c + 1, 3, padding=1)
        self.head = nn.Linear((c + 1) * length, d_out)

    def forward(self, x: Tensor) -> Tensor:
        h = torch.relu(self.c1(x))
        h = torch.tanh(self.c2(h))
        return self.head(h.flatten(1))


def cnn1d(seed: int = 0) -> nn.Module:
    return _init(CNN1d(), seed)


class UNet1d(nn.Module):
    """A U-Net-like encoder–decoder with a skip concatenation and BatchNorm."""

    def __init__(self, c_in: int = 1, c: int = 4) -> None:
        super().__init__()
        self.enc = nn.Conv1d(c_in, c, 3, padding=1)
        self.bn = nn.BatchNorm1d(c)
        self.down = nn.MaxPool1d(2)
        self.mid = nn.Conv1d(c, 2 * c, 3, padding=1)
        self.up = nn.Upsample(scale_factor=2)
        self.dec = nn.Conv1d(3 * c, c, 3, padding=1)
        self.out = nn.Conv1d(c, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        e = torch.relu(self.bn(self.enc(x)))
        m = torch.tanh(self.mid(self.down(e)))
        d = torch.relu(self.dec(torch.cat([e, self.up(m)], dim=1)))
        return self.out(d)


def unet1d(seed: int = 0) -> nn.Module:
    return _init(UNet1d(), seed)


class GatedMLP(nn.Module):
    """A gate ``tanh(A x) * sigmoid(B x)`` and a GLU-style ``chunk`` gate."""

    def __init__(self, d_in: int = 3, width: int = 6, d_out: int = 2) -> None:
        super().__init__()
        self.a = nn.Linear(d_in, width)
        self.b = nn.Linear(d_in, width)
        self.glu = nn.Linear(width, 2 * width)
        self.out = nn.Linear(width, d_out)

    def forward(self, x: Tensor) -> Tensor:
        h = torch.tanh(self.a(x)) * torch.sigmoid(self.b(x))
        u, g = self.glu(h).chunk(2, dim=-1)
        return self.out(u * torch.sigmoid(g))


def gated_mlp(seed: int = 0) -> nn.Module:
    return _init(GatedMLP(), seed)


class BNMLP(nn.Module):
    """Linear, BatchNorm, SiLU, dropout (eval), and a sigmoid layer (a non-zero dead constant)."""

    def __init__(self, d_in: int = 3, width: int = 7, d_out: int = 2) -> None:
        super().__init__()
        self.l1 = nn.Linear(d_in, width)
        self.bn = nn.BatchNorm1d(width)
        self.l2 = nn.Linear(width, width)
        self.drop = nn.Dropout(0.1)
        self.l3 = nn.Linear(width, d_out)

    def forward(self, x: Tensor) -> Tensor:
        h = nn.functional.silu(self.bn(self.l1(x)))
        h = self.drop(torch.sigmoid(self.l2(h)))
        return self.l3(h)


def bn_mlp(seed: int = 0) -> nn.Module:
    return _init(BNMLP(), seed)


class LayerNormMLP(nn.Module):
    """A LayerNorm-ed hidden layer (its channels are refused) before a prunable one."""

    def __init__(self, d_in: int = 3, width: int = 6, d_out: int = 2) -> None:
        super().__init__()
        self.l1 = nn.Linear(d_in, width)
        self.ln = nn.LayerNorm(width)
        self.l2 = nn.Linear(width, width)
        self.l3 = nn.Linear(width, d_out)

    def forward(self, x: Tensor) -> Tensor:
        h = torch.tanh(self.ln(self.l1(x)))
        return self.l3(torch.relu(self.l2(h)))


def layernorm_mlp(seed: int = 0) -> nn.Module:
    return _init(LayerNormMLP(), seed)


class ConcatInputMLP(nn.Module):
    """Inputs concatenated to every hidden layer (a time column, a skip from the coordinates)."""

    def __init__(self, d_in: int = 2, width: int = 6, d_out: int = 1) -> None:
        super().__init__()
        self.l1 = nn.Linear(d_in, width)
        self.l2 = nn.Linear(width + d_in, width)
        self.l3 = nn.Linear(d_in + width, d_out)

    def forward(self, x: Tensor) -> Tensor:
        h = torch.tanh(self.l1(x))
        h = torch.tanh(self.l2(torch.cat([h, x], dim=1)))
        return self.l3(torch.cat([x, h], dim=1))


def concat_input_mlp(seed: int = 0) -> nn.Module:
    return _init(ConcatInputMLP(), seed)


class TiedMLP(nn.Module):
    """One hidden layer applied twice (weight tying): its rows and columns join the stream."""

    def __init__(self, d_in: int = 3, width: int = 6, d_out: int = 2) -> None:
        super().__init__()
        self.inp = nn.Linear(d_in, width)
        self.step = nn.Linear(width, width)
        self.out = nn.Linear(width, d_out)

    def forward(self, x: Tensor) -> Tensor:
        h = torch.tanh(self.inp(x))
        h = torch.tanh(self.step(h))
        h = torch.tanh(self.step(h))
        return self.out(h)


def tied_mlp(seed: int = 0) -> nn.Module:
    return _init(TiedMLP(), seed)


class CNN2d(nn.Module):
    """Conv2d layers, a global mean over the image, a linear head."""

    def __init__(self, c_in: int = 2, c: int = 4, d_out: int = 3) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(c_in, c, 3, padding=1)
        self.c2 = nn.Conv2d(c, c + 2, 3, stride=2)
        self.head = nn.Linear(c + 2, d_out)

    def forward(self, x: Tensor) -> Tensor:
        h = nn.functional.gelu(self.c1(x))
        h = torch.relu(self.c2(h))
        return self.head(h.mean(dim=(2, 3)))


def cnn2d(seed: int = 0) -> nn.Module:
    return _init(CNN2d(), seed)


class AutoEncoder2d(nn.Module):
    """A strided Conv2d encoder and a ConvTranspose2d decoder, permuted to channels-last at the end."""

    def __init__(self, c_in: int = 1, c: int = 4) -> None:
        super().__init__()
        self.enc = nn.Conv2d(c_in, c, 3, stride=2, padding=1)
        self.dec = nn.ConvTranspose2d(c, c + 1, 2, stride=2)
        self.head = nn.Linear(c + 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        h = torch.tanh(self.enc(x))
        h = torch.sin(self.dec(h))
        return self.head(h.permute(0, 2, 3, 1))


def autoencoder2d(seed: int = 0) -> nn.Module:
    return _init(AutoEncoder2d(), seed)


ZOO: dict[str, tuple[Callable[..., nn.Module], list[tuple[int, ...]]]] = {
    "mlp": (mlp, [(9, 3)]),
    "residual_mlp": (residual_mlp, [(9, 2)]),
    "pfnn": (pfnn, [(9, 2)]),
    "deeponet": (deeponet, [(9, 5), (9, 4)]),
    "deeponet_cartesian": (deeponet_cartesian, [(4, 5), (11, 2)]),
    "mionet": (mionet, [(9, 4), (9, 3), (9, 2)]),
    "fourier_inr": (fourier_inr, [(9, 2)]),
    "siren": (siren, [(9, 2)]),
    "cnn1d": (cnn1d, [(4, 2, 12)]),
    "unet1d": (unet1d, [(3, 1, 8)]),
    "gated_mlp": (gated_mlp, [(9, 3)]),
    "bn_mlp": (bn_mlp, [(9, 3)]),
    "layernorm_mlp": (layernorm_mlp, [(9, 3)]),
    "concat_input_mlp": (concat_input_mlp, [(9, 2)]),
    "tied_mlp": (tied_mlp, [(9, 3)]),
    "cnn2d": (cnn2d, [(3, 2, 6, 6)]),
    "autoencoder2d": (autoencoder2d, [(3, 1, 6, 6)]),
}

# models where some hidden channels are expected to be unprunable, and the reason's words
EXPECT_BLOCKED = {"layernorm_mlp": "LayerNorm normalises over the features"}


def build(name: str, seed: int = 0, dtype: torch.dtype = torch.float64) -> tuple[nn.Module, tuple[Tensor, ...]]:
    """Zoo model ``name`` (eval mode, ``dtype``) and example inputs drawn from ``seed``."""
    factory, shapes = ZOO[name]
    gen = torch.Generator().manual_seed(1000 + seed)
    model = factory(seed=seed).to(dtype).eval()
    return model, tuple(torch.randn(s, generator=gen, dtype=dtype) for s in shapes)
