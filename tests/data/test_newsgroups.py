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


# ---- crafted opcode streams: bounded memory, linear time, a capped inflate, only DataError --------------
def _stream(*ops: bytes) -> bytes:
    return b"\x80\x02" + b"".join(ops) + b"."


def test_a_constructor_on_a_number_stays_inert_instead_of_allocating(tmp_path):
    """bytes(10**12) spelled in 30 bytes: the old reader called it (a MemoryError, or a terabyte)."""
    from kiln.data.newsgroups import Call, inert_unpickle
    blob = _stream(b"c__builtin__\nbytes\n", b"\x8a\x06" + (10 ** 12).to_bytes(6, "little"), b"\x85R")
    assert len(blob) < 40
    value = inert_unpickle(blob)
    assert isinstance(value, Call) and value.name == "__builtin__ bytes" and value.args == (10 ** 12,)
    path = tmp_path / "mini.pkl"
    path.write_bytes(zlib.compress(blob))
    with pytest.raises(DataError, match="does not hold the data/target/target_names"):
        read_mini_newsgroup(path)


def test_many_marks_are_popped_in_linear_time():
    """200,000 values under 200,000 MARK/POP_MARK pairs: each pop_mark copied the whole stack (4e10
    element copies, minutes); marks are now kept apart. Run in a child process with a bound on a hang
    (not a speed assertion: the fixed reader needs well under a second)."""
    import subprocess
    import sys
    code = ("from kiln.data.newsgroups import inert_unpickle\n"
            "blob = b'\\x80\\x02' + b'N' * 200_000 + b'(1' * 200_000 + b'.'\n"
            "assert inert_unpickle(blob) is None\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_a_stream_that_inflates_past_the_cap_is_refused(tmp_path):
    from kiln.data import newsgroups
    path = tmp_path / "bomb.pkl"
    path.write_bytes(zlib.compress(b"N" * (newsgroups.MAX_INFLATED_BYTES + 10), 9))
    assert path.stat().st_size < 200_000
    with pytest.raises(DataError, match=f"inflates past {newsgroups.MAX_INFLATED_BYTES} bytes"):
        read_mini_newsgroup(path)


@pytest.mark.parametrize("ops", [
    (b"c_codecs\nencode\n", b"X\x01\x00\x00\x00a", b"X\x07\x00\x00\x00no-such", b"\x86R"),  # LookupError
    (b"K\x05", b"K\x06", b"a"),                                     # APPEND onto an int: AttributeError
    (b"(", b"K\x01", b"0", b"0", b"N"),                             # POP below its MARK
    (b"}", b"]", b"N", b"s"),                                       # a list as a dict key: TypeError
    (b"t",),                                                        # TUPLE with no MARK
    (b"h\x07",),                                                    # GET of an unknown memo slot
])
def test_a_malformed_stream_is_a_data_error_naming_the_file(tmp_path, ops):
    path = tmp_path / "mini.pkl"
    path.write_bytes(zlib.compress(_stream(*ops)))
    with pytest.raises(DataError, match="mini.pkl is not gensim's mini_newsgroup file"):
        read_mini_newsgroup(path)
