"""kiln_edge.server.batching: joined batches hand each caller its own rows; a bad request fails alone."""

import asyncio

import pandas as pd
import pytest

from kiln_edge.server import MicroBatcher, ServeSettingsError


def test_micro_batcher_returns_each_callers_rows():
    sizes = []

    def predict_frame(frame):
        if (frame["x"] < 0).any():
            raise ValueError("negative")
        return pd.DataFrame({"y": frame["x"] * 2})

    async def main():
        batcher = MicroBatcher(predict_frame, max_batch_size=8, max_latency_ms=50, on_batch=sizes.append)
        frames = [pd.DataFrame({"x": [i, i + 100]}) for i in range(10)] + [pd.DataFrame({"x": [-1]})]
        results = await asyncio.gather(*(batcher.submit(f) for f in frames), return_exceptions=True)
        await batcher.stop()
        return results

    results = asyncio.run(main())
    for i, result in enumerate(results[:10]):
        assert result["y"].tolist() == [2 * i, 2 * (i + 100)]
    assert isinstance(results[10], ValueError)
    assert max(sizes) == 8  # joined up to max_batch_size records, never more


@pytest.mark.parametrize("kwargs, name", [({"max_batch_size": 0}, "max_batch_size"),
                                          ({"max_latency_ms": -1}, "max_latency_ms")])
def test_micro_batcher_refuses_bad_settings_naming_them(kwargs, name):
    with pytest.raises(ServeSettingsError, match=name):
        MicroBatcher(lambda frame: frame, **kwargs)
