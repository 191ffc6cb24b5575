"""The schema's torch-free optimizer table against kiln.optimizers: same names, arguments, ranges and messages."""

import inspect

import pytest

from kiln import optimizers
from kiln.config.optimizer_arguments import OPTIMIZERS, check_optimizer
from kiln.errors import KilnError

# Values around every range's edges, and of the wrong type.
PROBES = [-1.0, -1e-9, 0, 0.0, 1e-9, 0.5, 0.999, 1, 1.0, 1.5, 7, True, False, None, "0.5", [0.1]]


def argument_names(cls):
    names = set()
    for klass in cls.__mro__[:-1]:
        init = klass.__dict__.get("__init__")
        if init is not None:
            names |= {p.name for p in inspect.signature(init).parameters.values()
                      if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
    return names - {"learning_rate", "name"}


def built(name, arguments):
    """The optimizer's own verdict: None if it builds, else its message."""
    try:
        optimizers.deserialize({"class_name": OPTIMIZERS[name][0], "config": arguments})
    except (KilnError, TypeError, ValueError) as error:
        return str(error)
    return None


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_the_table_names_each_optimizer_s_class_and_arguments(name):
    cls = type(optimizers.get(name))
    assert cls.__name__ == OPTIMIZERS[name][0]
    assert set(OPTIMIZERS[name][1]) == argument_names(cls)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_argument_accepts_and_refuses_what_the_optimizer_does_with_its_message(name):
    for key in OPTIMIZERS[name][1]:
        for value in PROBES:
            expected = built(name, {key: value})
            got = check_optimizer(name, {key: value})
            assert (got[0][0] if got else None) == expected, (name, key, value)


def test_two_clip_options_and_unknown_names_are_refused_like_the_optimizers():
    assert check_optimizer("sgd", {"clipnorm": 1.0, "clipvalue": 0.5})[0][0] == built("sgd", {"clipnorm": 1.0,
                                                                                             "clipvalue": 0.5})
    with pytest.raises(KilnError) as info:
        optimizers.get("adma")
    assert check_optimizer("adma", {}) == [(str(info.value), "name")]
    assert check_optimizer("adam", {"beta1": 0.9})[0] == (
        "Adam has no argument 'beta1'. Did you mean 'beta_1'? Valid arguments: amsgrad, beta_1, beta_2, clipnorm, "
        "clipvalue, epsilon, global_clipnorm, weight_decay", "beta1")
