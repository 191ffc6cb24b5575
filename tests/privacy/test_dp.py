"""kiln.privacy.DP: settings are checked when made, with messages naming the value and the fix."""

import pytest

from kiln.errors import KilnTypeError, KilnValueError
from kiln.privacy import DP


def test_defaults_are_opacus_usual_ones():
    dp = DP(epsilon=3)
    assert dp.to_dict() == {"epsilon": 3, "delta": 1e-5, "max_grad_norm": 1.0, "fix_layers": False,
                            "accountant": "prv"}


@pytest.mark.parametrize("kwargs, message", [
    ({"epsilon": 0}, "`epsilon` must be > 0 (the privacy budget; 1-10 is usual); received epsilon=0"),
    ({"epsilon": -1.5}, "received epsilon=-1.5"),
    ({"epsilon": 3, "delta": 1}, "`delta` must be in (0, 1) and below 1/n for n training samples (1e-5 is usual); "
                                 "received delta=1"),
    ({"epsilon": 3, "delta": 0.0}, "received delta=0.0"),
    ({"epsilon": 3, "max_grad_norm": 0}, "`max_grad_norm` must be > 0"),
    ({"epsilon": float("inf")}, "`epsilon` must be finite; received epsilon=inf"),
    ({"epsilon": 3, "accountant": "gdp"}, "`accountant` must be 'rdp' or 'prv'; received accountant='gdp'"),
])
def test_impossible_values_are_refused(kwargs, message):
    with pytest.raises(KilnValueError) as err:
        DP(**kwargs)
    assert message in str(err.value)


def test_all_problems_are_reported_together():
    with pytest.raises(KilnValueError) as err:
        DP(epsilon=0, delta=2, max_grad_norm=-1)
    assert "epsilon=0" in str(err.value) and "delta=2" in str(err.value) and "max_grad_norm=-1" in str(err.value)


@pytest.mark.parametrize("kwargs, name", [({"epsilon": "3"}, "epsilon"), ({"epsilon": True}, "epsilon"),
                                          ({"epsilon": 3, "delta": None}, "delta"),
                                          ({"epsilon": 3, "fix_layers": "yes"}, "fix_layers")])
def test_wrong_types_are_refused(kwargs, name):
    with pytest.raises(KilnTypeError, match=f"invalid value for privacy `{name}`"):
        DP(**kwargs)


def test_from_config_reads_dicts_and_names_unknown_keys():
    assert DP.from_config({"epsilon": 8, "delta": 1e-6}) == DP(epsilon=8, delta=1e-6)
    with pytest.raises(KilnValueError, match=r"Unknown privacy key\(s\) \['epsilon_target'\]"):
        DP.from_config({"epsilon_target": 3})
    with pytest.raises(KilnValueError, match="privacy needs `epsilon`"):
        DP.from_config({"delta": 1e-5})
    with pytest.raises(KilnTypeError, match="`privacy` must be kiln.privacy.DP"):
        DP.from_config(3)


def test_delta_must_be_below_one_over_n():
    DP(epsilon=3, delta=1e-3).check_dataset_size(999)
    with pytest.raises(KilnValueError) as err:
        DP(epsilon=3, delta=1e-3).check_dataset_size(1000)
    assert str(err.value) == ("privacy delta=0.001 is not below 1/n = 0.001 for the 1000 training samples; a "
                              "meaningful guarantee needs delta << 1/n. Use e.g. delta=0.0001.")
