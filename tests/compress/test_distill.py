"""kiln.compress.kd_loss against the written-out formula; distill trains a student toward a teacher."""

import math

import pytest
import torch
from torch import nn

from kiln.compress import distill, kd_loss
from kiln.errors import KilnValueError, ShapeError


def test_classification_kd_loss_equals_the_formula_by_hand():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
    y = torch.tensor([0, 2, 1, 2])
    T, alpha = 3.0, 0.7
    soft_total = 0.0
    hard_total = 0.0
    for i in range(4):  # KL(p_t || p_s) at temperature T, and cross-entropy, one row at a time
        zs = [math.exp(v / T) for v in s[i].tolist()]
        zt = [math.exp(v / T) for v in t[i].tolist()]
        ps, pt = [v / sum(zs) for v in zs], [v / sum(zt) for v in zt]
        soft_total += sum(p * math.log(p / q) for p, q in zip(pt, ps))
        e = [math.exp(v) for v in s[i].tolist()]
        hard_total += -math.log(e[int(y[i])] / sum(e))
    expected = alpha * T * T * soft_total / 4 + (1 - alpha) * hard_total / 4
    assert kd_loss(s, t, y, temperature=T, alpha=alpha).item() == pytest.approx(expected, rel=1e-5)


def test_regression_kd_loss_equals_the_formula_by_hand():
    s, t, y = torch.tensor([[1.0], [2.0]]), torch.tensor([[0.5], [3.0]]), torch.tensor([1.5, 2.0])
    expected = 0.6 * ((0.5 ** 2 + 1.0) / 2) + 0.4 * ((0.25 + 0.0) / 2)
    assert kd_loss(s, t, y, alpha=0.6, task="regression").item() == pytest.approx(expected)


def test_a_student_whose_output_does_not_fit_the_teacher_is_refused():
    teacher, student = nn.Linear(4, 3), nn.Linear(4, 5)
    with pytest.raises(ShapeError, match=r"student's output shape \(5,\) does not fit the teacher's \(3,\)"):
        distill(teacher, student, torch.randn(8, 4), torch.zeros(8, dtype=torch.long))
    with pytest.raises(KilnValueError, match="Received: alpha=1.5"):
        kd_loss(torch.zeros(2, 3), torch.zeros(2, 3), alpha=1.5)


def test_distill_moves_the_student_toward_the_teacher():
    torch.manual_seed(0)
    teacher = nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 4)).eval()
    student = nn.Linear(6, 4)
    x = torch.randn(128, 6)
    with torch.no_grad():
        before = kd_loss(student(x), teacher(x)).item()
    distill(teacher, student, x, None, alpha=1.0, epochs=4, learning_rate=2e-2)
    with torch.no_grad():
        after = kd_loss(student(x), teacher(x)).item()
    assert after < 0.5 * before


def test_probability_heads_are_taken_as_log_probabilities():
    logits = torch.randn(5, 3)
    t_probs = torch.softmax(logits, dim=-1)
    from kiln.compress.distill import _as_logits
    torch.testing.assert_close(kd_loss(logits, _as_logits(t_probs, "probabilities")), kd_loss(logits, logits),
                               atol=1e-5, rtol=0)
