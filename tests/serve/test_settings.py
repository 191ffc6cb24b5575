"""kiln_edge.server.settings: every bad setting reported at once, with the flag that sets it."""

import pytest

from kiln_edge.server import ServeSettings, ServeSettingsError


def test_bad_settings_are_reported_together_with_their_flags():
    with pytest.raises(ServeSettingsError) as err:
        ServeSettings(max_batch_size=0, max_latency_ms=-1, timeout_ms=0, model_threads=0)
    message = str(err.value)
    for flag in ("--max-batch-size", "--max-latency-ms", "--timeout-ms", "model_threads"):
        assert flag in message
    assert isinstance(err.value, ValueError)


def test_defaults_are_valid():
    settings = ServeSettings()
    assert (settings.max_batch_size, settings.max_latency_ms, settings.model_threads) == (32, 5.0, 1)
