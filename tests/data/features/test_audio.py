"""AudioFeature: the mel filterbank against the formula, log-mel of pure tones, WAV reading and errors."""

import math

import numpy as np
import pandas as pd
import pytest
import soundfile
import torch

from kiln.data.features import AudioFeature, mel_filterbank
from kiln.data.features.audio import hz_to_mel, mel_to_hz
from kiln.errors import DataError, KilnValueError


def _hand_filterbank(sample_rate, n_fft, n_mels, scale):
    """Triangles written out point by point, with the mel formulas typed in again."""
    def to_mel(f):
        if scale == "htk":
            return 2595 * math.log10(1 + f / 700)
        return f / (200 / 3) if f < 1000 else 15 + math.log(f / 1000) / (math.log(6.4) / 27)

    def to_hz(m):
        if scale == "htk":
            return 700 * (10 ** (m / 2595) - 1)
        return m * 200 / 3 if m < 15 else 1000 * math.exp((m - 15) * math.log(6.4) / 27)

    top = to_mel(sample_rate / 2)
    points = [to_hz(top * i / (n_mels + 1)) for i in range(n_mels + 2)]
    bank = np.zeros((n_fft // 2 + 1, n_mels))
    for k in range(n_fft // 2 + 1):
        f = k * sample_rate / n_fft
        for m in range(n_mels):
            left, centre, right = points[m], points[m + 1], points[m + 2]
            if left <= f <= centre:
                bank[k, m] = (f - left) / (centre - left)
            elif centre < f <= right:
                bank[k, m] = (right - f) / (right - centre)
    return bank, points


@pytest.mark.parametrize("scale", ["htk", "slaney"])
def test_filterbank_matches_the_triangle_formula(scale):
    bank, points = _hand_filterbank(8000, 64, 6, scale)
    fb = mel_filterbank(8000, 64, 6, scale=scale)
    assert fb.shape == (33, 6) and fb.dtype == torch.float32
    np.testing.assert_allclose(fb.numpy(), bank, atol=1e-6)
    # Each row (FFT bin) between the first and last centre is covered by two triangles summing to 1.
    bins = np.arange(33) * 8000 / 64
    inside = (bins >= points[1]) & (bins <= points[-2])
    np.testing.assert_allclose(fb.numpy()[inside].sum(axis=1), 1.0, atol=1e-6)
    # Each filter peaks at the bin nearest its centre frequency.
    centres = np.array(points[1:-1])
    nearest = np.abs(bins[:, None] - centres[None, :]).argmin(axis=0)
    assert fb.numpy().argmax(axis=0).tolist() == nearest.tolist()


def test_mel_scales_known_values():
    assert hz_to_mel(700.0) == pytest.approx(2595 * math.log10(2))
    assert mel_to_hz(hz_to_mel(3000.0)) == pytest.approx(3000.0)
    assert hz_to_mel(1000.0, "slaney") == pytest.approx(15.0)
    assert hz_to_mel(500.0, "slaney") == pytest.approx(7.5)
    assert hz_to_mel(6400.0, "slaney") == pytest.approx(15.0 + 27.0)  # 27 mels per factor 6.4 above 1 kHz
    assert mel_to_hz(hz_to_mel(4321.0, "slaney"), "slaney") == pytest.approx(4321.0)


def _tone(freq, seconds=1.0, rate=16000, amplitude=0.5):
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.mark.parametrize("freq", [440.0, 1000.0, 3000.0])
def test_pure_tone_peaks_in_the_mel_band_centred_nearest_it(freq):
    f = AudioFeature("audio")
    mel = f.spectrogram(torch.from_numpy(_tone(freq))[None])  # (1, frames, n_mels)
    assert mel.shape == (1, 101, 64)
    # Triangles cross halfway between centres, so the highest band at a frequency is the one whose
    # centre is nearest; the tone's energy sits in that band in every (inner) frame.
    _, points = _hand_filterbank(16000, 400, 64, "htk")
    expected = int(np.abs(np.array(points[1:-1]) - freq).argmin())
    assert (mel[0, 1:-1].argmax(dim=1) == expected).all()
    # log of power: a tone of twice the amplitude is log(4) higher in its band
    louder = f.spectrogram(torch.from_numpy(2 * _tone(freq))[None])
    assert (louder[0, 50, expected] - mel[0, 50, expected]).item() == pytest.approx(math.log(4), abs=1e-3)


def test_log_mel_values_of_a_bin_centred_tone_by_hand():
    # 1000 Hz at 16 kHz with n_fft 400 is exactly bin 25 (25 cycles per window). A periodic Hann
    # window (sum 200) puts |X| = A * 200 / 2 in bin 25 and A * 200 / 4 in bins 24 and 26, and
    # nothing elsewhere: power 2500, 625, 625 for A = 0.5.
    f = AudioFeature("audio")
    mel = f.spectrogram(torch.from_numpy(_tone(1000.0))[None])[0, 50]  # an inner frame, (n_mels,)
    bank, _ = _hand_filterbank(16000, 400, 64, "htk")
    power = np.zeros(201)
    power[[24, 25, 26]] = [625.0, 2500.0, 625.0]
    np.testing.assert_allclose(mel.numpy(), np.log(power @ bank + 1e-6), rtol=1e-4, atol=1e-3)


def test_wav_files_stereo_to_mono_and_standardised_with_training_statistics(tmp_path):
    paths = []
    for i, freq in enumerate([300.0, 600.0, 1200.0]):
        stereo = np.stack([_tone(freq, 0.5), _tone(freq * 2, 0.5)], axis=1)
        paths.append(str(tmp_path / f"t{i}.wav"))
        soundfile.write(paths[-1], stereo, 16000, subtype="FLOAT")
    f = AudioFeature("audio", duration=0.5, n_mels=32)
    out = f.fit_transform(pd.Series(paths))
    assert out.shape == (3, 51, 32, 1) and out.dtype == torch.float32
    assert out.mean().item() == pytest.approx(0.0, abs=1e-4)
    assert out.std(unbiased=False).item() == pytest.approx(1.0, abs=1e-4)
    waves = f.waveforms(pd.Series(paths[:1]))
    np.testing.assert_allclose(waves[0].numpy(), (_tone(300.0, 0.5) + _tone(600.0, 0.5)) / 2, atol=1e-6)
    # arrays give the same features as the files that hold them
    from_array = f.transform(pd.Series([waves[0].numpy()]))
    np.testing.assert_allclose(from_array.numpy(), out[:1].numpy(), atol=1e-5)
    assert f.spec() == {"shape": (51, 32, 1), "dtype": "float32", "channels": 1, "frames": 51, "n_mels": 32,
                        "sample_rate": 16000}


def test_statistics_never_see_validation_rows():
    train, valid = [_tone(500.0, 0.25)], [_tone(2000.0, 0.25, amplitude=0.01)]
    f = AudioFeature("audio", duration=0.25).fit(pd.Series(train))
    stats = (f.mean, f.std)
    f.transform(pd.Series(valid))
    assert (f.mean, f.std) == stats
    assert AudioFeature("audio", duration=0.25).fit(pd.Series(train + valid)).mean != stats[0]


def test_pad_and_trim_to_duration_and_int16_arrays():
    f = AudioFeature("audio", duration=0.1)
    short, long = np.ones(800, np.float32), np.ones(3000, np.float32)
    waves = f.waveforms(pd.Series([short, long]))
    assert waves.shape == (2, 1600)
    assert waves[0, :800].eq(1).all() and waves[0, 800:].eq(0).all() and waves[1].eq(1).all()
    pcm = f.waveforms(pd.Series([np.full(1600, 16384, dtype=np.int16)]))
    assert pcm[0, 0].item() == 0.5


def test_another_sample_rate_names_the_file_and_both_rates(tmp_path):
    path = tmp_path / "fast.wav"
    soundfile.write(path, _tone(440.0, 0.5, rate=22050), 22050)
    f = AudioFeature("clip").fit(pd.Series([_tone(440.0)]))
    with pytest.raises(DataError) as info:
        f.transform(pd.Series([str(path)]))
    message = str(info.value)
    assert "'clip'" in message and "fast.wav" in message and "22050 Hz" in message and "16000 Hz" in message
    assert "Resample" in message and "`sample_rate`" in message


def test_unreadable_and_missing_files_are_named(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF....WAVEnope")
    f = AudioFeature("audio", duration=0.1).fit(pd.Series([_tone(440.0, 0.1)]))
    with pytest.raises(DataError, match=r"bad\.wav'\): cannot be read as audio"):
        f.transform(pd.Series([str(bad)]))
    with pytest.raises(DataError, match=r"gone\.wav'\): the file does not exist"):
        f.transform(pd.Series([str(tmp_path / "gone.wav")]))
    with pytest.raises(DataError, match=r"row 0 holds a float64 array of shape \(2, 5\)"):
        f.transform(pd.Series([np.zeros((2, 5))]))


@pytest.mark.parametrize("options, option", [({"sample_rate": 0}, "sample_rate"), ({"duration": -1}, "duration"),
                                             ({"n_mels": 0}, "n_mels"), ({"mel_scale": "mel"}, "mel_scale"),
                                             ({"log": 1}, "log"), ({"duration": 0.01}, "duration"),
                                             ({"n_mels": 256}, "n_mels")])
def test_invalid_options_name_the_option(options, option):
    with pytest.raises(KilnValueError, match=f"`{option}`"):
        AudioFeature("audio", **options)


@pytest.mark.parametrize("n_fft, hop", [(400, 160), (401, 160), (255, 100), (512, 128)])
def test_spec_frames_equal_the_transform_for_odd_and_even_n_fft(n_fft, hop):
    """torch.stft(center=True) gives 1 + (samples - 1) // hop frames for an odd n_fft, 1 + samples // hop for even."""
    feature = AudioFeature("clip", sample_rate=8000, duration=0.5, n_fft=n_fft, hop_length=hop, n_mels=16)
    waves = pd.Series([np.sin(np.arange(4000) / 7.0).astype(np.float32) for _ in range(3)])
    out = feature.fit(waves).transform(waves)
    assert tuple(out.shape[1:]) == tuple(feature.spec()["shape"])
