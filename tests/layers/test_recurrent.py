"""SimpleRNN, LSTM, GRU, Bidirectional: both run paths against a plain loop of Keras's equations."""

import pytest
import torch

from kiln.errors import KilnError, KilnTypeError, KilnValueError, ShapeError
from kiln.layers.recurrent import GRU, LSTM, Bidirectional, SimpleRNN

torch.manual_seed(0)
ATOL = 1e-5


# ---------------------------------------------------------------------- references (Keras equations)
def ref_simple_rnn(x, kernel, recurrent_kernel, bias, h, act=torch.tanh):
    outputs = []
    for t in range(x.shape[1]):
        z = x[:, t] @ kernel + h @ recurrent_kernel
        if bias is not None:
            z = z + bias
        h = act(z)
        outputs.append(h)
    return torch.stack(outputs, 1), [h]


def ref_lstm(x, kernel, recurrent_kernel, bias, h, c):
    u = recurrent_kernel.shape[0]
    outputs = []
    for t in range(x.shape[1]):
        z = x[:, t] @ kernel + h @ recurrent_kernel
        if bias is not None:
            z = z + bias
        i = torch.sigmoid(z[:, :u])
        f = torch.sigmoid(z[:, u:2 * u])
        g = torch.tanh(z[:, 2 * u:3 * u])
        o = torch.sigmoid(z[:, 3 * u:])
        c = f * c + i * g
        h = o * torch.tanh(c)
        outputs.append(h)
    return torch.stack(outputs, 1), [h, c]


def ref_gru(x, kernel, recurrent_kernel, bias, h, reset_after):
    u = recurrent_kernel.shape[0]
    outputs = []
    for t in range(x.shape[1]):
        xt = x[:, t]
        if reset_after:
            b_in = bias[0] if bias is not None else 0.0
            b_rec = bias[1] if bias is not None else 0.0
            mx = xt @ kernel + b_in
            mh = h @ recurrent_kernel + b_rec
            z = torch.sigmoid(mx[:, :u] + mh[:, :u])
            r = torch.sigmoid(mx[:, u:2 * u] + mh[:, u:2 * u])
            hh = torch.tanh(mx[:, 2 * u:] + r * mh[:, 2 * u:])
        else:
            b = bias if bias is not None else torch.zeros(3 * u, dtype=x.dtype)
            z = torch.sigmoid(xt @ kernel[:, :u] + b[:u] + h @ recurrent_kernel[:, :u])
            r = torch.sigmoid(xt @ kernel[:, u:2 * u] + b[u:2 * u] + h @ recurrent_kernel[:, u:2 * u])
            hh = torch.tanh(xt @ kernel[:, 2 * u:] + b[2 * u:] + (r * h) @ recurrent_kernel[:, 2 * u:])
        h = z * h + (1 - z) * hh
        outputs.append(h)
    return torch.stack(outputs, 1), [h]


def _randomize(layer):
    """Non-zero biases so that bias bugs (gate order, input vs recurrent) show up."""
    with torch.no_grad():
        for p in layer.parameters():
            p.copy_(torch.randn_like(p) * 0.5)


def _weights(layer):
    return layer.kernel.detach(), layer.recurrent_kernel.detach(), None if layer.bias is None else layer.bias.detach()


def _custom_tanh(t):  # a callable kiln does not recognise: forces the Python loop
    return torch.tanh(t)


def _custom_sigmoid(t):
    return torch.sigmoid(t)


# ---------------------------------------------------------------------- numerics
@pytest.mark.parametrize("activation", ["tanh", "relu", _custom_tanh])
@pytest.mark.parametrize("use_bias", [True, False])
def test_simple_rnn_matches_reference(activation, use_bias):
    x = torch.randn(3, 6, 5)
    layer = SimpleRNN(4, activation=activation, use_bias=use_bias, return_sequences=True, return_state=True)
    layer(x)
    _randomize(layer)
    fused_expected = activation in ("tanh", "relu")
    assert layer._can_fuse(False) is fused_expected
    h0 = torch.randn(3, 4)
    seq, h = layer(x, initial_state=[h0])
    act = torch.relu if activation == "relu" else torch.tanh
    ref_seq, (ref_h,) = ref_simple_rnn(x, *_weights(layer), h0, act)
    torch.testing.assert_close(seq, ref_seq, atol=ATOL, rtol=0)
    torch.testing.assert_close(h, ref_h, atol=ATOL, rtol=0)


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("use_bias", [True, False])
def test_lstm_matches_reference(fused, use_bias):
    x = torch.randn(4, 7, 5)
    kwargs = {} if fused else {"activation": _custom_tanh, "recurrent_activation": _custom_sigmoid}
    layer = LSTM(6, use_bias=use_bias, return_sequences=True, return_state=True, **kwargs)
    layer(x)
    _randomize(layer)
    assert layer._can_fuse(False) is fused
    h0, c0 = torch.randn(4, 6), torch.randn(4, 6)
    seq, h, c = layer(x, initial_state=[h0, c0])
    ref_seq, (ref_h, ref_c) = ref_lstm(x, *_weights(layer), h0, c0)
    torch.testing.assert_close(seq, ref_seq, atol=ATOL, rtol=0)
    torch.testing.assert_close(h, ref_h, atol=ATOL, rtol=0)
    torch.testing.assert_close(c, ref_c, atol=ATOL, rtol=0)


@pytest.mark.parametrize("reset_after,fused", [(True, True), (True, False), (False, False)])
@pytest.mark.parametrize("use_bias", [True, False])
def test_gru_matches_reference(reset_after, fused, use_bias):
    x = torch.randn(4, 7, 5)
    kwargs = {} if fused else {"activation": _custom_tanh}
    layer = GRU(6, reset_after=reset_after, use_bias=use_bias, return_sequences=True, return_state=True, **kwargs)
    layer(x)
    _randomize(layer)
    assert layer._can_fuse(False) is fused
    h0 = torch.randn(4, 6)
    seq, h = layer(x, initial_state=h0)
    ref_seq, (ref_h,) = ref_gru(x, *_weights(layer), h0, reset_after)
    torch.testing.assert_close(seq, ref_seq, atol=ATOL, rtol=0)
    torch.testing.assert_close(h, ref_h, atol=ATOL, rtol=0)


def test_zero_initial_state_by_default():
    x = torch.randn(2, 5, 3)
    layer = LSTM(4)
    out = layer(x)
    ref_seq, _ = ref_lstm(x, *_weights(layer), torch.zeros(2, 4), torch.zeros(2, 4))
    torch.testing.assert_close(out, ref_seq[:, -1], atol=ATOL, rtol=0)


@pytest.mark.parametrize("cls", [SimpleRNN, LSTM, GRU])
def test_go_backwards_processes_the_reversed_sequence(cls):
    x = torch.randn(2, 6, 3)
    forward = cls(5, return_sequences=True)
    backward = cls(5, return_sequences=True, go_backwards=True)
    forward(x)
    backward(x)
    backward.load_state_dict(forward.state_dict())
    # Keras returns the backward outputs in processing (reversed) order.
    torch.testing.assert_close(backward(x), forward(x.flip(1)))


@pytest.mark.parametrize("cls", [LSTM, GRU, SimpleRNN])
def test_gradients_flow_through_the_fused_path(cls):
    layer = cls(4)
    x = torch.randn(2, 5, 3, requires_grad=True)
    layer(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for p in layer.parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all()


def test_float64_fused_matches_reference():
    x = torch.randn(2, 5, 3, dtype=torch.float64)
    layer = GRU(4, dtype="float64", return_sequences=True)
    layer(x)
    _randomize(layer)
    ref_seq, _ = ref_gru(x, *_weights(layer), torch.zeros(2, 4, dtype=torch.float64), True)
    torch.testing.assert_close(layer(x), ref_seq, atol=1e-12, rtol=0)


# ---------------------------------------------------------------------- shapes and weights
@pytest.mark.parametrize("cls,n_states", [(SimpleRNN, 1), (LSTM, 2), (GRU, 1)])
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("return_state", [False, True])
def test_output_shapes(cls, n_states, return_sequences, return_state):
    x = torch.randn(3, 7, 5)
    out = cls(4, return_sequences=return_sequences, return_state=return_state)(x)
    expected = (3, 7, 4) if return_sequences else (3, 4)
    if return_state:
        assert isinstance(out, list) and len(out) == 1 + n_states
        assert tuple(out[0].shape) == expected
        assert all(tuple(s.shape) == (3, 4) for s in out[1:])
        # The final h is the last output (in processing order).
        last = out[0][:, -1] if return_sequences else out[0]
        torch.testing.assert_close(out[1], last)
    else:
        assert tuple(out.shape) == expected


def test_parameter_counts_and_weight_shapes_match_keras():
    x = torch.randn(2, 3, 10)
    lstm, gru, rnn = LSTM(32), GRU(32), SimpleRNN(32)
    gru_before = GRU(32, reset_after=False)
    for layer in (lstm, gru, rnn, gru_before):
        layer(x)
    count = lambda layer: sum(p.numel() for p in layer.parameters())  # noqa: E731
    assert count(lstm) == 4 * (10 * 32 + 32 * 32 + 32) == 5504
    # reset_after: two bias rows; 3 * (320 + 1024 + 64) = 4224, the count Keras reports.
    assert count(gru) == 3 * (10 * 32 + 32 * 32 + 2 * 32) == 4224
    assert count(gru_before) == 3 * (10 * 32 + 32 * 32 + 32)
    assert count(rnn) == 10 * 32 + 32 * 32 + 32
    assert [tuple(w.shape) for w in lstm.get_weights()] == [(10, 128), (32, 128), (128,)]
    assert [tuple(w.shape) for w in gru.get_weights()] == [(10, 96), (32, 96), (2, 96)]
    assert [name for name, _ in lstm.named_parameters()] == ["kernel", "recurrent_kernel", "bias"]


def test_lstm_unit_forget_bias():
    layer = LSTM(3)
    layer(torch.randn(1, 2, 4))
    assert torch.equal(layer.bias.detach(), torch.tensor([0.0] * 3 + [1.0] * 3 + [0.0] * 6))
    plain = LSTM(3, unit_forget_bias=False)
    plain(torch.randn(1, 2, 4))
    assert torch.equal(plain.bias.detach(), torch.zeros(12))


def test_recurrent_kernel_is_orthogonal_by_default():
    layer = SimpleRNN(8)
    layer(torch.randn(1, 2, 3))
    eye = layer.recurrent_kernel.detach().T @ layer.recurrent_kernel.detach()
    torch.testing.assert_close(eye, torch.eye(8), atol=1e-5, rtol=0)


def test_weight_regularizers_add_losses():
    layer = LSTM(4, kernel_regularizer="l2", recurrent_regularizer="l1", bias_regularizer="l2")
    layer(torch.randn(2, 3, 5))
    assert len(layer.losses) == 3
    assert all(loss.dim() == 0 for loss in layer.losses)


def test_builds_lazily_on_first_call():
    layer = GRU(4)
    assert not layer.built and len(list(layer.parameters())) == 0
    layer(torch.randn(2, 3, 5))
    assert layer.built and layer.kernel.shape == (5, 12)


# ---------------------------------------------------------------------- dropout
def test_dropout_only_in_training_and_fixed_across_time():
    x = torch.randn(16, 5, 6)
    layer = LSTM(4, dropout=0.5, return_sequences=True)
    layer.eval()
    a, b = layer(x), layer(x)
    torch.testing.assert_close(a, b)
    layer.train()
    torch.manual_seed(1)
    dropped = layer(x)
    assert not torch.allclose(dropped, a)


def test_dropout_mask_is_the_same_at_every_step():
    # kernel = I, recurrent_kernel = 0, linear activation: output_t = x_t * mask.
    layer = SimpleRNN(6, activation="linear", use_bias=False, dropout=0.5, return_sequences=True)
    layer(torch.ones(1, 1, 6))
    with torch.no_grad():
        layer.kernel.copy_(torch.eye(6))
        layer.recurrent_kernel.zero_()
    layer.train()
    out = layer(torch.ones(32, 5, 6))  # (32, 5, 6)
    assert torch.equal(out, out[:, :1].expand_as(out))
    assert set(out.unique().tolist()) == {0.0, 2.0}


def test_recurrent_dropout_uses_the_loop_in_training_and_the_fused_kernel_in_eval():
    x = torch.randn(8, 5, 3)
    layer = GRU(4, recurrent_dropout=0.3, return_sequences=True)
    layer(x)
    assert not layer._can_fuse(True) and layer._can_fuse(False)
    layer.train()
    out = layer(x)
    out.sum().backward()
    assert layer.recurrent_kernel.grad is not None
    layer.eval()
    ref_seq, _ = ref_gru(x, *_weights(layer), torch.zeros(8, 4), True)
    torch.testing.assert_close(layer(x), ref_seq, atol=ATOL, rtol=0)


def test_training_argument_overrides_the_module_mode():
    x = torch.randn(8, 4, 3)
    layer = SimpleRNN(5, dropout=0.5)
    layer.eval()
    ref = layer(x)
    torch.manual_seed(3)
    assert not torch.allclose(layer(x, training=True), ref)
    layer.train()
    torch.testing.assert_close(layer(x, training=False), ref)


# ---------------------------------------------------------------------- Bidirectional
@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave", None])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_bidirectional_merge_modes(merge_mode, return_sequences):
    x = torch.randn(3, 6, 4)
    bi = Bidirectional(LSTM(5, return_sequences=return_sequences), merge_mode=merge_mode)
    out = bi(x)
    y = bi.forward_layer(x)
    y_rev = bi.backward_layer(x)
    assert bi.backward_layer.go_backwards and not bi.forward_layer.go_backwards
    if return_sequences:
        y_rev = y_rev.flip(1)
        # Backward output at time t has seen x[t:], so it equals a forward run on the reversed suffix.
        fwd_copy = LSTM(5, return_sequences=True)
        fwd_copy(x)
        fwd_copy.load_state_dict(bi.backward_layer.state_dict())
        torch.testing.assert_close(y_rev[:, 0], fwd_copy(x.flip(1))[:, -1])
    expected = {"concat": lambda: torch.cat([y, y_rev], -1), "sum": lambda: y + y_rev,
                "mul": lambda: y * y_rev, "ave": lambda: (y + y_rev) / 2, None: lambda: [y, y_rev]}[merge_mode]()
    if merge_mode is None:
        assert isinstance(out, list) and len(out) == 2
        for o, e in zip(out, expected):
            torch.testing.assert_close(o, e)
    else:
        torch.testing.assert_close(out, expected)
        width = 10 if merge_mode == "concat" else 5
        assert out.shape == ((3, 6, width) if return_sequences else (3, width))


def test_bidirectional_states_and_initial_state():
    x = torch.randn(2, 4, 3)
    bi = Bidirectional(LSTM(5, return_state=True))
    out, fh, fc, bh, bc = bi(x)
    assert out.shape == (2, 10) and all(s.shape == (2, 5) for s in (fh, fc, bh, bc))
    states = [torch.randn(2, 5) for _ in range(4)]
    out2, *new_states = bi(x, initial_state=states)
    _, fh_ref, fc_ref = bi.forward_layer(x, initial_state=states[:2])
    torch.testing.assert_close(new_states[0], fh_ref)
    torch.testing.assert_close(new_states[1], fc_ref)
    with pytest.raises(KilnValueError, match="even number"):
        bi(x, initial_state=states[:3])


def test_bidirectional_weights_names_and_counts():
    bi = Bidirectional(GRU(8, name="gru"))
    bi(torch.randn(2, 3, 4))
    assert bi.forward_layer.name == "forward_gru" and bi.backward_layer.name == "backward_gru"
    assert sum(p.numel() for p in bi.parameters()) == 2 * 3 * (4 * 8 + 8 * 8 + 2 * 8)
    assert "forward_layer.kernel" in bi.state_dict() and "backward_layer.bias" in bi.state_dict()


def test_bidirectional_custom_backward_layer_and_gradients():
    fwd = LSTM(4, return_sequences=True)
    bwd = GRU(4, return_sequences=True, go_backwards=True)
    bi = Bidirectional(fwd, backward_layer=bwd, merge_mode="sum")
    x = torch.randn(2, 5, 3)
    bi(x).sum().backward()
    assert bi.backward_layer is bwd
    assert all(p.grad is not None for p in bi.parameters())


def test_bidirectional_config_round_trip():
    bi = Bidirectional(LSTM(4, return_sequences=True), merge_mode="ave")
    x = torch.randn(2, 5, 3)
    out = bi(x)
    clone = Bidirectional.from_config(bi.get_config())
    assert clone.get_config() == bi.get_config()
    clone(x)
    clone.load_state_dict(bi.state_dict())
    torch.testing.assert_close(clone(x), out)


def test_bidirectional_errors():
    with pytest.raises(KilnTypeError, match="recurrent layer"):
        Bidirectional(torch.nn.Linear(3, 3))
    with pytest.raises(KilnValueError, match="merge_mode"):
        Bidirectional(LSTM(3), merge_mode="max")
    with pytest.raises(KilnValueError, match="go_backwards"):
        Bidirectional(LSTM(3), backward_layer=LSTM(3))
    with pytest.raises(KilnValueError, match="return_sequences"):
        Bidirectional(LSTM(3), backward_layer=LSTM(3, go_backwards=True, return_sequences=True))


# ---------------------------------------------------------------------- config
@pytest.mark.parametrize("layer", [
    SimpleRNN(3, activation="relu", dropout=0.1, return_sequences=True, name="rnn"),
    LSTM(4, unit_forget_bias=False, recurrent_dropout=0.2, go_backwards=True, kernel_regularizer="l2"),
    GRU(5, reset_after=False, use_bias=False, return_state=True, recurrent_activation="hard_sigmoid"),
])
def test_config_round_trip(layer):
    x = torch.randn(2, 4, 3)
    layer.eval()
    out = layer(x)
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    clone.eval()
    clone(x)
    clone.set_weights(layer.get_weights())
    got = clone(x)
    for a, b in zip(got if isinstance(got, list) else [got], out if isinstance(out, list) else [out]):
        torch.testing.assert_close(a, b)


def test_config_has_keras_keys():
    config = GRU(3).get_config()
    for key in ("units", "activation", "recurrent_activation", "use_bias", "kernel_initializer",
                "recurrent_initializer", "bias_initializer", "dropout", "recurrent_dropout",
                "return_sequences", "return_state", "go_backwards", "reset_after"):
        assert key in config
    assert config["reset_after"] is True and config["activation"] == "tanh"


# ---------------------------------------------------------------------- errors
@pytest.mark.parametrize("cls", [SimpleRNN, LSTM, GRU])
@pytest.mark.parametrize("units", [0, -3, 2.5, "8", True])
def test_invalid_units(cls, units):
    with pytest.raises(KilnValueError) as info:
        cls(units)
    assert str(info.value) == (f"Received an invalid value for `units`, expected a positive integer. "
                               f"Received: units={units!r}")


def test_invalid_arguments():
    with pytest.raises(KilnValueError, match=r"`dropout`, expected a float in \[0, 1\). Received: dropout=1.5"):
        LSTM(3, dropout=1.5)
    with pytest.raises(KilnValueError, match="recurrent_dropout=-0.1"):
        GRU(3, recurrent_dropout=-0.1)
    with pytest.raises(KilnValueError, match="stateful"):
        LSTM(3, stateful=True)
    with pytest.raises(KilnValueError, match="Unknown activation"):
        SimpleRNN(3, activation="tanhh")
    with pytest.raises(KilnTypeError, match="Unrecognized keyword"):
        LSTM(3, recurrent_activations="sigmoid")


def test_bad_inputs_and_states():
    layer = LSTM(4)
    with pytest.raises(ShapeError, match=r"\(batch, timesteps, features\)"):
        layer(torch.randn(2, 5))
    layer(torch.randn(2, 5, 3))
    with pytest.raises(ShapeError, match="expects 3 features"):
        layer(torch.randn(2, 5, 7))
    with pytest.raises(KilnValueError, match=r"\[h, c\]"):
        layer(torch.randn(2, 5, 3), initial_state=[torch.zeros(2, 4)])
    with pytest.raises(ShapeError, match=r"\(batch, units\)=\(2, 4\)"):
        layer(torch.randn(2, 5, 3), initial_state=[torch.zeros(2, 4), torch.zeros(2, 5)])
    assert issubclass(ShapeError, KilnError)


# ---------------------------------------------------------------------- functional API
def test_symbolic_call_with_states():
    from kiln.layers.symbolic import Input, KerasTensor

    inputs = Input(shape=(6, 3))
    out, h, c = LSTM(4, return_sequences=True, return_state=True)(inputs)
    assert isinstance(out, KerasTensor) and out.shape == (None, 6, 4) and h.shape == (None, 4)
    merged = Bidirectional(GRU(2))(inputs)
    assert merged.shape == (None, 4)
