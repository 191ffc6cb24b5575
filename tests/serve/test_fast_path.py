"""The serving fast path (``LoadedRun.predict_columns`` on ``Rows.arrays()``) answers exactly what
the DataFrame path (``predict_frame`` then the server's ``_predictions``) answers: the same labels,
probabilities bit for bit, and the same errors, on both backends."""

import numpy as np
import pytest

from kiln_edge.errors import EdgeDataError
from kiln_edge.server.app import _predictions
from kiln_edge.server.batching import MicroBatcher
from kiln_edge.server.records import records_to_rows

RECORDS = [{"size": 0.3, "weight": None, "colour": "red"},           # a missing number: filled
           {"size": -1.2, "weight": 2, "colour": "purple"},          # an unseen category: <unk>
           {"size": 1e3, "weight": 0.1, "colour": None},             # a missing category
           {"size": 0.0, "weight": -0.5, "colour": "blue"}] * 9


@pytest.fixture(scope="module", params=["torch", "onnx"])
def run(request, tabular_run):
    if request.param == "torch":
        from kiln.workflows.run import load_run
        return load_run(tabular_run)
    pytest.importorskip("onnxruntime")
    from kiln_edge.run import OnnxRun
    return OnnxRun(tabular_run, threads=1)


@pytest.mark.parametrize("count", [1, 4, 36])
def test_predict_columns_equals_predict_frame(run, count):
    rows = records_to_rows(RECORDS[:count], run.inputs, None, 1000)
    assert run.predict_columns(rows.arrays()) == _predictions(run.predict_frame(rows.frame()))


def test_array_transforms_equal_series_transforms(run):
    rows = records_to_rows(RECORDS, run.inputs, None, 1000)
    frame, arrays = rows.frame(), rows.arrays()
    for feature in run.inputs:
        a = np.asarray(feature.transform_values(arrays[feature.column]))
        b = np.asarray(feature.transform(frame))
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes()


def test_same_error_for_a_refused_value(run):
    """Infinity never passes the request checks, but the array path refuses it as the Series path does."""
    numeric = next(f for f in run.inputs if f.type == "numeric")
    values = np.array([1.0, np.inf, -np.inf])
    with pytest.raises(Exception) as fast:
        numeric.transform_values(values)
    with pytest.raises(Exception) as slow:
        numeric.transform(values)
    assert type(fast.value) is type(slow.value) and str(fast.value) == str(slow.value)
    assert "infinite values in rows 1, 2" in str(fast.value)
    assert isinstance(fast.value, (EdgeDataError, ValueError))


def test_missing_column_named(run):
    rows = records_to_rows(RECORDS[:2], run.inputs, None, 1000)
    arrays = rows.arrays()
    del arrays["colour"]
    with pytest.raises(run.data_error, match="no column 'colour'"):
        run.predict_columns(arrays)


def test_batcher_uses_rows_path_and_splits_large_requests(run):
    """A request larger than a batch runs in pieces (``Rows.part``) and still equals the whole."""
    import asyncio
    seen = []

    def predict_rows(rows):
        seen.append(len(rows))
        return run.predict_columns(rows.arrays())

    async def go():
        batcher = MicroBatcher(run.predict_frame, max_batch_size=8, predict_rows=predict_rows)
        try:
            return await batcher.submit(records_to_rows(RECORDS[:20], run.inputs, None, 1000))
        finally:
            await batcher.stop()

    got = asyncio.run(go())
    rows = records_to_rows(RECORDS[:20], run.inputs, None, 1000)
    assert seen == [8, 8, 4]
    assert got == _predictions(run.predict_frame(rows.frame()))


def test_numeric_columns_encoded_together_equal_one_by_one(run):
    rows = records_to_rows(RECORDS, run.inputs, None, 1000)
    arrays = rows.arrays()
    together = run._encode_numeric_together(arrays)
    assert set(together) == {f.name for f in run.inputs if f.type == "numeric"}
    for feature in run.inputs:
        if feature.type == "numeric":
            alone = np.asarray(feature.transform_values(arrays[feature.column]))
            assert together[feature.name].tobytes() == alone.tobytes() and together[feature.name].shape == alone.shape


def test_infinity_in_columns_raises_the_features_own_error(run):
    arrays = records_to_rows(RECORDS[:3], run.inputs, None, 1000).arrays()
    arrays["weight"] = np.array([0.0, 1.0, np.inf])
    with pytest.raises(Exception, match=r"Column 'weight' \(input numeric feature 'weight'\): infinite values in row 2"):
        run.predict_columns(arrays)


def test_a_value_that_overflows_once_standardised_is_answered_as_the_frame_path_does(run):
    records = [dict(RECORDS[0], size=1e308), RECORDS[1]]
    rows = records_to_rows(records, run.inputs, None, 1000)
    try:
        want = _predictions(run.predict_frame(rows.frame()))
    except Exception as err:  # the frame path refuses it: the same error
        with pytest.raises(type(err)) as got:
            run.predict_columns(rows.arrays())
        assert str(got.value) == str(err)
    else:
        assert run.predict_columns(rows.arrays()) == want
