"""Differentially private training: ``fit(..., privacy=kiln.privacy.DP(epsilon=3, delta=1e-5))``.

DP-SGD as Opacus does it (per-sample gradients clipped to ``max_grad_norm``, Gaussian noise,
Poisson-sampled batches, an RDP accountant), wrapped around kiln's trainer from outside:
``dp.py`` is the user's settings, ``layers.py`` the check (and fix) of layers DP cannot train,
``poisson.py`` the Poisson-sampled data source, ``engine.py`` the per-step clipping, noise and
accounting, ``callback.py`` the per-epoch ``epsilon`` log. Opacus is imported only when a private
fit starts (``pip install kiln[privacy]``).
"""

from kiln.privacy.dp import DP

__all__ = ["DP"]
