"""Masks, Keras's way: every consumer gives the same result for a post-padded batch as for
each sequence alone without padding (the reference runs the unmasked layer, fused path)."""

import pytest
import torch

import kiln
from kiln import layers as L
from kiln.errors import KilnTypeError, ShapeError

# Two sequences, post-padded with id 0: real lengths 4 and 2.
IDS = torch.tensor([[3, 5, 2, 7, 0, 0], [4, 1, 0, 0, 0, 0]])
LENGTHS = (4, 2)
ATOL = 1e-6


def embedded(seed=0):
    torch.manual_seed(seed)
    embedding = L.Embedding(10, 4, mask_zero=True)
    embedding(IDS)
    return embedding


def reference(layer, embedding, b):
    """The layer on sequence ``b`` alone, unpadded and without any mask."""
    with torch.no_grad():
        return layer(embedding(IDS[b:b + 1, :LENGTHS[b]]))[0]


def assert_padding_ignored(consumer, sequences_out):
    """consumer(layer) after Embedding(mask_zero) in a Sequential, padded vs each unpadded."""
    embedding = embedded()
    model = kiln.Sequential([embedding, consumer])
    model.eval()
    with torch.no_grad():
        out = model(IDS)
    for b, n in enumerate(LENGTHS):
        ref = reference(consumer, embedding, b)
        got = out[b, :n] if sequences_out else out[b]
        torch.testing.assert_close(got, ref, atol=ATOL, rtol=1e-5)


@pytest.mark.parametrize("rnn", [L.SimpleRNN, L.LSTM, L.GRU])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_recurrent_layers_skip_masked_steps(rnn, return_sequences):
    assert_padding_ignored(rnn(3, return_sequences=return_sequences), return_sequences)


@pytest.mark.parametrize("return_sequences", [False, True])
def test_bidirectional_skips_masked_steps(return_sequences):
    assert_padding_ignored(L.Bidirectional(L.LSTM(3, return_sequences=return_sequences)), return_sequences)


def test_go_backwards_with_a_mask_reads_the_real_steps_backwards():
    assert_padding_ignored(L.GRU(3, go_backwards=True), False)


def test_masked_steps_keep_the_previous_state_and_output():
    torch.manual_seed(0)
    rnn = L.SimpleRNN(2, return_sequences=True)
    x = torch.randn(1, 4, 3)
    mask = torch.tensor([[True, False, True, False]])
    with torch.no_grad():
        out = rnn(x, mask=mask)
        h1 = rnn(x[:, :1])[:, -1]
        h2 = rnn(x[:, [0, 2]])[:, -1]
    torch.testing.assert_close(out[:, 1], h1)  # the masked step repeats the previous output
    torch.testing.assert_close(out[:, 2], h2)  # and the next real step continues from that state
    torch.testing.assert_close(out[:, 3], h2)


@pytest.mark.parametrize("pool", [L.GlobalAveragePooling1D, L.GlobalMaxPooling1D])
def test_global_pooling_1d_pools_real_steps_only(pool):
    assert_padding_ignored(pool(), False)


def test_stacked_rnns_pass_the_mask_on():
    embedding = embedded()
    first, second = L.LSTM(3, return_sequences=True), L.LSTM(2)
    model = kiln.Sequential([embedding, first, second])
    with torch.no_grad():
        out = model(IDS)
        for b, n in enumerate(LENGTHS):
            ref = second(first(embedding(IDS[b:b + 1, :n])))[0]
            torch.testing.assert_close(out[b], ref, atol=ATOL, rtol=1e-5)


def test_time_distributed_and_dense_pass_the_mask_to_pooling():
    embedding = embedded()
    td, dense, pool = L.TimeDistributed(L.Dense(3)), L.Dense(2), L.GlobalAveragePooling1D()
    model = kiln.Sequential([embedding, td, dense, pool])
    with torch.no_grad():
        out = model(IDS)
        for b, n in enumerate(LENGTHS):
            torch.testing.assert_close(out[b], pool(dense(td(embedding(IDS[b:b + 1, :n]))))[0], atol=ATOL, rtol=1e-5)
    assert L.Dense(2).supports_masking and L.Dense(2).compute_mask(None, IDS != 0) is not None


def test_masking_layer_feeds_an_lstm():
    torch.manual_seed(0)
    x = torch.randn(2, 5, 3)
    x[0, 3:] = 0.0
    x[1, 2:] = 0.0
    masking, lstm = L.Masking(0.0), L.LSTM(4)
    model = kiln.Sequential([masking, lstm])
    with torch.no_grad():
        out = model(x)
        for b, n in enumerate((3, 2)):
            torch.testing.assert_close(out[b], lstm(x[b:b + 1, :n])[0], atol=ATOL, rtol=1e-5)
    torch.testing.assert_close(masking.compute_mask(x), x.ne(0).any(-1))
    with pytest.raises(KilnTypeError, match="mask_value"):
        L.Masking("zero")


def test_functional_graph_carries_masks_to_attention_and_merges():
    torch.manual_seed(0)
    ids = kiln.Input(shape=(None,), dtype="int64")
    embedding = L.Embedding(10, 4, mask_zero=True)
    e = embedding(ids)
    mha = L.MultiHeadAttention(num_heads=2, key_dim=3)
    attended = mha(e, e)  # query_mask and value_mask come from the embedding
    dense = L.Dense(4)
    summed = L.Add()([attended, dense(e)])  # the merge keeps the mask (AND of both)
    pool = L.GlobalAveragePooling1D()
    model = kiln.Model(ids, pool(summed))
    with torch.no_grad():
        out = model(IDS)
        for b, n in enumerate(LENGTHS):
            eb = embedding(IDS[b:b + 1, :n])
            ref = pool(mha(eb, eb) + dense(eb))[0]
            torch.testing.assert_close(out[b], ref, atol=ATOL, rtol=1e-5)


def test_attention_query_and_value_masks_match_an_explicit_attention_mask():
    torch.manual_seed(0)
    mha = L.MultiHeadAttention(num_heads=2, key_dim=3)
    q, v = torch.randn(2, 4, 5), torch.randn(2, 6, 5)
    qm = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]]).bool()
    vm = torch.tensor([[1, 1, 1, 1, 1, 0], [1, 1, 0, 0, 0, 0]]).bool()
    with torch.no_grad():
        got = mha(q, v, query_mask=qm, value_mask=vm)
        want = mha(q, v, attention_mask=qm[:, :, None] & vm[:, None, :])
    torch.testing.assert_close(got, want)


def test_merge_and_rnn_compute_mask_follow_keras():
    a = torch.tensor([[True, True, False]])
    b = torch.tensor([[True, False, False]])
    x = torch.zeros(1, 3, 2)
    assert torch.equal(L.Add().compute_mask([x, x], [a, b]), a & b)
    assert L.Add().compute_mask([x, x], [None, None]) is None
    assert torch.equal(L.Concatenate(axis=1).compute_mask([x, x], [a, None]), torch.tensor([[1, 1, 0, 1, 1, 1]]).bool())
    assert L.Dot(axes=1).compute_mask([x, x], [a, b]) is None
    assert torch.equal(L.LSTM(2, return_sequences=True).compute_mask(x, a), a)
    assert L.LSTM(2).compute_mask(x, a) is None
    assert L.GlobalAveragePooling1D().compute_mask(x, a) is None


@pytest.mark.parametrize("layer, call", [
    (L.LSTM(3), lambda layer, x, m: layer(x, mask=m)),
    (L.GlobalMaxPooling1D(), lambda layer, x, m: layer(x, mask=m)),
    (L.GlobalAveragePooling1D(), lambda layer, x, m: layer(x, mask=m)),
    (L.MultiHeadAttention(num_heads=1, key_dim=2), lambda layer, x, m: layer(x, x, query_mask=m)),
])
def test_a_mask_of_the_wrong_shape_is_a_shape_error_naming_the_layer(layer, call):
    x = torch.randn(2, 5, 4)
    with pytest.raises(ShapeError, match=rf"Layer '{layer.name}' .*mask.*\(2, 4\)"):
        call(layer, x, torch.ones(2, 4, dtype=torch.bool))


def test_losses_and_metrics_skip_masked_timesteps():
    """Keras: with an output mask, the loss is the mean over the real steps and metrics weigh
    them alone; the labels at padded steps change nothing."""
    torch.manual_seed(0)
    embedding, lstm, dense = L.Embedding(10, 4, mask_zero=True), L.LSTM(3, return_sequences=True), L.Dense(1)
    model = kiln.Sequential([embedding, lstm, dense])
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    y = torch.randn(2, 6, 1)
    logs = model.evaluate(IDS.numpy(), y.numpy(), verbose=0, return_dict=True)
    with torch.no_grad():
        pred = model(IDS)
    real = (IDS != 0)
    errors = (pred - y)[real]  # (real steps, 1)
    assert logs["loss"] == pytest.approx(float((errors ** 2).mean()), rel=1e-6)
    assert logs["mae"] == pytest.approx(float(errors.abs().mean()), rel=1e-6)
    y_other = y.clone()
    y_other[~real] = 100.0  # different labels on the padding only
    assert model.evaluate(IDS.numpy(), y_other.numpy(), verbose=0, return_dict=True) == logs


def test_mask_zero_warns_when_id_0_is_used_between_real_tokens():
    embedding = L.Embedding(10, 2, mask_zero=True, name="tokens")
    with pytest.warns(UserWarning, match=r"Layer 'tokens' \(Embedding, mask_zero=True\) received id 0 between real "
                                         r"tokens \(row 1\).*shift the ids by 1"):
        embedding.compute_mask(torch.tensor([[0, 0, 3, 4], [2, 0, 5, 0]]))
    quiet = L.Embedding(10, 2, mask_zero=True)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quiet.compute_mask(torch.tensor([[0, 0, 3, 4], [2, 5, 0, 0]]))  # pre- and post-padding are fine
