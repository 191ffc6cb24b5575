"""PrivateFit: DP-SGD around one kiln ``fit`` — Opacus's per-sample gradients, clipping, noise
and accountant, behind the trainer's step.

What happens, in order (``Trainer.fit`` calls these when ``privacy=`` is given):

1. ``PrivateFit.start`` (through ``DP.start_fit``, before the model is built): validates the
   settings against the data (in-memory arrays, ``delta < 1/n``) and the run (no mixed precision, ``jit_compile`` or
   ``batch_transform``, which would break per-sample gradients), checks (or fixes) the layers,
   wraps the data in ``PoissonData`` and calibrates the noise multiplier with Opacus's
   ``get_noise_multiplier`` for the planned epochs — the call ``PrivacyEngine.
   make_private_with_epsilon`` makes, with the same sample rate ``1 / steps_per_epoch``.
2. ``attach`` (once the parameters exist): Opacus's ``GradSampleModule`` hooks on the model
   (per-sample gradients; kiln's own layers go through Opacus's functorch path) and a
   ``DPOptimizer`` over the kiln optimizer's torch optimizer, used for its ``pre_step``:
   clip each sample's gradient to ``max_grad_norm``, sum, add Gaussian noise of std
   ``noise_multiplier * max_grad_norm``, divide by the expected batch size. kiln's optimizer
   then steps as usual (its schedule and decay act on the private gradient: post-processing).
3. ``train_step`` per batch; the accountant records every step. ``state_dict`` /
   ``load_state_dict`` put the accountant's history in checkpoints, so a resumed run's spent
   epsilon equals an uninterrupted one's (the noise comes from torch's global generator and the
   batches from the fit's shuffle generator, both already in every checkpoint).
4. ``close`` (when fit ends): removes the hooks; the model is a plain model again.

Memory: Opacus's ghost clipping needs its own loss wrapper and a second backward pass, which
does not fit kiln's loss path yet; per-sample gradients are materialised (``batch x params``).
"""

from __future__ import annotations

import math

import torch

from kiln.errors import KilnError, KilnValueError
from kiln.privacy.layers import check_layers
from kiln.privacy.poisson import PoissonData

__all__ = ["PrivateFit"]


class PrivateFit:
    """The DP-SGD state of one fit: settings, noise multiplier, accountant and hooks.

    Attributes:
        dp: the settings (``DP``).
        noise_multiplier: sigma, calibrated so the planned epochs spend ``dp.epsilon``.
        sample_rate: each sample's probability of being in a batch (``1 / steps``).
        data: the Poisson-sampled training data the fit iterates.
        replaced_layers: names of layers ``fix_layers`` replaced.
    """

    def __init__(self, dp, data: PoissonData, epochs: int, noise_multiplier: float, replaced_layers: list[str]):
        self.dp = dp
        self.data = data
        self.epochs = epochs
        self.sample_rate = data.sample_rate
        self.noise_multiplier = noise_multiplier
        self.replaced_layers = replaced_layers
        self.epsilon_per_epoch: list[float] = []
        self._accountant = _accountant(dp.accountant)
        self._grad_sample_module = None
        self._dp_optimizer = None
        self._trainer = None

    @classmethod
    def start(cls, trainer, dp, data, *, batch_size: int, epochs: int, steps_per_epoch: int | None,
              batch_transform=None) -> "PrivateFit":
        """Validate everything and calibrate the noise; raises before any step is taken.

        ``dp`` is the ``kiln.privacy.DP`` (already valid on its own; here it meets the data)."""
        from kiln.training.data_adapter import ArrayData
        _import_opacus()
        if not isinstance(data, ArrayData):
            raise KilnValueError(f"Private training needs in-memory arrays (Poisson sampling draws each sample "
                                 f"independently, so it must know them all); received a {type(data.loader).__name__}. "
                                 f"Pass x and y as arrays or tensors.")
        dp.check_dataset_size(data.size)
        if getattr(trainer, "amp_dtype", None) is not None:
            raise KilnValueError("Private training runs in float32: compile(mixed_precision=None) (received "
                                 f"mixed_precision={trainer.amp_dtype}); per-sample clipping in low precision "
                                 "is not supported by Opacus.")
        if getattr(trainer, "jit_compile", False):
            raise KilnValueError("Private training cannot use compile(jit_compile=True): Opacus's per-sample "
                                 "gradient hooks do not run inside torch.compile graphs. Use jit_compile=False.")
        if batch_transform is not None:
            raise KilnValueError("Private training cannot use `batch_transform` (e.g. MixUp/CutMix): mixing samples "
                                 "makes one sample's gradient depend on others. Drop batch_transform.")
        if epochs < 1:
            raise KilnValueError(f"Private training needs at least one epoch to plan the budget over; "
                                 f"received epochs={epochs}.")
        replaced = check_layers(trainer.module, dp.fix_layers)
        steps = steps_per_epoch or max(1, math.ceil(data.size / batch_size))
        poisson = PoissonData(data, steps)
        return cls(dp, poisson, epochs, _noise_multiplier(dp, poisson.sample_rate, epochs), replaced)

    # ------------------------------------------------------------------ the fit's life
    def attach(self, trainer) -> None:
        """Hook per-sample gradients into the (built) model and wrap its torch optimizer."""
        from opacus import GradSampleModule
        from opacus.optimizers import DPOptimizer
        self._trainer = trainer
        self._grad_sample_module = GradSampleModule(trainer.module, batch_first=True, loss_reduction="mean",
                                                    strict=False)
        self._dp_optimizer = DPOptimizer(trainer.optimizer.torch_optimizer, noise_multiplier=self.noise_multiplier,
                                         max_grad_norm=self.dp.max_grad_norm,
                                         expected_batch_size=self.data.expected_batch_size, loss_reduction="mean")
        self._params = list(self._dp_optimizer.params)

    def callback(self):
        """The callback that writes ``logs["epsilon"]`` at each epoch's end."""
        from kiln.privacy.callback import PrivacyLogger
        return PrivacyLogger(self)

    @property
    def attached(self) -> bool:
        """True between ``attach`` and ``close``: while the fit runs."""
        return self._grad_sample_module is not None

    def train_step(self, x, y, sample_weight):
        """One DP-SGD step: forward, per-sample backward, clip + noise, kiln optimizer step."""
        trainer = self._trainer
        from kiln.training.data_adapter import first_tensor
        if first_tensor(x).shape[0] == 0:
            # Poisson sampling can draw an empty batch: the step is pure noise, as in Opacus.
            for p in self._params:
                p.grad_sample = p.new_zeros((0, *p.shape))
            with torch.no_grad():
                y_pred = trainer._call_module(x)
            loss = torch.zeros((), device=first_tensor(x).device)
        else:
            loss, y_pred = trainer._loss_and_outputs(x, y, sample_weight)
            trainer.optimizer.zero_grad()
            loss.backward()
        self._dp_optimizer.pre_step()  # p.grad <- (sum of clipped p.grad_sample + noise) / expected batch size
        trainer.optimizer.step()
        self._dp_optimizer.zero_grad(set_to_none=True)  # per-sample gradients must not pile up across steps
        self._accountant.step(noise_multiplier=self.noise_multiplier, sample_rate=self.sample_rate)
        return loss.detach(), y_pred.detach()

    def end_epoch(self) -> float:
        """The epsilon spent so far, recorded for this epoch."""
        spent = self.spent_epsilon()
        self.epsilon_per_epoch.append(spent)
        return spent

    def close(self) -> None:
        """Remove the hooks and per-sample attributes; the model trains normally again."""
        if self._grad_sample_module is not None:
            self._grad_sample_module._close()
            self._grad_sample_module = None

    # ------------------------------------------------------------------ accounting
    def spent_epsilon(self) -> float:
        if not self._accountant.history:
            return 0.0
        return float(self._accountant.get_epsilon(delta=self.dp.delta))

    @property
    def steps_taken(self) -> int:
        return sum(int(h[2]) for h in self._accountant.history)

    def state_dict(self) -> dict:
        """What a checkpoint keeps: the settings (to refuse a mismatched resume) and the
        accountant's history (``[[noise_multiplier, sample_rate, steps], ...]``)."""
        return {"settings": self.dp.to_dict(), "noise_multiplier": self.noise_multiplier,
                "sample_rate": self.sample_rate, "epsilon_per_epoch": list(self.epsilon_per_epoch),
                "history": [[float(s), float(q), int(k)] for s, q, k in self._accountant.history]}

    def load_state_dict(self, state: dict) -> None:
        mine = {"settings": self.dp.to_dict(), "noise_multiplier": self.noise_multiplier,
                "sample_rate": self.sample_rate}
        theirs = {k: state.get(k) for k in mine}
        if theirs != mine:
            raise KilnValueError(f"The checkpoint was written by a private run with {theirs}, but this fit uses "
                                 f"{mine}; resuming would mis-account the privacy spent. Resume with the same "
                                 f"privacy settings, data size and batch size, or start a new run.")
        self._accountant.history = [(float(s), float(q), int(k)) for s, q, k in state["history"]]
        self.epsilon_per_epoch = [float(e) for e in state.get("epsilon_per_epoch", [])]

    def record(self) -> dict:
        """The run's privacy record (``privacy.json`` in a YAML run, the report and model card)."""
        import opacus
        return {
            "mechanism": f"DP-SGD (Opacus {opacus.__version__}: per-sample clipping, Gaussian noise, Poisson sampling)",
            "epsilon_target": self.dp.epsilon,
            "epsilon_spent": self.spent_epsilon(),
            "epsilon_per_epoch": list(self.epsilon_per_epoch),
            "delta": self.dp.delta,
            "max_grad_norm": self.dp.max_grad_norm,
            "noise_multiplier": self.noise_multiplier,
            "sample_rate": self.sample_rate,
            "expected_batch_size": self.data.expected_batch_size,
            "training_samples": self.data.size,
            "planned_epochs": self.epochs,
            "steps": self.steps_taken,
            "accountant": self.dp.accountant,
            "replaced_layers": list(self.replaced_layers),
        }


def _import_opacus():
    try:
        import opacus  # noqa: F401
    except ImportError as err:
        raise KilnError("Private training needs Opacus: pip install 'kiln[privacy]' (or pip install opacus).") \
            from err


def _accountant(kind: str):
    from opacus.accountants import create_accountant
    return create_accountant(mechanism=kind)


def _noise_multiplier(dp, sample_rate: float, epochs: int) -> float:
    """Sigma for (epsilon, delta) over ``epochs`` epochs: PrivacyEngine.make_private_with_epsilon's call."""
    from opacus.accountants.utils import get_noise_multiplier
    try:
        return float(get_noise_multiplier(target_epsilon=dp.epsilon, target_delta=dp.delta, sample_rate=sample_rate,
                                          epochs=epochs, accountant=dp.accountant))
    except ValueError as err:
        raise KilnValueError(f"No noise level reaches epsilon={dp.epsilon} with delta={dp.delta} over {epochs} "
                             f"epoch(s) at sample rate {sample_rate:.4g} ({err}). Raise epsilon or delta, or train "
                             f"fewer epochs.") from err
