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


@pytest.mark.parametrize("convert", [None, lambda frame: frame["y"].tolist()])
def test_a_request_larger_than_a_batch_runs_in_batch_sized_pieces_in_order(convert):
    sizes = []

    async def main():
        batcher = MicroBatcher(lambda frame: pd.DataFrame({"y": frame["x"] * 2}), max_batch_size=4,
                               on_batch=sizes.append, convert=convert)
        result = await batcher.submit(pd.DataFrame({"x": range(10)}))
        await batcher.stop()
        return result

    result = asyncio.run(main())
    expected = [2 * i for i in range(10)]
    assert (result if convert else result["y"].tolist()) == expected
    assert sizes == [4, 4, 2]


def test_a_timed_out_request_is_dropped_after_the_batch_it_is_in():
    """A 40-row request times out during its first 4-row piece: the model runs nothing more of it,
    and the request queued behind waits for that one piece only (was: all 40 rows in one pass)."""
    import threading
    calls, running, release = [], threading.Event(), threading.Event()

    def predict_frame(frame):
        calls.append(frame["x"].tolist())
        running.set()
        assert release.wait(10), "the test never released the model"
        return pd.DataFrame({"y": frame["x"] * 2})

    async def main():
        batcher = MicroBatcher(predict_frame, max_batch_size=4, max_latency_ms=0)
        big = asyncio.ensure_future(asyncio.wait_for(batcher.submit(pd.DataFrame({"x": range(40)})), 0.05))
        with pytest.raises(asyncio.TimeoutError):
            await big  # the first piece is held in the model by `release`
        assert running.is_set()
        small = asyncio.ensure_future(batcher.submit(pd.DataFrame({"x": [100]})))
        await asyncio.sleep(0.01)
        release.set()
        result = await asyncio.wait_for(small, 10)
        await batcher.stop()
        return result

    result = asyncio.run(main())
    assert result["y"].tolist() == [200]
    assert calls == [[0, 1, 2, 3], [100]]


def test_straggler_window_is_one_measured_pass_capped_by_max_latency():
    from kiln_edge.server.batching import straggler_window
    assert straggler_window(0.005, None) == 0.005      # nothing measured yet: the setting
    assert straggler_window(0.005, 0.0005) == 0.0005   # a 0.5 ms model waits at most 0.5 ms
    assert straggler_window(0.005, 0.050) == 0.005     # a 50 ms model waits the full setting
    assert straggler_window(0.0, 0.001) == 0.0         # max_latency_ms 0: never waits


def test_pass_seconds_is_a_moving_average_of_forward_passes():
    from kiln_edge.server.batching import moving_average
    assert moving_average(None, 0.010) == 0.010
    assert moving_average(0.010, 0.020) == pytest.approx(0.8 * 0.010 + 0.2 * 0.020)


def test_batcher_measures_its_forward_passes():
    import asyncio
    import pandas as pd
    from kiln_edge.server.batching import MicroBatcher

    async def go():
        batcher = MicroBatcher(lambda frame: frame.assign(y=frame["x"] * 2), max_batch_size=4)
        assert batcher.pass_seconds is None
        try:
            out = await batcher.submit(pd.DataFrame({"x": [1.0, 2.0]}))
        finally:
            await batcher.stop()
        return batcher.pass_seconds, out
    seconds, out = asyncio.run(go())
    assert seconds is not None and seconds >= 0
    assert out["y"].tolist() == [2.0, 4.0]


def test_fast_passes_run_on_the_event_loop_and_give_the_same_rows():
    """Once a pass measures under INLINE_BELOW_S the batch runs inline; the answers do not change."""
    import asyncio
    import threading
    import pandas as pd
    from kiln_edge.server.batching import INLINE_BELOW_S, MicroBatcher
    threads = []

    def predict(frame):
        threads.append(threading.current_thread().name)
        return frame.assign(y=frame["x"] * 2)

    async def go():
        batcher = MicroBatcher(predict, max_batch_size=4)
        try:
            first = await batcher.submit(pd.DataFrame({"x": [1.0]}))   # not measured yet: the thread
            batcher.pass_seconds = INLINE_BELOW_S / 2                   # as if measured fast
            second = await batcher.submit(pd.DataFrame({"x": [3.0]}))
            batcher.pass_seconds = INLINE_BELOW_S * 10                  # slow again: back to the thread
            third = await batcher.submit(pd.DataFrame({"x": [5.0]}))
        finally:
            await batcher.stop()
        return first, second, third, threading.current_thread().name
    first, second, third, loop_thread = asyncio.run(go())
    assert threads[0].startswith("kiln-serve-model") and threads[1] == loop_thread
    assert threads[2].startswith("kiln-serve-model")
    assert [first["y"].tolist(), second["y"].tolist(), third["y"].tolist()] == [[2.0], [6.0], [10.0]]
