"""Merging per-rank metric states gives the state of all rows (sums, kept constants, rows)."""

import torch

from kiln.distribution.reduce import _merge
from kiln.metrics import AUC, MeanAbsoluteError, Precision


def state_of(metric, y_true, y_pred):
    metric.update_state(torch.as_tensor(y_true), torch.as_tensor(y_pred))
    return metric._state


def test_merged_states_give_the_one_process_results():
    y_true, y_pred = [0.0, 1.0, 1.0, 0.0, 1.0], [0.1, 0.8, 0.4, 0.6, 0.9]
    for make in (MeanAbsoluteError, Precision, AUC):
        whole = make()
        whole.update_state(torch.tensor(y_true), torch.tensor(y_pred))
        parts = [state_of(make(), y_true[:2], y_pred[:2]), state_of(make(), y_true[2:], y_pred[2:])]
        merged = make()
        merged._state = _merge(parts)
        assert merged.result() == whole.result(), make.__name__


def test_a_rank_without_rows_adds_nothing_and_thresholds_are_kept():
    state = state_of(Precision(thresholds=[0.3, 0.7]), [1.0, 0.0], [0.9, 0.5])
    merged = _merge([state, None])
    assert torch.equal(merged["thresholds"], state["thresholds"]) and torch.equal(merged["tp"], state["tp"])
    assert _merge([None, None]) is None
