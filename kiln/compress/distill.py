"""Knowledge distillation: train a small student to match a trained teacher (Hinton et al. 2015).

Classification: ``alpha * T**2 * KL(softmax(t / T) || softmax(s / T)) + (1 - alpha) * CE(s, y)``
— the ``T**2`` keeps the soft term's gradient scale independent of ``T``. Regression:
``alpha * MSE(s, t) + (1 - alpha) * MSE(s, y)``. Teachers and students that end in a softmax
(kiln's category heads often do) pass ``*_outputs="probabilities"``: their log is taken as
logits, which is exact up to a per-row constant that softmax ignores.

Example::

    student = kiln.compress.distill(teacher, student, x_train, y_train, temperature=4, alpha=0.9)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from kiln.errors import KilnValueError, ShapeError

__all__ = ["kd_loss", "distill"]

_EPS = 1e-12


def _as_logits(out: torch.Tensor, kind: str) -> torch.Tensor:
    return torch.log(out.clamp_min(_EPS)) if kind == "probabilities" else out


def kd_loss(student: torch.Tensor, teacher: torch.Tensor, y: torch.Tensor | None = None, *,
            temperature: float = 4.0, alpha: float = 0.9, task: str = "classification") -> torch.Tensor:
    """The distillation loss for one batch (a scalar).

    Args:
        student, teacher: logits ``(B, classes)`` (classification) or values ``(B, ...)``
            (regression), the same shape.
        y: true labels ``(B,)`` (class indices) or values; None uses the teacher term only.
        temperature: softens both distributions (default 4.0; classification only).
        alpha: weight of the teacher term (default 0.9); ``1 - alpha`` weighs the true labels.
        task: "classification" (default) or "regression".
    """
    if student.shape != teacher.shape:
        raise ShapeError(f"The student's outputs {tuple(student.shape)} do not fit the teacher's "
                         f"{tuple(teacher.shape)}: give the student the teacher's output size.")
    if not 0.0 <= alpha <= 1.0:
        raise KilnValueError(f"Received an invalid value for `alpha`, expected a number in [0, 1]. Received: "
                             f"alpha={alpha!r}")
    if temperature <= 0:
        raise KilnValueError(f"Received an invalid value for `temperature`, expected a positive number. "
                             f"Received: temperature={temperature!r}")
    teacher = teacher.detach()
    if task == "regression":
        soft = F.mse_loss(student, teacher)
        hard = F.mse_loss(student, y.reshape(student.shape).to(student.dtype)) if y is not None else 0.0
    elif task == "classification":
        t = temperature
        soft = F.kl_div(F.log_softmax(student / t, dim=-1), F.log_softmax(teacher / t, dim=-1), log_target=True,
                        reduction="batchmean") * t * t
        hard = F.cross_entropy(student, y.reshape(-1).long()) if y is not None else 0.0
    else:
        raise KilnValueError(f"Received an invalid value for `task`, expected 'classification' or 'regression'. "
                             f"Received: task={task!r}")
    return alpha * soft + (1.0 - alpha) * hard if y is not None else soft


def _batches(x, y, batch_size, generator):
    from kiln.layers.symbolic import map_structure
    rows = len(y) if y is not None else len(next(iter(x.values())) if isinstance(x, dict) else x)
    order = torch.randperm(rows, generator=generator)
    for start in range(0, rows, batch_size):
        idx = order[start:start + batch_size]
        yield map_structure(lambda a: torch.as_tensor(a)[idx], x), (torch.as_tensor(y)[idx] if y is not None else None)


def distill(teacher, student, x, y=None, *, temperature: float = 4.0, alpha: float = 0.9, epochs: int = 1,
            batch_size: int = 32, learning_rate: float = 1e-3, task: str = "classification",
            teacher_outputs: str = "logits", student_outputs: str = "logits", seed: int = 0):
    """Train ``student`` (in place) on ``kd_loss`` against ``teacher``'s outputs; returns it.

    Args:
        teacher, student: models called on the same inputs ``x`` (a tensor or dict of tensors).
        x, y: training inputs and true targets (y may be None: teacher only).
        temperature, alpha, task: see ``kd_loss``.
        epochs, batch_size, learning_rate: the Adam loop (defaults 1, 32, 1e-3).
        teacher_outputs, student_outputs: "logits" (default) or "probabilities" (a softmax head).
        seed: shuffling seed (default 0).
    """
    for name, value in (("teacher_outputs", teacher_outputs), ("student_outputs", student_outputs)):
        if value not in ("logits", "probabilities"):
            raise KilnValueError(f"Received an invalid value for `{name}`, expected 'logits' or 'probabilities'. "
                                 f"Received: {name}={value!r}")
    if not isinstance(epochs, int) or epochs < 1:
        raise KilnValueError(f"Received an invalid value for `epochs`, expected a positive integer. Received: "
                             f"epochs={epochs!r}")
    generator = torch.Generator().manual_seed(seed)
    teacher.eval()
    # Check the output shapes once, on two rows, before any training.
    probe, _ = next(_batches(x, y, 2, torch.Generator().manual_seed(seed)))
    with torch.no_grad():
        t_out, s_out = teacher(probe), student(probe)
    if tuple(t_out.shape[1:]) != tuple(s_out.shape[1:]):
        raise ShapeError(f"The student's output shape {tuple(s_out.shape[1:])} does not fit the teacher's "
                         f"{tuple(t_out.shape[1:])}: give the student's last layer {tuple(t_out.shape[1:])} outputs.")
    optimizer = torch.optim.Adam([p for p in student.parameters() if p.requires_grad], lr=learning_rate)
    student.train()
    for _ in range(epochs):
        for xb, yb in _batches(x, y, batch_size, generator):
            with torch.no_grad():
                t_logits = _as_logits(teacher(xb), teacher_outputs if task == "classification" else "logits")
            s_logits = _as_logits(student(xb), student_outputs if task == "classification" else "logits")
            loss = kd_loss(s_logits, t_logits, yb, temperature=temperature, alpha=alpha, task=task)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    student.eval()
    return student
