"""kiln.explain.attribute against closed forms and Captum's own layer method."""

import pytest
import torch

import kiln
from kiln import layers as L
from kiln.errors import KilnValueError
from kiln.explain import attribute



def _linear(n_in=4, n_out=2, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Linear(n_in, n_out)


def test_ig_of_a_linear_model_is_weight_times_input_minus_baseline():
    model = _linear()
    x, base = torch.randn(5, 4), torch.randn(1, 4)
    result = attribute(model, x, method="ig", target=1, baselines={"input": base})
    expected = model.weight[1].detach() * (x - base)
    torch.testing.assert_close(result.values["input"], expected, atol=1e-5, rtol=1e-5)
    assert result.completeness_ok and float(result.completeness_error().max()) < 0.01


def test_ig_completeness_within_one_percent_on_a_nonlinear_model_raises_steps_when_needed():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 32), torch.nn.Tanh(), torch.nn.Linear(32, 32), torch.nn.Tanh(),
                                torch.nn.Linear(32, 3))
    x = 3 * torch.randn(20, 6)
    result = attribute(model, x, method="ig", n_steps=2)  # 2 steps cannot be enough: it must raise them
    assert result.n_steps > 2
    gap = model(x).gather(1, result.target[:, None])[:, 0] - model(torch.zeros(1, 6))[0, result.target]
    total = result.values["input"].sum(dim=1)
    assert torch.all((total - gap).abs() <= 0.01 * gap.abs()), (total, gap)
    assert result.completeness_ok


def test_ig_says_so_when_the_step_cap_misses_completeness():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 32), torch.nn.Tanh(), torch.nn.Linear(32, 3))
    result = attribute(model, 10 * torch.randn(20, 6), method="ig", n_steps=1, max_steps=1)
    assert not result.completeness_ok
    assert "raise max_steps" in result.notes[0]


def _category_model(vocab=5, dim=3):
    c = kiln.Input(shape=(), dtype="int64", name="cat")
    h = L.Flatten()(L.Embedding(vocab, dim)(L.Reshape((1,))(c)))
    return kiln.Model(c, L.Dense(3)(L.Dense(8, activation="tanh")(h)))


def test_a_category_is_attributed_through_its_embedding_as_captum_layer_ig_does():
    from captum.attr import LayerIntegratedGradients
    model = _category_model()
    ids = torch.tensor([1, 2, 3, 4, 2])
    result = attribute(model, {"cat": ids}, method="ig", target=0, n_steps=64)
    embedding = next(m for m in model.modules() if isinstance(m, L.Embedding))
    reference = LayerIntegratedGradients(lambda i: model({"cat": i}), embedding).attribute(
        ids, baselines=torch.zeros_like(ids), target=0, n_steps=64, method="gausslegendre")
    torch.testing.assert_close(result.values["cat"], reference.sum(dim=-1).reshape(-1), atol=1e-5, rtol=1e-4)
    assert result.values["cat"].abs().min() > 0  # plain IG would give an integer input nothing


def test_a_binary_flag_at_zero_is_not_given_zero_with_a_half_baseline():
    model = _linear(3, 1)
    x = torch.tensor([[0.0, 1.0, 0.0]])
    result = attribute(model, x, method="ig", baselines={"input": torch.full((1, 3), 0.5)})
    torch.testing.assert_close(result.values["input"], model.weight.detach() * (x - 0.5), atol=1e-5, rtol=1e-5)


def test_text_tokens_through_the_embedding_padding_gets_nothing():
    t = kiln.Input(shape=(6,), dtype="int64", name="text")
    model = kiln.Model(t, L.Dense(2)(L.GlobalAveragePooling1D()(L.Embedding(20, 4)(t))))
    ids = torch.tensor([[3, 5, 7, 0, 0, 0], [9, 2, 0, 0, 0, 0]])
    result = attribute(model, {"text": ids}, method="ig")
    values = result.values["text"]
    assert values.shape == (2, 6)
    assert torch.all(values[ids == 0] == 0) and torch.all(values[ids != 0] != 0)
    assert result.completeness_ok


def test_shap_of_a_linear_model_is_weight_times_input_minus_background_mean():
    model = _linear(4, 1)
    x, background = torch.randn(6, 4), torch.randn(10, 4)
    a, b = kiln.Input(shape=(2,), name="a"), kiln.Input(shape=(2,), name="b")
    dense = L.Dense(1)
    wrapped = kiln.Model({"a": a, "b": b}, dense(L.Concatenate()([a, b])))
    wrapped({"a": x[:, :2], "b": x[:, 2:]})
    with torch.no_grad():
        dense.kernel.copy_(model.weight.T)
        dense.bias.copy_(model.bias)
    result = attribute(wrapped, {"a": x[:, :2], "b": x[:, 2:]}, method="shap",
                       background={"a": background[:, :2], "b": background[:, 2:]}, n_samples=4)
    contribution = model.weight[0].detach() * (x - background.mean(0))  # (rows, 4)
    torch.testing.assert_close(result.totals()["a"], contribution[:, :2].sum(1), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(result.totals()["b"], contribution[:, 2:].sum(1), atol=1e-5, rtol=1e-5)
    expected = model(background).mean().detach()
    torch.testing.assert_close(result.expected_value, expected.expand(6), atol=1e-5, rtol=1e-5)
    assert float(result.delta.abs().max()) < 1e-4  # the values add up to f(x) - expected value


def test_saliency_of_a_linear_model_is_the_absolute_weight():
    model = _linear(4, 3)
    result = attribute(model, torch.randn(5, 4), method="saliency", target=2)
    torch.testing.assert_close(result.values["input"], model.weight[2].detach().abs().expand(5, 4))


def _image_model():
    image = kiln.Input(shape=(8, 8, 1), name="image")
    return kiln.Model(image, L.Dense(2)(L.Flatten()(image)))


def test_occlusion_of_a_linear_image_model_is_each_windows_contribution():
    model = _image_model()
    x = torch.rand(2, 8, 8, 1)
    result = attribute(model, {"image": x}, method="occlusion", target=1)
    dense = next(m for m in model.modules() if isinstance(m, L.Dense))
    weight = dense.kernel[:, 1].detach().reshape(8, 8, 1)
    # a window of 1x1 (8 // 8) occluded to 0 removes exactly weight * x at that pixel
    torch.testing.assert_close(result.values["image"], weight * x, atol=1e-5, rtol=1e-5)


def test_smoothgrad_gives_the_input_shape():
    result = attribute(_image_model(), {"image": torch.rand(3, 8, 8, 1)}, method="smoothgrad", nt_samples=4)
    assert result.values["image"].shape == (3, 8, 8, 1)


@pytest.mark.parametrize("kwargs, message", [
    ({"method": "lime"}, "Unknown explanation method 'lime'; expected one of"),
    ({"method": "ig", "target": 7}, "Target class 7 does not exist: the output has 2 unit(s), indices 0..1"),
    ({"method": "shap"}, "Method 'shap' plays whole tabular features against a background; it does not apply "
                         "to input(s) {'image': 'image'}"),
    ({"method": "ig", "baselines": {"imag": 0}}, "`baselines` names 'imag', which is not an input of the model "
                                                 "(inputs: ['image']); did you mean 'image'?"),
])
def test_bad_requests_are_kiln_errors_naming_the_value(kwargs, message):
    with pytest.raises(KilnValueError) as info:
        attribute(_image_model(), {"image": torch.rand(2, 8, 8, 1)}, **kwargs)
    assert message in str(info.value)


def test_occlusion_does_not_apply_to_tabular_inputs():
    with pytest.raises(KilnValueError, match="Method 'occlusion' slides a window over an image, spectrogram or "
                                             "text; the inputs here are tabular"):
        attribute(_linear(), torch.randn(2, 4), method="occlusion")


def test_an_integer_input_without_an_embedding_says_how_to_fix_it():
    class Counts(torch.nn.Module):
        def forward(self, x):
            return x.float().sum(dim=1, keepdim=True)
    with pytest.raises(KilnValueError, match=r"no embedding layer reads it.*encoding: onehot"):
        attribute(Counts(), torch.tensor([[1, 2], [3, 4]]), method="ig")
