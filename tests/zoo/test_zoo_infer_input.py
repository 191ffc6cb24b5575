"""Image builders without input_shape: (H, W, C) inferred at the first call; saved models reload."""

import pytest
import torch

import kiln
from kiln.errors import KilnValueError

BUILDERS = {
    "resnet18": lambda: kiln.zoo.resnet18(num_classes=3, width=4),
    "vgg11": lambda: kiln.zoo.vgg11(num_classes=3, width=4),
    "vit": lambda: kiln.zoo.vit(num_classes=3, patch_size=4, depth=1, heads=1, width=8),
}


CASES = [(n, s) for n in sorted(BUILDERS) for s in [(32, 32, 3), (64, 64, 3), (28, 28, 1)]
         if not (n == "vgg11" and s[0] < 32)]  # VGG needs H, W >= 32: test_vgg_too_small_inferred


@pytest.mark.parametrize("name,shape", CASES)
def test_builds_for_first_batch_and_reloads(name, shape, tmp_path):
    torch.manual_seed(0)
    model = BUILDERS[name]()
    x = torch.rand(2, *shape)
    model.eval()
    out = model(x)
    assert out.shape == (2, 3)
    assert model.get_config()["input_shape"] == list(shape)
    model.save(tmp_path / "m")
    loaded = kiln.saving.load_model(tmp_path / "m")
    loaded.eval()
    torch.testing.assert_close(loaded(x), out, rtol=0, atol=0)


def test_given_input_shape_keeps_state_dict():
    torch.manual_seed(0)
    eager = kiln.zoo.resnet18(num_classes=3, width=4, input_shape=(32, 32, 3))
    lazy = kiln.zoo.resnet18(num_classes=3, width=4)
    lazy(torch.rand(1, 32, 32, 3))
    assert {k: v.shape for k, v in eager.state_dict().items()} == {k: v.shape for k, v in lazy.state_dict().items()}


def test_vgg_too_small_inferred():
    with pytest.raises(KilnValueError, match="at least 32"):
        kiln.zoo.vgg11(num_classes=3, width=4)(torch.rand(1, 28, 28, 1))


def test_vit_patch_must_divide_and_size_fixed():
    with pytest.raises(KilnValueError, match="patch_size"):
        kiln.zoo.vit(num_classes=3, patch_size=5, depth=1, heads=1, width=8)(torch.rand(1, 32, 32, 3))
    model = kiln.zoo.vit(num_classes=3, patch_size=4, depth=1, heads=1, width=8)
    model(torch.rand(1, 32, 32, 3))
    with pytest.raises(KilnValueError, match="made for 32x32 images"):
        model(torch.rand(1, 64, 64, 3))
