"""Dynamic micro-batching: concurrent requests joined into one forward pass.

Each request puts its rows (a DataFrame) on an asyncio queue with a future. One worker task
takes the first waiting request, then keeps taking more until the batch holds ``max_batch_size``
records or the straggler window (below; at most ``max_latency_ms``) has passed since the first
arrived, runs the backend once on the
joined rows in a thread (so the event loop keeps accepting requests), and hands each caller the
slice of the result that belongs to its rows. ``max_batch_size=1`` turns batching off.

    batcher = MicroBatcher(run.predict_frame, max_batch_size=32, max_latency_ms=5)
    predictions = await batcher.submit(frame)      # a DataFrame, rows in the order sent

How long a batch waits for stragglers is sized by measured latency: the worker times every
forward pass (``pass_seconds``, a moving average), and after the first request of a batch it
waits for more at most ``min(max_latency_ms, pass_seconds)`` (``straggler_window``). Why that
bound: a request that arrives after the batch has gone is served by the next pass, at most one
pass later; waiting longer than a pass for it would cost everyone already in the batch more than
it saves the straggler. So a fast model (a tabular MLP: ~0.5 ms a pass) never holds requests for
the full ``max_latency_ms``, and a slow one (an image model: 50 ms) batches up to it.

Where a batch runs is chosen the same way: in the model thread while passes are slow (or not yet
measured), so the event loop keeps reading requests meanwhile; on the event loop itself once a
pass measures under ``INLINE_BELOW_S`` (1 ms). Why: handing a batch to a thread and its result
back costs two thread switches (~0.1-0.3 ms, and far more on a busy CPU, where a woken thread
waits for the scheduler), more than such a pass; a plain FastAPI server that calls the model in
its handler pays neither. A pass that slows down (a larger model, a loaded machine) moves the
batches back to the thread at the next measurement.

Why a failed batch is retried request by request: one bad request (an image that cannot be
decoded) must fail alone, not take the other callers' rows down with it.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

from kiln_edge.server.settings import ServeSettingsError

__all__ = ["MicroBatcher", "straggler_window"]

INLINE_BELOW_S = 0.001  # forward passes measured faster than this run on the event loop (module docstring)
_SMOOTHING = 0.2  # weight of the newest forward pass in ``pass_seconds`` (about the last 5 passes)


def straggler_window(max_latency: float, pass_seconds: float | None) -> float:
    """Seconds a batch waits for more requests after its first: at most one measured forward pass,
    never more than ``max_latency`` (both in seconds; ``pass_seconds`` None before the first pass)."""
    return max_latency if pass_seconds is None else min(max_latency, pass_seconds)


def moving_average(previous: float | None, sample: float) -> float:
    """``pass_seconds`` after one more forward pass took ``sample`` seconds."""
    return sample if previous is None else (1 - _SMOOTHING) * previous + _SMOOTHING * sample


@dataclass
class _Item:
    frame: Any                     # the request's rows (a pandas DataFrame, or records.Rows)
    future: asyncio.Future
    rows: int = field(init=False)

    def __post_init__(self):
        self.rows = len(self.frame)


class MicroBatcher:
    """Queue requests and run ``predict_frame`` on joined batches, one at a time (in one worker
    thread, or on the event loop once passes measure under ``INLINE_BELOW_S``).

    Args:
        predict_frame: ``DataFrame -> DataFrame`` with one result row per input row (the backend).
        max_batch_size: most records per forward pass (default 32); a larger request runs alone,
            ``max_batch_size`` records at a time, and stops when its caller has gone (timed out).
        max_latency_ms: longest wait for more requests after the first one arrived (default 5).
        on_batch: called with the record count of every forward pass (metrics).
        convert: optional, run in the model thread on each batch's result: ``DataFrame -> list``
            of one item per row (the server's JSON-ready dicts); callers then get their slice of
            that list instead of a DataFrame, and the event loop does no per-row work.
        predict_rows: optional ``records.Rows -> list`` of one JSON-ready item per row (the
            backend's ``predict_columns`` on ``Rows.arrays()``): used for batches of ``Rows`` (the
            server's JSON records) instead of framing them for ``predict_frame`` — no DataFrame
            in the hot path. Its result is not passed to ``convert``.

    When requests wait: the worker takes every request already queued (up to
    ``max_batch_size`` records) and runs at once; it waits for stragglers (at most
    ``max_latency_ms`` after the first) only while more keep arriving, so a lone request on an
    idle server and a full batch never sit out the latency window.
    """

    def __init__(self, predict_frame: Callable, max_batch_size: int = 32, max_latency_ms: float = 5.0,
                 on_batch: Callable[[int], None] | None = None, convert: Callable | None = None,
                 predict_rows: Callable | None = None):
        if max_batch_size < 1:
            raise ServeSettingsError(f"Received an invalid value for `max_batch_size`, expected a positive integer. "
                             f"Received: max_batch_size={max_batch_size!r}")
        if max_latency_ms < 0:
            raise ServeSettingsError(f"Received an invalid value for `max_latency_ms`, expected >= 0. "
                             f"Received: max_latency_ms={max_latency_ms!r}")
        self.predict_frame = predict_frame
        self.max_batch_size = int(max_batch_size)
        self.max_latency = max_latency_ms / 1000.0
        self.on_batch = on_batch
        self.convert = convert
        self.predict_rows = predict_rows
        self.pass_seconds: float | None = None  # moving average of a forward pass (see the module docstring)
        self._queue: asyncio.Queue | None = None
        self._task: asyncio.Task | None = None
        self._held: _Item | None = None  # taken from the queue but did not fit the last batch
        # One thread: the model runs one batch at a time, in order.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kiln-serve-model")

    # ---- life --------------------------------------------------------------------------------
    def start(self) -> None:
        if self._task is None or self._task.done():
            self._queue = asyncio.Queue()
            self._task = asyncio.get_running_loop().create_task(self._worker())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        self._executor.shutdown(wait=False, cancel_futures=True)

    # ---- callers -----------------------------------------------------------------------------
    async def submit(self, frame):
        """Queue ``frame`` and wait for its predictions (raises what the backend raised for it)."""
        self.start()
        future = asyncio.get_running_loop().create_future()
        await self._queue.put(_Item(frame, future))
        return await future

    # ---- the worker --------------------------------------------------------------------------
    def _take_now(self) -> _Item | None:
        if self._held is not None:
            item, self._held = self._held, None
            return item
        return self._queue.get_nowait() if not self._queue.empty() else None

    async def _collect(self) -> list[_Item]:
        first = self._take_now()
        if first is None:
            first = await self._queue.get()
        batch, rows = [first], first.rows
        deadline = time.monotonic() + straggler_window(self.max_latency, self.pass_seconds)
        while rows < self.max_batch_size:
            item = self._take_now()
            if item is None:
                # Nothing queued: let the event loop read requests already on the wire (one turn),
                # and go as soon as none arrived, or the latency window is over.
                if time.monotonic() >= deadline:
                    break
                await asyncio.sleep(0)
                item = self._take_now()
                if item is None:
                    break
            if rows + item.rows > self.max_batch_size:
                self._held = item  # starts the next batch
                break
            batch.append(item)
            rows += item.rows
        return [item for item in batch if not item.future.done()]  # timed-out callers are gone

    async def _worker(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._collect()
            if not batch:
                continue
            if self.pass_seconds is not None and self.pass_seconds < INLINE_BELOW_S:
                outcomes = self._run(batch)  # cheaper than the two thread switches
            else:
                outcomes = await loop.run_in_executor(self._executor, self._run, batch)
            for item, (result, error) in zip(batch, outcomes):
                if item.future.done():
                    continue
                if error is not None:
                    item.future.set_exception(error)
                else:
                    item.future.set_result(result)

    def _run(self, batch: list[_Item]) -> list[tuple[Any, BaseException | None]]:
        """In the model thread: one forward pass over the joined rows, split back per caller."""
        if len(batch) > 1:
            joined = self._join([item.frame for item in batch])
            try:
                result = self._predict(joined)
            except Exception:
                return [self._run_one(item) for item in batch]  # find whose rows failed
            outcomes, start = [], 0
            for item in batch:
                outcomes.append((_rows_of(result, start, start + item.rows), None))
                start += item.rows
            return outcomes
        return [self._run_one(batch[0])]

    def _run_one(self, item: _Item):
        """One request alone, in forward passes of at most ``max_batch_size`` rows.

        Why in pieces: a forward pass cannot be interrupted, so a request larger than a batch is
        run a batch at a time and dropped as soon as its caller has gone (timed out: 504), so the
        requests queued behind it wait for at most one batch, not for the whole abandoned request.
        """
        try:
            frame = self._join([item.frame])
            if len(frame) <= self.max_batch_size:
                return self._predict(frame), None
            parts = []
            for start in range(0, len(frame), self.max_batch_size):
                if item.future.done():  # timed out (cancelled) while the previous piece ran
                    return None, asyncio.CancelledError()
                stop = start + self.max_batch_size
                piece = frame.part(start, stop) if _is_rows(frame) else frame.iloc[start:stop].reset_index(drop=True)
                parts.append(self._predict(piece))
            return _concat(parts), None
        except Exception as err:  # handed to the caller, who turns it into a 4xx/5xx
            return None, err

    def _join(self, frames: list):
        """Requests' rows as one batch: joined ``Rows`` for ``predict_rows``, else a DataFrame."""
        if self.predict_rows is not None and all(_is_rows(f) for f in frames):
            from kiln_edge.server.records import Rows
            return Rows.join(frames)
        return _join(frames)

    def _predict(self, frame):
        if self.on_batch is not None:
            self.on_batch(len(frame))
        started = time.perf_counter()
        if _is_rows(frame):  # only _join's fast branch hands Rows over
            result = self.predict_rows(frame)
        else:
            result = self.predict_frame(frame)
            result = self.convert(result) if self.convert is not None else result
        # Written by whichever runs the pass (one at a time), read by the event loop: a float, no lock.
        self.pass_seconds = moving_average(self.pass_seconds, time.perf_counter() - started)
        return result


def _is_rows(frame) -> bool:
    from kiln_edge.server.records import Rows
    return isinstance(frame, Rows)


def _rows_of(result, start: int, stop: int):
    """A caller's share of a batch result: a list slice (converted rows) or DataFrame rows 0..n-1."""
    if isinstance(result, list):
        return result[start:stop]
    return result.iloc[start:stop].reset_index(drop=True)


def _concat(parts: list):
    """A request's pieces' results back into one: lists (converted rows) or DataFrames."""
    if all(isinstance(part, list) for part in parts):
        return [row for part in parts for row in part]
    import pandas as pd
    return pd.concat(parts, ignore_index=True)


def _join(frames: list):
    """Requests' rows -> one DataFrame (index 0..n-1): ``Rows`` are joined as plain lists and
    framed once per batch; DataFrames are concatenated."""
    from kiln_edge.server.records import Rows
    if all(isinstance(f, Rows) for f in frames):
        return Rows.join(frames).frame()
    import pandas as pd
    frames = [f.frame() if isinstance(f, Rows) else f for f in frames]
    if len(frames) == 1:
        return frames[0].reset_index(drop=True)
    return pd.concat(frames, ignore_index=True)
