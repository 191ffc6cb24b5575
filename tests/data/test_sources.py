"""read_source: every format round-trips to the expected table; every mistake is a DataError naming it."""

import json
import os

import numpy as np
import pandas as pd
import pytest

from kiln.data import read_source
from kiln.errors import DataError, KilnTypeError


@pytest.fixture
def table():
    return pd.DataFrame({"a": [1, 2, 3], "b": [0.5, 1.5, -2.0], "label": ["x", "y", "x"]})


# --- in memory -----------------------------------------------------------------------------

def test_dataframe_is_copied(table):
    out = read_source(table)
    pd.testing.assert_frame_equal(out, table)
    out.loc[0, "a"] = 99
    assert table.loc[0, "a"] == 1


def test_dict_of_arrays_and_lists():
    images = np.arange(24, dtype=np.uint8).reshape(3, 2, 4)
    out = read_source({"image": images, "label": [0, 1, 2], "w": np.array([0.1, 0.2, 0.3])})
    assert list(out.columns) == ["image", "label", "w"] and len(out) == 3
    np.testing.assert_array_equal(out["image"][2], images[2])  # one (2, 4) array per row
    assert out["label"].tolist() == [0, 1, 2]


def test_dict_with_unequal_lengths_names_the_columns():
    with pytest.raises(DataError, match=r"'x': 3.*'y': 2"):
        read_source({"x": [1, 2, 3], "y": [1, 2]})


def test_empty_inputs_are_refused():
    with pytest.raises(DataError, match="empty dict"):
        read_source({})
    with pytest.raises(DataError, match="no rows"):
        read_source(pd.DataFrame({"a": []}))


def test_wrong_source_type():
    with pytest.raises(KilnTypeError, match="int"):
        read_source(3)


# --- files ---------------------------------------------------------------------------------

def test_csv_round_trip(tmp_path, table):
    table.to_csv(tmp_path / "d.csv", index=False)
    pd.testing.assert_frame_equal(read_source(tmp_path / "d.csv").reset_index(drop=True), table, check_dtype=False)


def test_csv_with_separator_and_tsv(tmp_path, table):
    table.to_csv(tmp_path / "d.csv", index=False, sep=";")
    pd.testing.assert_frame_equal(read_source(str(tmp_path / "d.csv"), sep=";").reset_index(drop=True), table,
                                  check_dtype=False)
    table.to_csv(tmp_path / "d.tsv", index=False, sep="\t")
    pd.testing.assert_frame_equal(read_source(tmp_path / "d.tsv").reset_index(drop=True), table, check_dtype=False)


def test_explicit_format_overrides_extension(tmp_path, table):
    table.to_csv(tmp_path / "d.data", index=False)
    pd.testing.assert_frame_equal(read_source(tmp_path / "d.data", format="csv").reset_index(drop=True), table,
                                  check_dtype=False)


def test_parquet_round_trip(tmp_path, table):
    table.to_parquet(tmp_path / "d.parquet")
    pd.testing.assert_frame_equal(read_source(tmp_path / "d.parquet"), table, check_dtype=False)


def test_jsonl_round_trip(tmp_path, table):
    lines = [json.dumps(r) for r in table.to_dict(orient="records")]
    (tmp_path / "d.jsonl").write_text("\n".join(lines) + "\n\n", encoding="utf-8")
    pd.testing.assert_frame_equal(read_source(tmp_path / "d.jsonl").reset_index(drop=True), table, check_dtype=False)


def test_npy_columns_by_rank(tmp_path):
    flat = np.arange(12, dtype=np.float32).reshape(4, 3)
    np.save(tmp_path / "two.npy", flat)
    out = read_source(tmp_path / "two.npy")
    assert list(out.columns) == ["f0", "f1", "f2"]
    np.testing.assert_array_equal(out.to_numpy(), flat)

    cube = np.arange(24).reshape(2, 3, 4)
    np.save(tmp_path / "three.npy", cube)
    out = read_source(tmp_path / "three.npy")
    assert list(out.columns) == ["x"] and out["x"][1].shape == (3, 4)
    np.testing.assert_array_equal(np.stack(out["x"]), cube)

    np.save(tmp_path / "one.npy", np.array([3, 1, 2]))
    assert read_source(tmp_path / "one.npy")["x"].tolist() == [3, 1, 2]


def test_npz_one_column_per_key(tmp_path):
    x = np.random.default_rng(0).random((5, 4, 4))
    y = np.array([0, 1, 0, 1, 1])
    np.savez(tmp_path / "d.npz", x=x, y=y)
    out = read_source(tmp_path / "d.npz")
    assert list(out.columns) == ["x", "y"] and len(out) == 5
    np.testing.assert_array_equal(np.stack(out["x"]), x)
    assert out["y"].tolist() == y.tolist()


def test_npz_rows_must_agree(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((5, 2)), y=np.zeros(4))
    with pytest.raises(DataError, match=r"d\.npz.*'x': 5.*'y': 4"):
        read_source(tmp_path / "d.npz")


def test_pickled_arrays_are_refused(tmp_path):
    objects = np.array([{"a": 1}, None], dtype=object)
    np.save(tmp_path / "obj.npy", objects, allow_pickle=True)
    with pytest.raises(DataError, match=r"obj\.npy.*pickle"):
        read_source(tmp_path / "obj.npy")
    np.savez(tmp_path / "obj.npz", ok=np.zeros(2), bad=objects)
    with pytest.raises(DataError, match=r"'bad'.*obj\.npz.*pickle"):
        read_source(tmp_path / "obj.npz")


# --- file errors ---------------------------------------------------------------------------

def test_missing_file_suggests_the_closest_name(tmp_path, table):
    table.to_csv(tmp_path / "train.csv", index=False)
    with pytest.raises(DataError, match=r"trian\.csv does not exist.*Did you mean .*train\.csv"):
        read_source(tmp_path / "trian.csv")


def test_missing_folder(tmp_path):
    with pytest.raises(DataError, match=r"nowhere.*does not exist"):
        read_source(tmp_path / "nowhere" / "d.csv")


def test_unknown_extension_lists_the_supported(tmp_path):
    (tmp_path / "d.xlsx").write_bytes(b"PK")
    with pytest.raises(DataError, match=r"d\.xlsx.*'\.xlsx'.*\.csv.*\.parquet.*\.jsonl.*\.npy"):
        read_source(tmp_path / "d.xlsx")


def test_unknown_format_and_option(tmp_path, table):
    table.to_csv(tmp_path / "d.csv", index=False)
    with pytest.raises(DataError, match="Did you mean 'parquet'"):
        read_source(tmp_path / "d.csv", format="parquet2")
    with pytest.raises(KilnTypeError, match="'delimiter'.*sep"):
        read_source(tmp_path / "d.csv", delimiter=";")


def test_empty_file(tmp_path):
    (tmp_path / "d.csv").write_text("")
    with pytest.raises(DataError, match=r"d\.csv is empty"):
        read_source(tmp_path / "d.csv")
    (tmp_path / "h.csv").write_text("a,b\n")
    with pytest.raises(DataError, match=r"h\.csv has no rows"):
        read_source(tmp_path / "h.csv")


@pytest.mark.parametrize("name, content, match", [
    ("bad.csv", b'a,b\n1,2\n3,4,5,6\n"7,8\n', r"bad\.csv as CSV"),
    ("d.parquet", b"not parquet at all", r"d\.parquet as Parquet"),
])
def test_unreadable_file_is_named(tmp_path, name, content, match):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(DataError, match=match):
        read_source(tmp_path / name)


def test_jsonl_bad_line_is_named(tmp_path):
    (tmp_path / "d.jsonl").write_text('{"a": 1}\n{"a": 2}\n{"a": 3,\n')
    with pytest.raises(DataError, match=r"d\.jsonl, line 3 is not valid JSON"):
        read_source(tmp_path / "d.jsonl")
    (tmp_path / "e.jsonl").write_text('{"a": 1}\n[1, 2]\n')
    with pytest.raises(DataError, match=r"e\.jsonl, line 2 is a JSON list"):
        read_source(tmp_path / "e.jsonl")


# --- folders -------------------------------------------------------------------------------

def make_images(root, spec):
    from PIL import Image

    for label, names in spec.items():
        (root / label).mkdir(parents=True, exist_ok=True)
        for name in names:
            Image.new("RGB", (4, 4), (10, 20, 30)).save(root / label / name)


def test_image_folder(tmp_path):
    make_images(tmp_path, {"dog": ["b.png", "a.JPG"], "cat": ["z.bmp", "c.jpeg"]})
    (tmp_path / "dog" / ".DS_Store").write_bytes(b"")
    out = read_source(tmp_path)
    assert list(out.columns) == ["image", "label"]
    assert out["label"].tolist() == ["cat", "cat", "dog", "dog"]
    assert [os.path.basename(p) for p in out["image"]] == ["c.jpeg", "z.bmp", "a.JPG", "b.png"]
    assert all(os.path.isabs(p) and os.path.isfile(p) for p in out["image"])
    pd.testing.assert_frame_equal(read_source(tmp_path, format="image_folder"), out)


def test_text_folder_reads_the_text(tmp_path):
    files = [("pos", "1.txt", "gr\u00e9at film".encode()),          # UTF-8
             ("neg", "2.txt", "d\xe9j\xe0 vu".encode("latin-1")),   # not UTF-8: read as latin-1
             ("neg", "1.txt", b"\xef\xbb\xbfboring")]               # UTF-8 with a byte-order mark
    for label, name, data in files:
        (tmp_path / label).mkdir(exist_ok=True)
        (tmp_path / label / name).write_bytes(data)
    out = read_source(tmp_path)
    assert list(out.columns) == ["text", "label"]
    assert out.to_dict(orient="list") == {"text": ["boring", "d\u00e9j\u00e0 vu", "gr\u00e9at film"],
                                          "label": ["neg", "neg", "pos"]}


def test_audio_folder(tmp_path):
    import soundfile

    for label in ["yes", "no"]:
        (tmp_path / label).mkdir()
        soundfile.write(tmp_path / label / "0.wav", np.zeros(160, dtype=np.float32), 16000)
    out = read_source(tmp_path)
    assert list(out.columns) == ["audio", "label"] and out["label"].tolist() == ["no", "yes"]
    assert soundfile.info(out["audio"][0]).samplerate == 16000


def test_mixed_folder_lists_the_kinds(tmp_path):
    make_images(tmp_path, {"a": ["1.png"]})
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "note.txt").write_text("hi")
    with pytest.raises(DataError, match=r"mixes.*image files: a/1\.png.*text files: b/note\.txt"):
        read_source(tmp_path)
    # An explicit folder format reads only that kind.
    assert read_source(tmp_path, format="text_folder")["text"].tolist() == ["hi"]


def test_folder_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"empty is empty"):
        read_source(tmp_path / "empty")
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "1.png").write_bytes(b"")
    with pytest.raises(DataError, match=r"flat has no class sub-folders"):
        read_source(flat)
    odd = tmp_path / "odd"
    (odd / "a").mkdir(parents=True)
    (odd / "a" / "x.csv").write_text("1")
    with pytest.raises(DataError, match=r"odd has class sub-folders but no example files.*\.csv"):
        read_source(odd)
    loose = tmp_path / "loose"
    make_images(loose, {"a": ["1.png"]})
    (loose / "2.png").write_bytes(b"")
    with pytest.raises(DataError, match=r"outside any class sub-folder: 2\.png"):
        read_source(loose)


def test_folder_with_file_format(tmp_path):
    make_images(tmp_path, {"a": ["1.png"]})
    with pytest.raises(DataError, match="is a folder"):
        read_source(tmp_path, format="csv")


def test_bundled_names_route_to_bundled():
    assert len(read_source("sklearn:iris")) == 150
    with pytest.raises(DataError, match="Did you mean 'sklearn:wine'"):
        read_source("sklearn:wien")


def test_big_folder_shows_a_progress_bar_on_a_terminal(tmp_path, monkeypatch):
    import io
    import sys

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    (tmp_path / "a").mkdir()
    for i in range(1001):
        (tmp_path / "a" / f"{i:04d}.txt").write_text(str(i))
    monkeypatch.setattr(sys, "stderr", Terminal())
    out = read_source(tmp_path)
    assert len(out) == 1001 and out["text"][1000] == "1000"
    assert "1001/1001" in sys.stderr.getvalue()


def test_csv_and_jsonl_rows_keep_the_file_s_numbers_through_the_split(tmp_path):
    from kiln.data import split_frame
    from kiln.data.features import build_feature
    from kiln.errors import DataError
    values = [str(float(i)) for i in range(100)]
    values[75] = "oops"  # the 76th example: file row 77 (the header is row 1)
    (tmp_path / "d.csv").write_text("x,y\n" + "".join(f"{v},{i % 2}\n" for i, v in enumerate(values)))
    frame = read_source(tmp_path / "d.csv")
    assert (frame.index[0], frame.index[-1], frame.index.name) == (2, 101, "file row")
    train = split_frame(frame, seed=0)["train"]
    assert 77 in train.index  # the bad row landed in training, at another position
    assert list(train.index).index(77) != 75
    with pytest.raises(DataError, match=r"Column 'x' \(input numeric feature 'x'\): file row 77 holds 'oops'"):
        build_feature("x", "numeric").fit(train)
    (tmp_path / "d.jsonl").write_text('{"x": 1}\n\n{"x": 2}\n')
    assert list(read_source(tmp_path / "d.jsonl").index) == [1, 3]  # the blank line 2 is skipped


def test_a_semicolon_or_tab_separated_csv_is_detected_when_no_sep_is_given(tmp_path, table):
    for sep in (";", "\t", "|"):
        table.to_csv(tmp_path / "d.csv", index=False, sep=sep)
        pd.testing.assert_frame_equal(read_source(tmp_path / "d.csv").reset_index(drop=True), table,
                                      check_dtype=False)
    # A genuine one-column file stays one column, even with ';' in its values.
    (tmp_path / "one.csv").write_text("text\nhello; world\nsee; you; soon\n")
    assert read_source(tmp_path / "one.csv")["text"].tolist() == ["hello; world", "see; you; soon"]
    # An explicit sep is obeyed as given.
    table.to_csv(tmp_path / "d.csv", index=False, sep=";")
    assert read_source(tmp_path / "d.csv", sep=",").shape[1] == 1


def test_a_file_read_with_the_wrong_separator_is_named_in_the_missing_column_error(tmp_path, table):
    from kiln.data.features import build_feature
    from kiln.errors import DataError
    table.to_csv(tmp_path / "d.csv", index=False, sep=";")
    frame = read_source(tmp_path / "d.csv", sep=",")  # the user forced the wrong one
    with pytest.raises(DataError, match=r"single column .*separator is probably not the one it was read with\. "
                                        r"Set it \(a config's `data.options.sep`"):
        build_feature("x", "numeric", column=str(table.columns[0])).fit(frame)
