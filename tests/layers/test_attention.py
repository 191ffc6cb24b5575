"""MultiHeadAttention and Attention against hand-written einsum + softmax references."""

import math

import pytest
import torch

from kiln.errors import KilnTypeError, KilnValueError, ShapeError
from kiln.layers.attention import Attention, MultiHeadAttention

torch.manual_seed(0)
ATOL = 1e-5


# ---------------------------------------------------------------------- reference (Keras's equations)
def ref_mha(layer, query, value, key=None, mask=None, causal=False):
    """Keras 3's MultiHeadAttention written out with einsum; mask True = attend."""
    key = value if key is None else key
    w = {name: p.detach() for name, p in layer.named_parameters()}
    bias = lambda name: w.get(name, 0.0)  # noqa: E731
    q = torch.einsum("btd,dnh->btnh", query, w["query_kernel"]) + bias("query_bias")
    k = torch.einsum("bsd,dnh->bsnh", key, w["key_kernel"]) + bias("key_bias")
    v = torch.einsum("bsd,dnh->bsnh", value, w["value_kernel"]) + bias("value_bias")
    q = q / math.sqrt(layer.key_dim)
    scores = torch.einsum("bsnh,btnh->bnts", k, q)  # (B, N, T, S)
    if causal:
        t, s = scores.shape[-2:]
        causal_mask = torch.tensor([[i >= j for j in range(s)] for i in range(t)])
        mask = causal_mask[None] if mask is None else mask.bool() & causal_mask
    if mask is not None:
        scores = scores + (1.0 - mask.float()[:, None]) * -1e9
    probs = torch.softmax(scores, dim=-1)
    out = torch.einsum("bnts,bsnh->btnh", probs, v)
    out = torch.einsum("btnh,nho->bto", out, w["output_kernel"]) + bias("output_bias")
    return out, probs


def _randomize(layer):
    with torch.no_grad():
        for p in layer.parameters():
            p.copy_(torch.randn_like(p) * 0.3)


def _built(layer, query, value, key=None):
    layer(query, value, key)
    _randomize(layer)
    return layer


# ---------------------------------------------------------------------- MultiHeadAttention numerics
@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("return_scores", [False, True])
def test_mha_self_attention_matches_reference(use_bias, return_scores):
    x = torch.randn(2, 6, 8)
    mha = _built(MultiHeadAttention(num_heads=3, key_dim=4, use_bias=use_bias), x, x)
    ref, ref_probs = ref_mha(mha, x, x)
    out = mha(x, x, return_attention_scores=return_scores)
    if return_scores:
        out, probs = out
        torch.testing.assert_close(probs, ref_probs, atol=ATOL, rtol=0)
    torch.testing.assert_close(out, ref, atol=ATOL, rtol=0)


def test_mha_cross_attention_with_separate_key_value_dim_and_output_shape():
    q, v, k = torch.randn(2, 5, 8), torch.randn(2, 7, 6), torch.randn(2, 7, 3)
    mha = _built(MultiHeadAttention(num_heads=2, key_dim=4, value_dim=5, output_shape=9), q, v, k)
    out = mha(q, v, k)
    ref, _ = ref_mha(mha, q, v, k)
    assert out.shape == (2, 5, 9)
    torch.testing.assert_close(out, ref, atol=ATOL, rtol=0)


@pytest.mark.parametrize("return_scores", [False, True])
@pytest.mark.parametrize("causal", [False, True])
def test_mha_attention_mask(return_scores, causal):
    q, v = torch.randn(3, 5, 8), torch.randn(3, 6, 8)
    mha = _built(MultiHeadAttention(num_heads=2, key_dim=4), q, v)
    mask = torch.rand(3, 5, 6) > 0.4
    mask[:, :, 0] = True  # every row keeps at least one key (a fully masked row is tested below)
    ref, ref_probs = ref_mha(mha, q, v, mask=mask, causal=causal)
    out = mha(q, v, attention_mask=mask, use_causal_mask=causal, return_attention_scores=return_scores)
    if return_scores:
        out, probs = out
        torch.testing.assert_close(probs, ref_probs, atol=ATOL, rtol=0)
        assert (probs[~mask[:, None].expand_as(probs)] < 1e-6).all()
    torch.testing.assert_close(out, ref, atol=ATOL, rtol=0)


@pytest.mark.parametrize("q_len,v_len", [(5, 5), (4, 7), (6, 3)])
@pytest.mark.parametrize("return_scores", [False, True])
def test_mha_causal_mask(q_len, v_len, return_scores):
    q, v = torch.randn(2, q_len, 8), torch.randn(2, v_len, 8)
    mha = _built(MultiHeadAttention(num_heads=2, key_dim=4), q, v)
    ref, ref_probs = ref_mha(mha, q, v, causal=True)
    out = mha(q, v, use_causal_mask=True, return_attention_scores=return_scores)
    if return_scores:
        out, probs = out
        torch.testing.assert_close(probs, ref_probs, atol=ATOL, rtol=0)
    torch.testing.assert_close(out, ref, atol=ATOL, rtol=0)


def test_mha_causal_mask_stops_information_from_the_future():
    x = torch.randn(1, 6, 8)
    mha = MultiHeadAttention(num_heads=2, key_dim=4)
    before = mha(x, x, use_causal_mask=True)
    x2 = x.clone()
    x2[:, 4:] = torch.randn(1, 2, 8)
    after = mha(x2, x2, use_causal_mask=True)
    torch.testing.assert_close(after[:, :4], before[:, :4])


def test_mha_fully_masked_row_is_uniform_not_nan():
    x = torch.randn(2, 4, 8)
    mha = _built(MultiHeadAttention(num_heads=2, key_dim=4), x, x)
    mask = torch.ones(2, 4, 4, dtype=torch.bool)
    mask[0, 1] = False
    ref, _ = ref_mha(mha, x, x, mask=mask)
    for scores in (False, True):
        out = mha(x, x, attention_mask=mask, return_attention_scores=scores)
        out = out[0] if scores else out
        assert torch.isfinite(out).all()
        torch.testing.assert_close(out, ref, atol=ATOL, rtol=0)


def test_mha_int_and_broadcast_masks():
    q, v = torch.randn(2, 3, 8), torch.randn(2, 5, 8)
    mha = _built(MultiHeadAttention(num_heads=2, key_dim=4), q, v)
    padding = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 0]])  # (B, S): padded keys
    ref, _ = ref_mha(mha, q, v, mask=padding[:, None, :].expand(2, 3, 5))
    torch.testing.assert_close(mha(q, v, attention_mask=padding[:, None, :]), ref, atol=ATOL, rtol=0)


def test_mha_higher_rank_inputs_attend_over_all_inner_axes():
    # (B, H, W, C) with attention_axes=None attends over H*W positions jointly, as Keras.
    x = torch.randn(2, 3, 4, 8)
    mha = _built(MultiHeadAttention(num_heads=2, key_dim=4), x, x)
    out, probs = mha(x, x, return_attention_scores=True)
    flat = x.reshape(2, 12, 8)
    ref, ref_probs = ref_mha(mha, flat, flat)
    assert out.shape == (2, 3, 4, 8) and probs.shape == (2, 2, 3, 4, 3, 4)
    torch.testing.assert_close(out.reshape(2, 12, 8), ref, atol=ATOL, rtol=0)
    torch.testing.assert_close(probs.reshape(2, 2, 12, 12), ref_probs, atol=ATOL, rtol=0)


def test_mha_sequence_attention_axes_equals_default_for_3d():
    x = torch.randn(2, 5, 8)
    a = MultiHeadAttention(num_heads=2, key_dim=4)
    b = MultiHeadAttention(num_heads=2, key_dim=4, attention_axes=(1,))
    a(x, x)
    b(x, x)
    b.load_state_dict(a.state_dict())
    torch.testing.assert_close(a(x, x), b(x, x))
    with pytest.raises(ShapeError, match="3-D"):
        b(torch.randn(2, 3, 4, 8), torch.randn(2, 3, 4, 8))


def test_mha_dropout_only_in_training():
    x = torch.randn(4, 6, 8)
    mha = MultiHeadAttention(num_heads=2, key_dim=4, dropout=0.5)
    mha.eval()
    ref = mha(x, x)
    torch.testing.assert_close(mha(x, x), ref)
    mha.train()
    torch.manual_seed(0)
    assert not torch.allclose(mha(x, x), ref)
    _, probs = mha(x, x, return_attention_scores=True)  # scores returned before dropout, as Keras
    torch.testing.assert_close(probs.sum(-1), torch.ones(4, 2, 6))


def test_mha_gradients_and_keyword_call():
    x = torch.randn(2, 5, 8, requires_grad=True)
    mha = MultiHeadAttention(num_heads=2, key_dim=4)
    mha(query=x, value=x, use_causal_mask=True).sum().backward()
    assert x.grad is not None
    assert all(p.grad is not None for p in mha.parameters())


# ---------------------------------------------------------------------- weights and config
def test_mha_weight_shapes_and_count_match_keras():
    q, v = torch.randn(2, 5, 16), torch.randn(2, 7, 12)
    mha = MultiHeadAttention(num_heads=2, key_dim=4, value_dim=3)
    assert not mha.built
    mha(q, v)
    shapes = [tuple(w.shape) for w in mha.get_weights()]
    assert shapes == [(16, 2, 4), (2, 4), (12, 2, 4), (2, 4), (12, 2, 3), (2, 3), (2, 3, 16), (16,)]
    n_params = sum(p.numel() for p in mha.parameters())
    assert n_params == (16 * 8 + 8) + (12 * 8 + 8) + (12 * 6 + 6) + (6 * 16 + 16)


def test_mha_output_shape_tuple():
    x = torch.randn(2, 5, 8)
    mha = _built(MultiHeadAttention(num_heads=2, key_dim=4, output_shape=(3, 2)), x, x)
    out = mha(x, x)
    assert out.shape == (2, 5, 3, 2)
    assert mha.output_kernel.shape == (2, 4, 3, 2)


def test_mha_config_round_trip():
    mha = MultiHeadAttention(num_heads=2, key_dim=4, value_dim=6, dropout=0.1, output_shape=5,
                             kernel_initializer="he_normal", kernel_regularizer="l2", name="attn")
    x = torch.randn(2, 5, 8)
    mha.eval()
    out = mha(x, x)
    clone = MultiHeadAttention.from_config(mha.get_config())
    assert clone.get_config() == mha.get_config()
    clone.eval()
    clone(x, x)
    clone.set_weights(mha.get_weights())
    torch.testing.assert_close(clone(x, x), out)
    assert len(mha.losses) == 4  # one L2 penalty per kernel


def test_mha_errors():
    with pytest.raises(KilnValueError) as info:
        MultiHeadAttention(num_heads=0, key_dim=4)
    assert str(info.value) == ("Received an invalid value for `num_heads`, expected a positive integer. "
                               "Received: num_heads=0")
    with pytest.raises(KilnValueError, match="key_dim=-1"):
        MultiHeadAttention(num_heads=2, key_dim=-1)
    with pytest.raises(KilnValueError, match="attention_axes"):
        MultiHeadAttention(num_heads=2, key_dim=4, attention_axes=(2, 3))
    with pytest.raises(KilnValueError, match="dropout"):
        MultiHeadAttention(num_heads=2, key_dim=4, dropout=1.0)
    with pytest.raises(KilnValueError, match="output_shape"):
        MultiHeadAttention(num_heads=2, key_dim=4, output_shape=0)
    mha = MultiHeadAttention(num_heads=2, key_dim=4)
    with pytest.raises(ShapeError, match="at least 3 axes"):
        mha(torch.randn(2, 8), torch.randn(2, 8))
    x = torch.randn(2, 5, 8)
    mha(x, x)
    with pytest.raises(ShapeError, match="attention_mask"):
        mha(x, x, attention_mask=torch.ones(2, 4, 4, dtype=torch.bool))
    with pytest.raises(ShapeError, match="8 features"):
        mha(torch.randn(2, 5, 9), x)


def test_mha_in_a_functional_graph():
    from kiln.layers.symbolic import Input

    q, v = Input(shape=(5, 8)), Input(shape=(7, 6))
    out = MultiHeadAttention(num_heads=2, key_dim=4)(q, v)
    assert out.shape == (None, 5, 8)


# ---------------------------------------------------------------------- Attention (Luong)
def ref_luong(q, v, k=None, scale=None, v_mask=None, q_mask=None, causal=False, concat_weight=None):
    k = v if k is None else k
    if concat_weight is None:
        scores = q @ k.transpose(1, 2)
        if scale is not None:
            scores = scores * scale
    else:
        summed = q[:, :, None, :] + k[:, None, :, :]
        if scale is not None:
            summed = summed * scale
        scores = concat_weight * torch.tanh(summed).sum(-1)
    keep = torch.ones_like(scores, dtype=torch.bool)
    if v_mask is not None:
        keep = keep & v_mask[:, None, :]
    if causal:
        keep = keep & torch.ones(scores.shape[-2:], dtype=torch.bool).tril()
    scores = scores - 1e9 * (~keep).float()
    weights = torch.softmax(scores, -1)
    out = weights @ v
    if q_mask is not None:
        out = out * q_mask[..., None].float()
    return out, weights


@pytest.mark.parametrize("score_mode", ["dot", "concat"])
@pytest.mark.parametrize("use_scale", [False, True])
def test_attention_matches_reference(score_mode, use_scale):
    q, v, k = torch.randn(2, 4, 6), torch.randn(2, 5, 6), torch.randn(2, 5, 6)
    layer = Attention(use_scale=use_scale, score_mode=score_mode)
    layer([q, v, k])
    with torch.no_grad():
        if use_scale:
            layer.scale.fill_(0.7)
        if score_mode == "concat":
            layer.concat_score_weight.fill_(1.3)
    out, weights = layer([q, v, k], return_attention_scores=True)
    ref, ref_w = ref_luong(q, v, k, scale=0.7 if use_scale else None,
                           concat_weight=1.3 if score_mode == "concat" else None)
    torch.testing.assert_close(out, ref, atol=ATOL, rtol=0)
    torch.testing.assert_close(weights, ref_w, atol=ATOL, rtol=0)


def test_attention_masks_and_causal():
    q, v = torch.randn(2, 4, 6), torch.randn(2, 4, 6)
    q_mask = torch.tensor([[True, True, True, False], [True, True, False, False]])
    v_mask = torch.tensor([[True, True, False, False], [True, True, True, True]])
    out = Attention()([q, v], mask=[q_mask, v_mask], use_causal_mask=True)
    ref, _ = ref_luong(q, v, v_mask=v_mask, q_mask=q_mask, causal=True)
    torch.testing.assert_close(out, ref, atol=ATOL, rtol=0)


def test_attention_weights_config_and_errors():
    layer = Attention(use_scale=True)
    layer([torch.randn(1, 2, 3), torch.randn(1, 2, 3)])
    assert sum(p.numel() for p in layer.parameters()) == 1
    assert Attention(score_mode="concat", dropout=0.2).get_config()["score_mode"] == "concat"
    clone = Attention.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    with pytest.raises(KilnValueError, match="score_mode"):
        Attention(score_mode="general")
    with pytest.raises(KilnTypeError, match=r"\[query, value\]"):
        Attention()([torch.randn(1, 2, 3)])
