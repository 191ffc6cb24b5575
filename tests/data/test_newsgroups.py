"""gensim's mini_newsgroup pickle read by walking its opcodes: no code from the file ever runs."""

import pickle
import pickletools
import zlib

import numpy as np
import pytest

from kiln.data.newsgroups import read_mini_newsgroup, strip_headers
from kiln.errors import DataError


def _write_bunch(path, posts, target, names, protocol=2):
    """A zlib-compressed pickle shaped like scikit-learn's Bunch (a plain dict is enough)."""
    bunch = {"DESCR": None, "data": posts, "target": np.asarray(target, dtype="<i8"), "target_names": names,
             "filenames": np.array([f"f{i}" for i in range(len(posts))])}
    path.write_bytes(zlib.compress(pickle.dumps(bunch, protocol=protocol)))


@pytest.mark.parametrize("protocol", [0, 2, 4])
def test_reads_posts_labels_and_strips_headers(tmp_path, protocol):
    posts = ["From: a@b.org\nNewsgroups: sci.space\nSubject: orbit\n\nThe shuttle flew.\n",
             "From: c@d.org\nNewsgroups: alt.atheism\n\nNo gods here.",
             "Path: x!y\nNewsgroups: sci.space\n\nMars in 2030?\n\n-- sig"]
    _write_bunch(tmp_path / "mini", posts, [1, 0, 1], ["alt.atheism", "sci.space"], protocol)
    texts, labels = read_mini_newsgroup(tmp_path / "mini")
    assert texts == ["The shuttle flew.", "No gods here.", "Mars in 2030?\n\n-- sig"]
    assert labels == ["sci.space", "alt.atheism", "sci.space"]


def test_a_pickle_that_would_run_code_is_only_parsed(tmp_path):
    class Boom:
        def __reduce__(self):  # unpickling this would create a file
            return (open, (str(tmp_path / "pwned"), "w"))

    blob = pickle.dumps({"data": ["a\n\nb"], "target": np.zeros(1, "<i8"), "target_names": ["x.y"],
                         "extra": Boom()}, protocol=2)
    (tmp_path / "mini").write_bytes(zlib.compress(blob))
    assert any(op.name == "REDUCE" for op, _, _ in pickletools.genops(blob))
    texts, labels = read_mini_newsgroup(tmp_path / "mini")
    assert (texts, labels) == (["b"], ["x.y"]) and not (tmp_path / "pwned").exists()


def test_not_the_file_is_a_data_error(tmp_path):
    (tmp_path / "mini").write_bytes(b"plain text, not zlib")
    with pytest.raises(DataError, match="not gensim's mini_newsgroup"):
        read_mini_newsgroup(tmp_path / "mini")
    (tmp_path / "other").write_bytes(zlib.compress(pickle.dumps({"rows": [1, 2]}, protocol=2)))
    with pytest.raises(DataError, match="data/target/target_names"):
        read_mini_newsgroup(tmp_path / "other")


def test_strip_headers_keeps_a_post_without_headers():
    assert strip_headers("just one line") == "just one line"


@pytest.mark.parametrize("protocol", range(0, pickle.HIGHEST_PROTOCOL + 1))
def test_inert_unpickle_equals_pickle_for_plain_data(protocol):
    from kiln.data.newsgroups import inert_unpickle
    value = {"a": [1, -2, 3.5, None, True, False], "b": ("x", "é", b"\x00\xff"), "c": {"n": list(range(1200))},
             "d": [], "e": [[1], [2, 3]], "big": 2 ** 70}
    value["shared"] = value["a"]  # memo references
    assert inert_unpickle(pickle.dumps(value, protocol=protocol)) == pickle.loads(pickle.dumps(value, protocol))
