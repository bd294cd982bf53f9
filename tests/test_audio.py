"""Tests for diffres.audio: bad inputs fail with clear AudioErrors, odd inputs load, and the
resampler is checked against analytic oracles (tone frequency, RMS, aliasing)."""

from __future__ import annotations

import dataclasses
import io
import re
import shutil
import subprocess
import wave

import numpy as np
import pytest
import soundfile as sf

from diffres.audio import (
    MAX_SAMPLE_RATE,
    MIN_SAMPLE_RATE,
    Clip,
    load_audio,
    load_clip,
    resample,
    save_wav,
    wav_bytes,
)
from diffres.errors import AudioError, DiffResError, ParameterError

# --------------------------------------------------------------------------- helpers


def tone(freq_hz: float, sample_rate: int, seconds: float, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(sample_rate * seconds))) / sample_rate
    return (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def encode(data: np.ndarray, sample_rate: int, fmt: str = "WAV", subtype: str | None = None) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, data, sample_rate, format=fmt, subtype=subtype)
    return buf.getvalue()


def spectrum_db(x: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Hann-windowed power spectrum in dB (relative to 1), and its frequencies in Hz."""
    w = np.hanning(len(x))
    spec = np.abs(np.fft.rfft(x * w)) ** 2 / np.sum(w**2)
    return np.fft.rfftfreq(len(x), 1 / sample_rate), 10 * np.log10(spec + 1e-30)


def band_power(x: np.ndarray, sample_rate: int, lo_hz: float, hi_hz: float) -> float:
    """Mean power of ``x`` carried by frequencies in [lo_hz, hi_hz] (Parseval on a Hann window)."""
    w = np.hanning(len(x))
    spec = np.abs(np.fft.rfft(x * w)) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / sample_rate)
    band = (freqs >= lo_hz) & (freqs <= hi_hz)
    return float(2 * spec[band].sum() / (len(x) * np.sum(w**2)))


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def db(ratio: float) -> float:
    return 10 * np.log10(ratio + 1e-300)


@pytest.fixture(scope="module")
def wav_1k() -> bytes:
    """1 s of a 0.5-amplitude 1 kHz tone, 16 kHz 16-bit WAV."""
    return encode(tone(1000, 16000, 1.0), 16000, subtype="PCM_16")


# --------------------------------------------------------------------------- bad inputs


def test_empty_bytes():
    with pytest.raises(AudioError, match=r"empty \(0 bytes\).*non-empty audio file"):
        load_audio(b"")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    with pytest.raises(AudioError, match=r"empty\.wav' is empty \(0 bytes\)"):
        load_audio(path)


def test_empty_file_object():
    with pytest.raises(AudioError, match=r"empty \(0 bytes\)"):
        load_audio(io.BytesIO(b""))


def test_text_is_not_audio():
    with pytest.raises(AudioError, match=r"is a text file, not audio\. Choose an audio file"):
        load_audio(b"time,label\n0.0,alarm\n1.5,siren\n")


def test_png_is_not_audio():
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64)
    with pytest.raises(AudioError, match=r"is a PNG image, not audio"):
        load_audio(png)


@pytest.mark.parametrize(
    ("head", "kind"),
    [(b"%PDF-1.7\n%\xe2\xe3", "PDF document"), (b"PK\x03\x04\x14\x00", "ZIP archive"),
     (b"\xff\xd8\xff\xe0\x00\x10JFIF", "JPEG image")],
)
def test_other_non_audio_named(head, kind):
    with pytest.raises(AudioError, match=f"is an? {kind}, not audio"):
        load_audio(head + bytes(200))


def test_headerless_raw_pcm_is_not_guessed():
    raw = (tone(440, 16000, 1.0) * 32767).astype("<i2").tobytes()
    with pytest.raises(AudioError, match=r"not in an audio format.*headerless raw PCM is not accepted"):
        load_audio(raw)


def test_wav_truncated_in_data(wav_1k):
    half = wav_1k[: len(wav_1k) // 2]
    with pytest.raises(AudioError, match=r"truncated WAV file.*promises 32000 bytes.*cut off"):
        load_audio(half)


def test_wav_truncated_after_header(wav_1k):
    with pytest.raises(AudioError, match=r"truncated WAV file.*only 0 are present"):
        load_audio(wav_1k[:44])


def test_wav_truncated_in_header(wav_1k):
    with pytest.raises(AudioError, match=r"looks like a WAV file but could not be decoded.*Re-export"):
        load_audio(wav_1k[:20])


def test_corrupt_flac():
    flac = encode(tone(440, 16000, 1.0), 16000, "FLAC")
    broken = flac[:4] + bytes(len(flac) - 4)  # keep the magic, zero the rest
    with pytest.raises(AudioError, match=r"looks like a FLAC file but could not be decoded"):
        load_audio(broken)


@pytest.mark.parametrize("fmt", ["WAV", "FLAC", "OGG"])
def test_any_cut_gives_audio_or_audioerror(fmt):
    """Whatever prefix of a valid file arrives, only AudioError (or a result) comes out."""
    data = encode(tone(440, 16000, 0.5), 16000, fmt)
    n_loaded = n_rejected = 0
    for cut in np.unique(np.linspace(1, len(data) - 1, 24).astype(int)):
        try:
            x, _ = load_audio(data[:cut])
        except AudioError:
            n_rejected += 1
        else:
            assert x.dtype == np.float32 and np.all(np.abs(x) <= 1)
            n_loaded += 1
    assert n_rejected > 0  # short prefixes (a broken header) are refused


def _float_wav(values: np.ndarray, sample_rate: int = 16000) -> bytes:
    return encode(values.astype(np.float32), sample_rate, subtype="FLOAT")


def test_nan_samples():
    x = tone(440, 16000, 0.5)
    x[100:103] = np.nan
    with pytest.raises(AudioError, match=r"contains 3 NaN \(not-a-number\) sample values.*re-export"):
        load_audio(_float_wav(x))
    x = tone(440, 16000, 0.5)
    x[7] = np.nan
    with pytest.raises(AudioError, match=r"contains 1 NaN \(not-a-number\) sample value, so"):
        load_audio(_float_wav(x))


def test_infinite_samples():
    x = tone(440, 16000, 0.5)
    x[10] = np.inf
    x[20] = -np.inf
    with pytest.raises(AudioError, match=r"contains 2 infinite sample values"):
        load_audio(_float_wav(x))


def test_zero_samples():
    data = encode(np.zeros(0, dtype=np.float32), 16000, subtype="PCM_16")
    with pytest.raises(AudioError, match=r"no audio samples \(0 frames\)"):
        load_audio(data)


def test_too_long_raises_with_length_limit_and_remedy():
    data = encode(tone(440, 16000, 3.0), 16000, subtype="PCM_16")
    with pytest.raises(AudioError, match=r"is 3 s long, longer than the 2 s limit.*trim=True"):
        load_audio(data, max_seconds=2.0)


def test_trim_keeps_the_start_and_flags_it():
    x = tone(440, 16000, 3.0)
    x[16000 * 2 :] = 0.25  # the part that must be cut away
    data = encode(x, 16000, subtype="FLOAT")
    clip = load_clip(data, max_seconds=2.0, trim=True)
    full = load_clip(data)
    assert clip.trimmed and not full.trimmed
    assert len(clip.samples) == 32000 and clip.seconds == pytest.approx(2.0)
    assert clip.original_seconds == pytest.approx(3.0)
    np.testing.assert_array_equal(clip.samples, full.samples[:32000])
    assert not np.any(clip.samples == np.float32(0.25))


def test_trim_not_needed_is_not_flagged(wav_1k):
    clip = load_clip(wav_1k, max_seconds=2.0, trim=True)
    assert not clip.trimmed and len(clip.samples) == 16000


def test_trim_with_resampling_length():
    data = encode(tone(440, 44100, 3.0), 44100)
    x, sr = load_audio(data, 16000, max_seconds=1.5, trim=True)
    assert sr == 16000 and len(x) == 24000


@pytest.mark.parametrize("native_rate", [500, 800_000])
def test_unsupported_native_rate(native_rate):
    data = encode(np.zeros(2000, dtype=np.float32) + 0.1, native_rate, subtype="PCM_16")
    with pytest.raises(AudioError, match=rf"sample rate of {native_rate} Hz, outside the supported"):
        load_audio(data)


@pytest.mark.parametrize("bad", [0, -16000, 999, MAX_SAMPLE_RATE + 1, 16000.5, "16k", True])
def test_invalid_sample_rate_argument(wav_1k, bad):
    with pytest.raises(ParameterError, match=r"sample_rate"):
        load_audio(wav_1k, sample_rate=bad)


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), "10"])
def test_invalid_max_seconds(wav_1k, bad):
    with pytest.raises(ParameterError, match=r"max_seconds must be a positive number"):
        load_audio(wav_1k, max_seconds=bad)


def test_missing_path(tmp_path):
    with pytest.raises(AudioError, match=r"does not exist"):
        load_audio(tmp_path / "nope.wav")


def test_directory_path(tmp_path):
    with pytest.raises(AudioError, match=r"is a folder, not an audio file"):
        load_audio(tmp_path)


def test_text_mode_file_object(tmp_path):
    path = tmp_path / "clip.wav"
    path.write_text("RIFF")
    with open(path) as fh, pytest.raises(AudioError, match=r"text mode.*binary mode \('rb'\)"):
        load_audio(fh)


def test_unsupported_source_type():
    with pytest.raises(ParameterError, match=r"source must be a file path, bytes"):
        load_audio(12345)


def test_errors_are_value_errors():
    assert issubclass(AudioError, DiffResError) and issubclass(AudioError, ValueError)
    with pytest.raises(ValueError):
        load_audio(b"")


# --------------------------------------------------------------------------- odd but valid


def test_eight_channels_are_averaged():
    rng = np.random.default_rng(1)
    data = rng.uniform(-0.5, 0.5, size=(4000, 8)).astype(np.float32)
    clip = load_clip(encode(data, 16000, subtype="FLOAT"))
    assert clip.n_channels == 8
    np.testing.assert_allclose(clip.samples, data.mean(axis=1), atol=1e-6)


def test_opposite_channels_cancel():
    codes = np.round(tone(440, 16000, 0.5) * 32767).astype(np.int16)
    stereo = np.stack([codes, -codes], axis=1)  # L = +x, R = -x, exactly, in 16-bit
    samples, _ = load_audio(encode(stereo, 16000, subtype="PCM_16"))
    assert np.max(np.abs(codes)) > 16000  # loud input ...
    assert np.max(np.abs(samples)) < 1e-6  # ... cancels in the mono mix


def test_one_channel_silent_halves_the_other():
    x = tone(440, 16000, 0.5)
    stereo = np.stack([x, np.zeros_like(x)], axis=1)
    samples, _ = load_audio(encode(stereo, 16000, subtype="FLOAT"))
    np.testing.assert_allclose(samples, x / 2, atol=1e-7)


def test_96khz_loads_and_resamples():
    clip = load_clip(encode(tone(1000, 96000, 1.0), 96000, subtype="PCM_24"))
    assert clip.original_sample_rate == 96000 and clip.sample_rate == 16000
    assert len(clip.samples) == 16000
    assert rms(clip.samples[500:-500]) == pytest.approx(0.5 / np.sqrt(2), rel=0.01)


def test_8bit_unsigned_pcm():
    """8-bit WAV is unsigned (128 = silence); it must come back centred and scaled."""
    buf = io.BytesIO()
    codes = np.array([128, 192, 64, 255, 0, 128], dtype=np.uint8).repeat(100)
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(1)
        w.setframerate(8000)
        w.writeframes(codes.tobytes())
    samples, sr = load_audio(buf.getvalue(), sample_rate=None)
    assert sr == 8000
    expected = (codes.astype(np.float32) - 128) / 128
    np.testing.assert_allclose(samples, expected, atol=1e-6)


def test_int16_scaling_is_exact():
    codes = np.array([0, 16384, -16384, -32768, 32767], dtype=np.int16).repeat(10)
    data = encode(codes, 16000, subtype="PCM_16")
    samples, _ = load_audio(data)
    np.testing.assert_array_equal(samples, codes.astype(np.float32) / 32768)


def test_50ms_clip():
    clip = load_clip(encode(tone(1000, 48000, 0.05), 48000))
    assert len(clip.samples) == 800 and clip.seconds == pytest.approx(0.05)
    assert not clip.silent


def test_pure_silence_is_valid_and_flagged():
    clip = load_clip(encode(np.zeros(8000, dtype=np.float32), 16000, subtype="PCM_16"))
    assert clip.silent and clip.peak == 0.0
    assert len(clip.samples) == 8000 and not np.any(clip.samples)


def test_quiet_but_not_silent(wav_1k):
    quiet = encode(tone(1000, 16000, 0.5, amplitude=1e-3), 16000, subtype="PCM_16")
    assert not load_clip(quiet).silent
    assert not load_clip(wav_1k).silent


def test_float_wav_beyond_full_scale_is_clipped():
    x = tone(440, 16000, 0.5, amplitude=3.0)
    clip = load_clip(_float_wav(x))
    assert clip.peak == 1.0 and np.max(clip.samples) == 1.0 and np.min(clip.samples) == -1.0


@pytest.mark.parametrize(("fmt", "subtype"), [("FLAC", "PCM_16"), ("FLAC", "PCM_24"), ("OGG", "VORBIS"),
                                              ("OGG", "OPUS"), ("MP3", "MPEG_LAYER_III"), ("AIFF", "PCM_16")])
def test_compressed_and_other_formats(fmt, subtype):
    rate = 48000 if subtype == "OPUS" else 44100
    data = encode(tone(1000, rate, 1.0), rate, fmt, subtype)
    samples, sr = load_audio(data)
    assert sr == 16000
    assert abs(len(samples) - 16000) < 0.02 * 16000  # codecs may pad a little
    freqs, spec = spectrum_db(samples, sr)
    assert abs(freqs[np.argmax(spec)] - 1000) <= 5


@pytest.mark.parametrize("suffix", [".m4a", ".aac"])
def test_aac_through_ffmpeg_fallback(tmp_path, suffix):
    """AAC (in MP4, or raw ADTS) is not readable by libsndfile; ffmpeg (installed by
    setup.sh) decodes it."""
    assert shutil.which("ffmpeg"), "ffmpeg is required (scripts/setup.sh installs it)"
    path = tmp_path / f"tone{suffix}"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                    "sine=frequency=1000:sample_rate=44100:duration=1.5", "-ac", "2",
                    "-c:a", "aac", str(path)], check=True)
    with pytest.raises(sf.LibsndfileError):
        sf.info(path)  # proves this test exercises the fallback
    clip = load_clip(path)
    assert clip.original_sample_rate == 44100 and clip.n_channels == 2
    assert clip.seconds == pytest.approx(1.5, abs=0.05)
    freqs, spec = spectrum_db(clip.samples, clip.sample_rate)
    assert abs(freqs[np.argmax(spec)] - 1000) <= 5
    same = load_clip(path.read_bytes())
    np.testing.assert_array_equal(same.samples, clip.samples)
    with pytest.raises(AudioError, match=r"1\.5\d* s long, longer than the 1 s limit"):
        load_clip(path, max_seconds=1.0)
    short = load_clip(path, max_seconds=1.0, trim=True)
    assert short.trimmed and len(short.samples) == 16000


# --------------------------------------------------------------------------- resampling oracles


def test_1khz_at_44k1_loaded_at_16k_keeps_frequency_and_rms():
    x = tone(1000, 44100, 2.0)
    samples, sr = load_audio(encode(x, 44100, subtype="FLOAT"), 16000)
    assert sr == 16000 and len(samples) == 32000
    freqs, spec = spectrum_db(samples, sr)
    assert abs(freqs[np.argmax(spec)] - 1000) <= 5
    core = samples[1000:-1000]  # away from the filter's edge transients
    assert rms(core) == pytest.approx(rms(x), rel=0.01)


def test_in_band_tone_passes():
    x = tone(7000, 44100, 2.0)
    samples, _ = load_audio(encode(x, 44100, subtype="FLOAT"), 16000)
    assert abs(db(rms(samples[1000:-1000]) ** 2 / rms(x) ** 2)) < 1.0


def test_10khz_is_filtered_not_folded_to_6khz():
    """10 kHz is above the 8 kHz Nyquist of 16 kHz: it must be removed, not alias to 6 kHz."""
    x = tone(10000, 44100, 2.0)
    data = encode(x, 44100, subtype="FLOAT")
    samples, sr = load_audio(data, 16000)
    in_power = rms(x) ** 2
    assert db(rms(samples[1000:-1000]) ** 2 / in_power) < -40
    assert db(band_power(samples, sr, 5900, 6100) / in_power) < -40
    # The check has teeth: resampling by picking the nearest samples folds to 6 kHz.
    idx = np.round(np.arange(32000) * 44100 / 16000).astype(int)
    naive = x[np.minimum(idx, len(x) - 1)]
    assert db(band_power(naive, 16000, 5900, 6100) / in_power) > -3


def test_upsampling_creates_no_images():
    x = tone(1000, 8000, 1.0)
    samples, sr = load_audio(encode(x, 8000, subtype="FLOAT"), 16000)
    assert len(samples) == 16000
    assert db(band_power(samples, sr, 6900, 7100) / rms(x) ** 2) < -40  # image of 1 kHz at 7 kHz
    freqs, spec = spectrum_db(samples, sr)
    assert abs(freqs[np.argmax(spec)] - 1000) <= 5


@pytest.mark.parametrize("odd_rate", [11127, 767_999])
def test_odd_native_rates_are_resampled_without_aliasing(odd_rate):
    """767999 Hz shares no factor with 16000 (FFT path); 11127 Hz uses the polyphase path."""
    for freq, expect_pass in [(1000, True), (min(10000, odd_rate // 2 - 100), False)]:
        x = tone(freq, odd_rate, 1.0)
        samples, sr = load_audio(encode(x, odd_rate, subtype="FLOAT"), 16000)
        assert sr == 16000 and abs(len(samples) - 16000) <= 1
        gain_db = db(rms(samples[800:-800]) ** 2 / rms(x) ** 2)
        if expect_pass:
            assert abs(gain_db) < 0.5
            freqs, spec = spectrum_db(samples, sr)
            assert abs(freqs[np.argmax(spec)] - 1000) <= 5
        elif freq > 8000:
            assert gain_db < -40


def test_native_rate_is_kept_with_none():
    x = tone(1000, 22050, 0.5)
    samples, sr = load_audio(encode(x, 22050, subtype="FLOAT"), sample_rate=None)
    assert sr == 22050
    np.testing.assert_array_equal(samples, x)


def test_resample_same_rate_is_identity():
    x = tone(300, 16000, 0.1)
    np.testing.assert_array_equal(resample(x, 16000, 16000), x)


def test_resample_length():
    assert len(resample(np.zeros(44100, dtype=np.float32), 44100, 16000)) == 16000
    assert len(resample(np.zeros(1000, dtype=np.float32), 48000, 16000)) == 334


# --------------------------------------------------------------------------- sources


def test_bytes_path_and_file_object_agree(tmp_path):
    data = encode(tone(1000, 44100, 0.7) + 0.01, 44100, "FLAC")
    path = tmp_path / "clip.flac"
    path.write_bytes(data)
    ref, sr = load_audio(data)
    results = [load_audio(path), load_audio(str(path)), load_audio(io.BytesIO(data)),
               load_audio(bytearray(data)), load_audio(memoryview(data))]
    with open(path, "rb") as fh:
        results.append(load_audio(fh))
    for samples, rate in results:
        assert rate == sr
        np.testing.assert_array_equal(samples, ref)


def test_file_object_position_is_restored(wav_1k):
    """Streamlit hands the same UploadedFile to several calls: each must see the clip."""
    fh = io.BytesIO(b"junk" + wav_1k)
    fh.seek(4)
    first, _ = load_audio(fh)
    assert fh.tell() == 4
    second, _ = load_audio(fh)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(first, load_audio(wav_1k)[0])


def test_file_object_at_its_end_gets_a_hint(wav_1k):
    fh = io.BytesIO()
    fh.write(wav_1k)  # a common slip: write, then load without seeking back
    with pytest.raises(AudioError, match=r"at position 32044, its end\. Call \.seek\(0\)"):
        load_audio(fh)
    fh.seek(0)
    assert len(load_audio(fh)[0]) == 16000


def test_file_object_gets_a_name_in_messages(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello there, not a sound\n")
    with open(path, "rb") as fh, pytest.raises(AudioError, match=r"notes\.txt' is a text file"):
        load_audio(fh)


def test_clip_fields_and_frozen(wav_1k):
    clip = load_clip(wav_1k, 8000)
    assert isinstance(clip, Clip)
    assert (clip.sample_rate, clip.original_sample_rate, clip.n_channels) == (8000, 16000, 1)
    assert clip.samples.dtype == np.float32 and clip.samples.ndim == 1
    assert clip.seconds == pytest.approx(1.0) and clip.original_seconds == pytest.approx(1.0)
    assert clip.peak == pytest.approx(float(np.max(np.abs(clip.samples))))
    with pytest.raises(dataclasses.FrozenInstanceError):
        clip.sample_rate = 1  # type: ignore[misc]


def test_load_audio_matches_load_clip(wav_1k):
    samples, sr = load_audio(wav_1k, 22050)
    clip = load_clip(wav_1k, 22050)
    assert sr == clip.sample_rate == 22050
    np.testing.assert_array_equal(samples, clip.samples)


def test_sample_rate_bounds_are_accepted(wav_1k):
    for rate in (MIN_SAMPLE_RATE, MAX_SAMPLE_RATE):
        samples, sr = load_audio(wav_1k, rate)
        assert sr == rate and len(samples) == rate


# --------------------------------------------------------------------------- writing


def test_wav_bytes_round_trip():
    x = tone(440, 16000, 0.5, amplitude=0.9)
    data = wav_bytes(x, 16000)
    info = sf.info(io.BytesIO(data))
    assert (info.format, info.subtype, info.samplerate, info.channels) == ("WAV", "PCM_16", 16000, 1)
    back, sr = load_audio(data)
    assert sr == 16000
    np.testing.assert_allclose(back, x, atol=1 / 32768 + 1e-7)


def test_save_wav_to_path_and_buffer(tmp_path):
    x = tone(440, 16000, 0.2)
    path = tmp_path / "sub" / "out.wav"
    save_wav(path, x, 16000)
    buf = io.BytesIO()
    save_wav(buf, x, 16000)
    assert path.read_bytes() == buf.getvalue() == wav_bytes(x, 16000)


def test_save_wav_clips_out_of_range():
    back, _ = load_audio(wav_bytes(np.array([2.0, -2.0, 0.5] * 10), 16000))
    assert back[0] == pytest.approx(32767 / 32768) and back[1] == -1.0


@pytest.mark.parametrize(
    ("samples", "rate", "pattern"),
    [(np.zeros((10, 2)), 16000, r"mono 1-D"), (np.array([0.0, np.nan]), 16000, r"NaN or infinite"),
     (np.zeros(10), 0, r"sample_rate"), (np.zeros(10), None, r"sample_rate is required")],
)
def test_save_wav_rejects_bad_input(samples, rate, pattern):
    with pytest.raises(ParameterError, match=pattern):
        wav_bytes(samples, rate)


# --------------------------------------------------------------------------- partial decodes


@pytest.fixture(scope="module")
def compressed() -> dict[str, bytes]:
    """1 s of a 440 Hz tone (16 kHz) as FLAC and as MP3 (with the length header LAME writes)."""
    x = tone(440, 16000, 1.0)
    return {"flac": encode(x, 16000, "FLAC"), "mp3": encode(x, 16000, "MP3", "MPEG_LAYER_III")}


def _flip(data: bytes, n: int = 50, seed: int = 0) -> bytes:
    b = bytearray(data)
    for i in np.random.default_rng(seed).integers(len(b) // 4, len(b), n):
        b[i] ^= 0xFF
    return bytes(b)


@pytest.mark.parametrize("fmt", ["flac", "mp3"])
@pytest.mark.parametrize("damage", ["cut at 26%", "cut at 90%", "bit flips"])
def test_partial_decodes_are_refused_saying_how_much_decoded(compressed, fmt, damage):
    """A cut or damaged FLAC/MP3 used to load as a shorter clip while its length was reported
    from the header; now the decoded length is compared with the container's."""
    data = compressed[fmt]
    bad = _flip(data) if damage == "bit flips" else data[: int(len(data) * float(damage[7:9]) / 100)]
    with pytest.raises(AudioError, match=r"truncated") as exc:
        load_clip(bad)
    message = str(exc.value)
    if "only" in message:  # the header was readable: how much decoded is said
        got = float(re.search(r"is damaged or truncated: only ([\d.]+) s of 1 s could be decoded", message)[1])
        assert 0 <= got < 0.99
    else:  # too little of the file to open it at all
        assert damage == "cut at 26%" and "could not be decoded: it is corrupt, truncated" in message
    assert "0 Hz" not in message


def test_corrupt_ogg_is_not_reported_as_a_sample_rate_of_0_hz():
    data = encode(tone(440, 16000, 1.0), 16000, "OGG", "VORBIS")
    for bad in (data[: len(data) // 4], _flip(data), data[: int(len(data) * 0.9)]):
        with pytest.raises(AudioError) as exc:
            load_clip(bad)
        message = str(exc.value)
        assert "0 Hz" not in message and "sample rate" not in message
        assert "could not be decoded" in message or "damaged or truncated" in message


def test_vbr_mp3_without_a_length_header_decodes_whole(tmp_path):
    """libsndfile stops a variable-bitrate MP3 without a Xing header at its length estimate
    (0.18 s of 1 s here); the early stop is noticed and ffmpeg decodes all of it."""
    wav, mp3 = tmp_path / "t.wav", tmp_path / "t.mp3"
    sf.write(wav, tone(440, 16000, 1.0), 16000)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(wav), "-q:a", "5", "-write_xing", "0", str(mp3)],
                   check=True)
    with sf.SoundFile(mp3) as f:
        assert len(f.read()) < 8000  # the libsndfile behaviour this guards against
    clip = load_clip(mp3)
    assert clip.seconds == pytest.approx(1.0, abs=0.1)


def test_memory_error_while_decoding_is_never_taken_for_a_bad_file(monkeypatch, wav_1k):
    import soundfile

    def no_memory(self, *args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(soundfile.SoundFile, "read", no_memory)
    with pytest.raises(MemoryError):
        load_clip(wav_1k)


def test_decode_is_bounded_whatever_the_header_says(monkeypatch, wav_1k):
    """Decoding stops at MAX_DECODE_FRAMES (here lowered to 4000) with a clear error; a
    trimmed read of the first 0.2 s of the same file is fine."""
    from diffres import _audio_io

    monkeypatch.setattr(_audio_io, "MAX_DECODE_FRAMES", 4000)
    with pytest.raises(AudioError, match=r"too long to decode at once.*Cut it into shorter files"):
        load_clip(wav_1k)
    assert len(load_clip(wav_1k, max_seconds=0.2, trim=True).samples) == 3200


def test_many_channels_are_mixed_block_by_block_with_nan_counts_per_channel():
    x = np.tile(tone(440, 16000, 0.5)[:, None], (1, 6))
    x[5, 2] = np.nan
    x[9, 4] = np.nan
    with pytest.raises(AudioError, match=r"contains 2 NaN"):
        load_audio(encode(x.astype(np.float32), 16000, subtype="FLOAT"))
