"""Shards of a global batch, and the rescaled loss that makes N ranks' mean gradient the
one-process gradient (checked here without processes: DDP's average is a mean over ranks)."""

import pytest
import torch

from kiln.distribution.sharding import shard_batch, shard_bounds


@pytest.mark.parametrize("rows,world", [(8, 2), (5, 2), (1, 2), (7, 3), (2, 4)])
def test_bounds_cover_the_batch_in_order(rows, world):
    bounds = [shard_bounds(rows, r, world) for r in range(world)]
    assert bounds[0][0] == 0 and bounds[-1][1] == rows
    assert all(bounds[r][1] == bounds[r + 1][0] for r in range(world - 1))
    sizes = [end - start for start, end in bounds]
    assert max(sizes) - min(sizes) <= 1


def test_an_empty_slice_keeps_one_placeholder_row_of_weight_zero():
    x, y = torch.arange(3.0).reshape(3, 1), torch.arange(3.0)
    part = shard_batch(x, y, None, rank=0, world_size=4)  # 3 rows for 4 ranks: rank 0 gets none
    assert part.rows == 0 and part.loss_scale == 0.0
    assert part.x.shape == (1, 1) and torch.equal(part.y, torch.tensor([2.0]))


def test_structures_and_sample_weights_are_cut_alike():
    x = {"a": torch.arange(5.0), "b": torch.arange(5.0) * 10}
    part = shard_batch(x, (torch.arange(5), torch.arange(5) + 1), torch.ones(5), rank=1, world_size=2)
    assert torch.equal(part.x["b"], torch.tensor([20.0, 30.0, 40.0]))
    assert torch.equal(part.y[1], torch.tensor([3, 4, 5])) and part.sample_weight.shape == (3,)
    assert part.rows == 3 and part.loss_scale == pytest.approx(3 * 2 / 5)


@pytest.mark.parametrize("rows,world", [(8, 2), (5, 2), (1, 2), (7, 3), (2, 4)])
def test_the_mean_of_rescaled_rank_gradients_is_the_full_batch_gradient(rows, world):
    torch.manual_seed(0)
    layer = torch.nn.Linear(3, 2)
    x, y, w = torch.randn(rows, 3), torch.randn(rows, 2), torch.rand(rows)

    def grads(xb, yb, wb, scale=1.0):
        layer.zero_grad()
        per_row = ((layer(xb) - yb) ** 2).mean(dim=1)
        (scale * (per_row * wb).sum() / per_row.numel()).backward()  # Keras's sum_over_batch_size
        return [p.grad.clone() for p in layer.parameters()]

    reference = grads(x, y, w)
    ranks = []
    for r in range(world):
        part = shard_batch(x, y, w, r, world)
        ranks.append(grads(part.x, part.y, part.sample_weight, part.loss_scale))
    averaged = [sum(g[i] for g in ranks) / world for i in range(len(reference))]  # what DDP does
    for got, want in zip(averaged, reference):
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-7)
