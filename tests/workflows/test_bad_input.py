"""Bad input through `kiln train` as a user meets it: exit code 1, the file/column/row named, the fix said."""

import textwrap

import numpy as np
import pandas as pd
from PIL import Image

from kiln.cli import main

BASE = """\
    name: bad
    output_dir: {out}
    data:
      source: {source}
      split: {{train: 0.6, validation: 0.2, test: 0.2}}
    input_features:
{inputs}
    output_features:
      - {{name: {out_name}, type: {out_type}}}
    training: {{epochs: 1, batch_size: 4}}
"""


def run(tmp_path, capsys, source, inputs="  - {name: x, type: numeric}", out_type="category", out_name="y"):
    inputs = textwrap.indent(textwrap.dedent(inputs), "    ")
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(textwrap.dedent(BASE).format(out=tmp_path / "runs", source=source, inputs=inputs,
                                                out_type=out_type, out_name=out_name))
    code = main(["train", str(cfg), "--quiet"])
    return code, capsys.readouterr().err


def test_missing_file(tmp_path, capsys):
    (tmp_path / "data.csv").write_text("x,y\n1,a\n")
    code, err = run(tmp_path, capsys, tmp_path / "dta.csv")
    assert code == 1 and "dta.csv" in err and "data.csv" in err  # names the file and the close one


def test_text_in_a_numeric_column(tmp_path, capsys):
    frame = pd.DataFrame({"x": [1.0, 2.0, "lots", 4.0, 5.0] * 4, "y": list("ab") * 10})
    frame.to_csv(tmp_path / "d.csv", index=False)
    code, err = run(tmp_path, capsys, tmp_path / "d.csv")
    assert code == 1 and "'x'" in err and "lots" in err


def test_nan_labels(tmp_path, capsys):
    frame = pd.DataFrame({"x": np.arange(20.0), "y": ["a", "b", None, "a", "b"] * 4})
    frame.to_csv(tmp_path / "d.csv", index=False)
    code, err = run(tmp_path, capsys, tmp_path / "d.csv")
    assert code == 1 and "'y'" in err and "row" in err


def test_empty_dataset(tmp_path, capsys):
    (tmp_path / "d.csv").write_text("x,y\n")
    code, err = run(tmp_path, capsys, tmp_path / "d.csv")
    assert code == 1 and "d.csv" in err


def _image_folder(tmp_path, sizes):
    for cls in ("cat", "dog"):
        (tmp_path / "imgs" / cls).mkdir(parents=True, exist_ok=True)
        for i, size in enumerate(sizes):
            Image.fromarray(np.full((size, size), 40 * i, dtype=np.uint8)).save(tmp_path / "imgs" / cls / f"{i}.png")
    return tmp_path / "imgs"


def test_images_of_mixed_sizes_name_the_file(tmp_path, capsys):
    folder = _image_folder(tmp_path, [8, 8, 8, 8, 12])
    code, err = run(tmp_path, capsys, folder, inputs="  - {name: image, type: image}", out_name="label")
    assert code == 1 and ".png" in err and ("height" in err or "size" in err)


def test_a_corrupt_image_names_the_file(tmp_path, capsys):
    folder = _image_folder(tmp_path, [8] * 5)
    (folder / "dog" / "3.png").write_bytes(b"not a png at all")
    code, err = run(tmp_path, capsys, folder,
                    inputs="  - {name: image, type: image, preprocessing: {height: 8, width: 8}}", out_name="label")
    assert code == 1 and "3.png" in err


def test_an_image_folder_trains(tmp_path, capsys):
    folder = _image_folder(tmp_path, [8] * 6)
    code, err = run(tmp_path, capsys, folder, inputs="  - {name: image, type: image}", out_name="label")
    assert code == 0, err


def test_a_failed_run_keeps_its_folder(tmp_path, capsys):
    frame = pd.DataFrame({"x": [1.0, 2.0, "lots", 4.0, 5.0] * 4, "y": list("ab") * 10})
    frame.to_csv(tmp_path / "d.csv", index=False)
    run(tmp_path, capsys, tmp_path / "d.csv")
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1 and (runs[0] / "config.yaml").exists()


def test_a_wav_folder_trains_and_a_wrong_sample_rate_is_named(tmp_path, capsys):
    import soundfile as sf
    rate = 8000
    t = np.arange(rate // 4) / rate
    for cls, freq in (("low", 300.0), ("high", 2000.0)):
        (tmp_path / "wavs" / cls).mkdir(parents=True)
        for i in range(6):
            tone = 0.5 * np.sin(2 * np.pi * (freq + 20 * i) * t)
            sf.write(tmp_path / "wavs" / cls / f"{i}.wav", tone, rate)
    audio = "  - {name: audio, type: audio, preprocessing: {sample_rate: 8000, duration: 0.25, n_mels: 16}}"
    code, err = run(tmp_path, capsys, tmp_path / "wavs", inputs=audio, out_name="label")
    assert code == 0, err
    sf.write(tmp_path / "wavs" / "low" / "odd.wav", np.zeros(4000), 16000)
    code, err = run(tmp_path, capsys, tmp_path / "wavs", inputs=audio, out_name="label")
    assert code == 1 and "odd.wav" in err and "16000" in err


def test_a_text_folder_trains(tmp_path, capsys):
    for cls, words in (("pos", "good great fine lovely"), ("neg", "bad awful poor dull")):
        (tmp_path / "texts" / cls).mkdir(parents=True)
        for i, word in enumerate(words.split() * 2):
            (tmp_path / "texts" / cls / f"{i}.txt").write_text(f"a {word} film number {i}")
    text = "  - {name: text, type: text, preprocessing: {tokenizer: bpe, vocab_size: 60, max_length: 8}}"
    code, err = run(tmp_path, capsys, tmp_path / "texts", inputs=text, out_name="label")
    assert code == 0, err


def test_an_unknown_zoo_model_is_a_config_error(tmp_path, capsys):
    frame = pd.DataFrame({"x": np.arange(20.0), "y": list("ab") * 10})
    frame.to_csv(tmp_path / "d.csv", index=False)
    cfg = tmp_path / "z.yaml"
    inputs = textwrap.indent("  - {name: x, type: numeric}", "    ")
    cfg.write_text(textwrap.dedent(BASE).format(out=tmp_path / "runs", source=tmp_path / "d.csv", inputs=inputs,
                                                out_type="category", out_name="y") + "    model: {zoo: {name: resnet81}}\n")
    assert main(["train", str(cfg), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "model.zoo.name" in err and "Did you mean 'resnet18'" in err
