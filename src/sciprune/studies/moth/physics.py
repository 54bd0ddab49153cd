r"""The two-body (head-thorax + abdomen) pitch-plane flight model of the moth, batched.

State ``y = [x, ẋ, y, ẏ, θ, θ̇, φ, φ̇]`` (the joint position, the thorax angle θ and the abdomen angle
φ, both from +x); controls ``u = [F, α, τ]`` held over the window. In CGS units the motion is
:math:`M(q)\ddot q = b(q, \dot q, u)` with :math:`q = (x, y, θ, φ)`,

.. math::

    M = \begin{pmatrix} m & 0 & -a s_θ & -b s_φ \\ 0 & m & a c_θ & b c_φ \\
        -a s_θ & a c_θ & J_1 & 0 \\ -b s_φ & b c_φ & 0 & J_2 \end{pmatrix},\quad
    m = m_1 + m_2,\ a = m_1 L_1,\ b = m_2 L_2,\ J_1 = I_1 + m_1 L_1^2,\ J_2 = I_2 + m_2 L_2^2,

    b_x = F\cos(α+θ) - k_D|ẋ|ẋ + a c_θ θ̇^2 + b c_φ φ̇^2, \quad
    b_y = F\sin(α+θ) - k_D|ẏ|ẏ + a s_θ θ̇^2 + b s_φ φ̇^2 - m g,

    b_θ = τ - a g c_θ + S + F L_3 \sin α, \quad b_φ = -τ - b g c_φ - S, \quad
    S = K(φ - θ - π - β_R) + c(φ̇ - θ̇),

with the drag coefficient :math:`k_D = ½ρ_A(C_{d,h}S_h + C_{d,a}S_a)`,
:math:`C_d = 24/Re + 6/(1+\sqrt{Re}) + 0.4`, :math:`Re = ρ_A |v| 2b_i / μ_A`.

The 4×4 solve is done in closed form by eliminating the translations (a Schur complement):
:math:`\ddot x = (b_x + a s_θ\ddotθ + b s_φ\ddotφ)/m`, :math:`\ddot y = (b_y - a c_θ\ddotθ - b c_φ\ddotφ)/m`
and, with :math:`κ = ab\cos(θ-φ)/m`,

.. math::

    \begin{pmatrix} J_1 - a^2/m & -κ \\ -κ & J_2 - b^2/m \end{pmatrix}
    \begin{pmatrix}\ddotθ \\ \ddotφ\end{pmatrix} =
    \begin{pmatrix} b_θ + a(s_θ b_x - c_θ b_y)/m \\ b_φ + b(s_φ b_x - c_φ b_y)/m \end{pmatrix}.

Everything is elementwise over a leading batch axis, so one call evaluates any number of samples.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import Tensor

STATE = ("x", "xd", "y", "yd", "theta", "thetad", "phi", "phid")
CONTROLS = ("F", "alpha", "tau")


@dataclass(frozen=True)
class Constants:
    """CGS constants of the model (``s`` scales every length)."""

    bhead: float = 0.5
    ahead: float = 0.9
    bbutt: float = 0.75
    abutt: float = 1.9
    rho_head: float = 0.9
    rho_butt: float = 0.4
    rho_air: float = 0.00118
    mu_air: float = 0.000186
    L3: float = 0.75
    K: float = 23000.0
    c: float = 14075.8
    g: float = 980.0
    beta_r: float = 0.0
    s: float = 1.0

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    @property
    def derived(self) -> dict[str, float]:
        """Masses, inertias, lever arms and frontal areas (scaled by ``s``)."""
        bh, ah, bb, ab = self.bhead * self.s, self.ahead * self.s, self.bbutt * self.s, self.abutt * self.s
        m1 = self.rho_head * 4.0 / 3.0 * math.pi * bh**2 * ah
        m2 = self.rho_butt * 4.0 / 3.0 * math.pi * bb**2 * ab
        return {
            "m1": m1, "m2": m2, "L1": ah, "L2": ab, "L3": self.L3 * self.s,
            "I1": m1 * (ah**2 + bh**2) / 5.0, "I2": m2 * (ab**2 + bb**2) / 5.0,
            "Sh": math.pi * bh**2, "Sa": math.pi * bb**2, "bh": bh, "bb": bb,
        }


def rhs(y: Tensor, u: Tensor, k: Constants) -> Tensor:
    """dy/dt for states ``y[..., 8]`` under controls ``u[..., 3]`` (see the module docstring)."""
    d = k.derived
    m1, m2, L1, L2 = d["m1"], d["m2"], d["L1"], d["L2"]
    m, a, b = m1 + m2, m1 * L1, m2 * L2
    J1, J2 = d["I1"] + m1 * L1**2, d["I2"] + m2 * L2**2
    xd, yd, th, thd, ph, phd = y[..., 1], y[..., 3], y[..., 4], y[..., 5], y[..., 6], y[..., 7]
    F, alpha, tau = u[..., 0], u[..., 1], u[..., 2]
    st, ct, sp, cp = torch.sin(th), torch.cos(th), torch.sin(ph), torch.cos(ph)

    speed = torch.sqrt(xd * xd + yd * yd)
    re_h = k.rho_air * speed * (2.0 * d["bh"]) / k.mu_air
    re_a = k.rho_air * speed * (2.0 * d["bb"]) / k.mu_air
    cd_h = 24.0 / re_h + 6.0 / (1.0 + torch.sqrt(re_h)) + 0.4
    cd_a = 24.0 / re_a + 6.0 / (1.0 + torch.sqrt(re_a)) + 0.4
    kd = 0.5 * k.rho_air * (cd_h * d["Sh"] + cd_a * d["Sa"])

    spring = k.K * (ph - th - math.pi - k.beta_r) + k.c * (phd - thd)
    bx = F * torch.cos(alpha + th) - kd * xd.abs() * xd + a * ct * thd**2 + b * cp * phd**2
    by = F * torch.sin(alpha + th) - kd * yd.abs() * yd + a * st * thd**2 + b * sp * phd**2 - m * k.g
    bt = tau - a * k.g * ct + spring + F * d["L3"] * torch.sin(alpha)
    bp = -tau - b * k.g * cp - spring

    r1 = bt + a * (st * bx - ct * by) / m
    r2 = bp + b * (sp * bx - cp * by) / m
    kappa = a * b * torch.cos(th - ph) / m
    d11, d22 = J1 - a * a / m, J2 - b * b / m
    det = d11 * d22 - kappa * kappa
    thdd = (d22 * r1 + kappa * r2) / det
    phdd = (kappa * r1 + d11 * r2) / det
    xdd = (bx + a * st * thdd + b * sp * phdd) / m
    ydd = (by - a * ct * thdd - b * cp * phdd) / m
    return torch.stack((xd, xdd, yd, ydd, thd, thdd, phd, phdd), dim=-1)
