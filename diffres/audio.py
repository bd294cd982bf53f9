"""Reading audio clips: decode, validate, mix to mono, resample.

Everything the app, the datasets and the command line read goes through :func:`load_clip`
(or its thin wrapper :func:`load_audio`), so a clip is decoded, checked and resampled the
same way everywhere.

Pipeline
--------
1. **Source.** A path (``str`` / ``os.PathLike``), ``bytes`` (or ``bytearray`` /
   ``memoryview``) or a binary file object (anything with ``.read()`` returning bytes, e.g.
   Streamlit's ``UploadedFile``).  Paths, bytes and file objects holding the same file give
   identical results.
2. **Decode** with ``soundfile`` (libsndfile: WAV, FLAC, OGG/Vorbis/Opus, MP3, AIFF, ...).
   What libsndfile cannot read (e.g. AAC in ``.m4a``) is handed to ffmpeg through
   ``audioread`` when ffmpeg is installed.  Headerless raw PCM is never guessed.
3. **Validate**: empty files, files that are not audio (text, images, archives), corrupt or
   truncated files (a WAV whose ``data`` chunk promises more bytes than the file holds is
   rejected, not silently shortened), zero samples, NaN / infinite samples, native sample
   rates outside [1000, 768000] Hz and clips longer than ``max_seconds`` all raise
   :class:`~diffres.errors.AudioError` with a message fit to show a person.
4. **Mono**: the mean over channels (any channel count).
5. **Resample** with a polyphase anti-aliasing filter (:func:`scipy.signal.resample_poly`
   with the gcd-reduced ratio, Kaiser window), never by dropping samples.
6. **Range**: integer formats are scaled to [-1, 1) by libsndfile; the result is clipped to
   [-1, 1] (float files may exceed it, and so may filter ringing).

differentiable: no (NumPy, CPU).
"""

from __future__ import annotations

import contextlib
import io
import math
import numbers
import os
import shutil
import struct
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar

import numpy as np

from .errors import AudioError, ParameterError

__all__ = [
    "Clip",
    "load_clip",
    "load_audio",
    "save_wav",
    "wav_bytes",
    "resample",
    "fit_length",
    "split_clip",
    "SAMPLE_RATE",
    "MIN_SAMPLE_RATE",
    "MAX_SAMPLE_RATE",
    "SILENCE_PEAK",
]

if TYPE_CHECKING:
    import torch

AudioSource = str | os.PathLike[str] | bytes | bytearray | memoryview | BinaryIO
ArrayT = TypeVar("ArrayT", np.ndarray, "torch.Tensor")
#: A decoder's result: frames ``[n, channels]`` float32, native rate (Hz), channels, the whole
#: file's length in seconds, whether it was trimmed to ``max_seconds``.
_Decoded = tuple[np.ndarray, int, int, float, bool]

#: Sample rate (Hz) of the project's models, built-in datasets and app: the one home of 16 kHz.
SAMPLE_RATE = 16000
#: Lowest native or requested sample rate accepted, in Hz.
MIN_SAMPLE_RATE = 1000
#: Highest native or requested sample rate accepted, in Hz.
MAX_SAMPLE_RATE = 768_000
#: A clip whose absolute peak is below this (about -90 dBFS, i.e. at most one 16-bit
#: step) is flagged ``silent``.  Silent clips are valid; the app shows a notice.
SILENCE_PEAK = 10 ** (-90 / 20)

_SUPPORTED_HINT = "WAV, FLAC, OGG, MP3 or AIFF"


# --------------------------------------------------------------------------- result type


@dataclass(frozen=True)
class Clip:
    """A decoded, validated mono clip.

    Attributes:
        samples: ``np.ndarray [shape=(n,), dtype=float32]``, mono, in [-1, 1], at
            ``sample_rate``.
        sample_rate: rate of ``samples`` in Hz (the requested rate, or the native one when
            ``sample_rate=None`` was asked for).
        original_sample_rate: the file's native rate in Hz.
        n_channels: number of channels in the file (mixed down to mono by averaging).
        original_seconds: length of the whole file in seconds, before any trimming.
        trimmed: ``True`` when the file was longer than ``max_seconds`` and ``trim=True``
            kept only its first ``max_seconds``.
        peak: largest absolute sample value of ``samples``, in [0, 1].
        silent: ``True`` when ``peak < SILENCE_PEAK`` (about -90 dBFS).  Still valid.
    """

    samples: np.ndarray
    sample_rate: int
    original_sample_rate: int
    n_channels: int
    original_seconds: float
    trimmed: bool
    peak: float
    silent: bool

    @property
    def seconds(self) -> float:
        """Length of ``samples`` in seconds."""
        return len(self.samples) / self.sample_rate


# --------------------------------------------------------------------------- helpers


def _check_sample_rate(sample_rate) -> int | None:
    if sample_rate is None:
        return None
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, numbers.Real):
        raise ParameterError(f"sample_rate must be a whole number of Hz or None, got {sample_rate!r}.")
    if not float(sample_rate).is_integer():
        raise ParameterError(f"sample_rate must be a whole number of Hz, got {sample_rate!r}.")
    rate = int(float(sample_rate))
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise ParameterError(
            f"sample_rate must be in [{MIN_SAMPLE_RATE}, {MAX_SAMPLE_RATE}] Hz, got {rate}. "
            f"Use {SAMPLE_RATE} for the models in this project."
        )
    return rate


def _check_max_seconds(max_seconds) -> float | None:
    if max_seconds is None:
        return None
    if isinstance(max_seconds, bool) or not isinstance(max_seconds, numbers.Real):
        raise ParameterError(f"max_seconds must be a positive number or None, got {max_seconds!r}.")
    value = float(max_seconds)
    if not math.isfinite(value) or value <= 0:
        raise ParameterError(f"max_seconds must be a positive number or None, got {max_seconds!r}.")
    return value


def _fmt_seconds(seconds: float) -> str:
    return f"{seconds:.3g} s" if seconds < 10 else f"{seconds:.1f} s"


def _describe(source) -> str:
    if isinstance(source, (str, os.PathLike)):
        return f"'{os.fspath(source)}'"
    name = getattr(source, "name", None)
    if isinstance(name, str) and name:
        return f"'{name}'"
    return "the input"


def _seekable(fileobj) -> bool:
    try:
        return bool(fileobj.seekable())
    except Exception:
        return False


def _open_path(source: str | os.PathLike[str]) -> tuple[BinaryIO, str | None, str, bool]:
    path = os.fspath(source)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    desc = f"'{path}'"
    if not os.path.exists(path):
        raise AudioError(f"Audio file {desc} does not exist. Check the path.")
    if os.path.isdir(path):
        raise AudioError(f"{desc} is a folder, not an audio file. Give the path of a file.")
    try:
        fh = open(path, "rb")  # noqa: SIM115 - returned open, closed by the caller
    except OSError as err:
        raise AudioError(f"Cannot open {desc}: {err.strerror or err}. Check its permissions.") from None
    if os.fstat(fh.fileno()).st_size == 0:
        fh.close()
        raise AudioError(f"Audio file {desc} is empty (0 bytes). Choose a non-empty audio file.")
    return fh, path, desc, True


def _open_file_object(source: Any) -> tuple[BinaryIO, str | None, str, bool]:
    desc = _describe(source)
    try:
        start = source.tell() if _seekable(source) else None
        data = source.read()
        if start is not None:
            source.seek(start)  # leave it as found, so the same object loads again
    except Exception as err:
        raise AudioError(f"Could not read {desc}: {err}.") from None
    if isinstance(data, str):
        raise AudioError(f"{desc} was opened in text mode; open audio files in binary mode ('rb').")
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise AudioError(f"Reading {desc} did not return bytes (got {type(data).__name__}).")
    data = bytes(data)
    if not data and start:
        raise AudioError(
            f"Nothing left to read from {desc}: the file object is at position {start}, "
            "its end. Call .seek(0) on it before loading (e.g. after writing to it)."
        )
    if not data:
        raise AudioError(f"{desc[0].upper()}{desc[1:]} is empty (0 bytes). Choose a non-empty audio file.")
    return io.BytesIO(data), None, desc, True


def _open_source(source: Any) -> tuple[BinaryIO, str | None, str, bool]:
    """Return (seekable binary file, path or None, description, close_after)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if not data:
            raise AudioError("The input is empty (0 bytes). Choose a non-empty audio file.")
        return io.BytesIO(data), None, "the input", True
    if isinstance(source, (str, os.PathLike)):
        return _open_path(source)
    if hasattr(source, "read"):
        return _open_file_object(source)
    raise ParameterError(f"source must be a file path, bytes, or a binary file object, got {type(source).__name__}.")


def _is_adts(head: bytes) -> bool:
    return len(head) > 1 and head[0] == 0xFF and head[1] & 0xF6 == 0xF0


def _is_mp3(head: bytes) -> bool:
    return head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0)


#: (test of the first bytes, what the file is, whether it is audio), in the order tried.
_SIGNATURES: tuple[tuple[Callable[[bytes], bool], str, bool], ...] = (
    (lambda h: h[:4] in (b"RIFF", b"RIFX") and h[8:12] == b"WAVE", "a WAV file", True),
    (lambda h: h[:4] == b"RF64", "an RF64 (WAV) file", True),
    (lambda h: h[:4] == b"fLaC", "a FLAC file", True),
    (lambda h: h[:4] == b"OggS", "an OGG file", True),
    (_is_adts, "an AAC (ADTS) file", True),
    (_is_mp3, "an MP3 file", True),
    (lambda h: h[:4] == b"FORM" and h[8:12] in (b"AIFF", b"AIFC"), "an AIFF file", True),
    (lambda h: h[:7] == b"NIST_1A", "a NIST SPHERE file", True),
    (lambda h: h[4:8] == b"ftyp", "an MP4/M4A file", True),
    (lambda h: h[:4] == b"\x1aE\xdf\xa3", "a WebM/Matroska file", True),
    (lambda h: h[:8] == b"\x89PNG\r\n\x1a\n", "a PNG image", False),
    (lambda h: h[:3] == b"\xff\xd8\xff", "a JPEG image", False),
    (lambda h: h[:4] == b"GIF8", "a GIF image", False),
    (lambda h: h[:4] == b"%PDF", "a PDF document", False),
    (lambda h: h[:4] == b"PK\x03\x04", "a ZIP archive", False),
    (lambda h: h[:2] == b"\x1f\x8b", "a gzip archive", False),
)


def _looks_like_text(head: bytes) -> bool:
    try:
        text = head[:1024].decode("utf-8")
    except UnicodeDecodeError:
        # a multi-byte character cut at the end of the window is still text
        try:
            text = head[:1020].decode("utf-8")
        except UnicodeDecodeError:
            return False
    return bool(text) and all(c.isprintable() or c in "\r\n\t\f" for c in text)


def _sniff(head: bytes) -> tuple[str, bool]:
    """Name the kind of file from its first bytes; the bool says whether it is audio."""
    for test, kind, is_audio in _SIGNATURES:
        if test(head):
            return kind, is_audio
    if _looks_like_text(head):
        return "a text file", False
    return "", True


def _check_wav_complete(fh: BinaryIO, desc: str) -> None:
    """Raise AudioError when a RIFF/WAVE file's data chunk is cut short.

    libsndfile silently shortens such files; a clip cut off in transfer should be
    reported, not analysed as if complete.  Streaming writers that leave the size as a
    placeholder (0 or 0xFFFFFFFF) are accepted.
    """
    fh.seek(0, io.SEEK_END)
    size = fh.tell()
    fh.seek(0)
    header = fh.read(12)
    if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
        return
    pos = 12
    block_align = 1
    while pos + 8 <= size:
        fh.seek(pos)
        chunk = fh.read(8)
        if len(chunk) < 8:
            return
        chunk_id, chunk_size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
        if chunk_id == b"fmt ":
            fmt = fh.read(16)
            if len(fmt) >= 14:
                block_align = max(1, struct.unpack("<H", fmt[12:14])[0])
        if chunk_id == b"data":
            if chunk_size in (0, 0xFFFFFFFF) or chunk_size >= 0x7FFF0000:
                return  # size left as a placeholder by a streaming writer
            available = size - (pos + 8)
            if chunk_size - available > max(1, block_align - 1):
                percent = 100.0 * (1 - available / chunk_size)
                raise AudioError(
                    f"{desc[0].upper()}{desc[1:]} is a truncated WAV file: its header promises "
                    f"{chunk_size} bytes of audio but only {max(available, 0)} are present "
                    f"({percent:.0f}% missing). The file was probably cut off while being "
                    "copied or downloaded; get a complete copy or re-export it."
                )
            return
        pos += 8 + chunk_size + (chunk_size & 1)


def _too_long_error(desc: str, seconds: float, max_seconds: float) -> AudioError:
    return AudioError(
        f"{desc[0].upper()}{desc[1:]} is {_fmt_seconds(seconds)} long, longer than the "
        f"{_fmt_seconds(max_seconds)} limit. Use a clip of at most {_fmt_seconds(max_seconds)} "
        f"(cut it in an audio editor), or load it with trim=True to keep only the first "
        f"{_fmt_seconds(max_seconds)}."
    )


def _check_native_rate(rate: int, desc: str) -> None:
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise AudioError(
            f"{desc[0].upper()}{desc[1:]} has a sample rate of {rate} Hz, outside the supported "
            f"{MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz. Re-export it at a common rate such as "
            "16000, 44100 or 48000 Hz."
        )


def _decode_soundfile(fh: BinaryIO, desc: str, max_seconds: float | None, trim: bool) -> _Decoded:
    """Decode with libsndfile. Returns (frames [n, ch] float32, rate, channels, seconds, trimmed)."""
    import soundfile as sf

    fh.seek(0)
    with sf.SoundFile(fh) as f:
        rate, channels, frames = int(f.samplerate), int(f.channels), int(f.frames)
        _check_native_rate(rate, desc)
        if channels < 1:
            raise AudioError(f"{desc[0].upper()}{desc[1:]} has no audio channels.")
        seconds = frames / rate
        n_read = -1
        trimmed = False
        if max_seconds is not None and seconds > max_seconds:
            if not trim:
                raise _too_long_error(desc, seconds, max_seconds)
            n_read = int(round(max_seconds * rate))
            trimmed = True
        data = f.read(n_read, dtype="float32", always_2d=True)
    if n_read < 0 and len(data) != frames and frames > 0:
        seconds = len(data) / rate  # header estimate (MP3) differed from what decoded
    return data, rate, channels, seconds, trimmed


def _decode_ffmpeg(fh: BinaryIO, path: str | None, desc: str, max_seconds: float | None, trim: bool) -> _Decoded:
    """Decode with ffmpeg through audioread (for what libsndfile cannot read)."""
    import audioread.ffdec as ffdec

    tmp_name = None
    try:
        if path is None:
            fh.seek(0)
            with tempfile.NamedTemporaryFile(suffix=".audio", delete=False) as tmp:
                shutil.copyfileobj(fh, tmp)
                tmp_name = tmp.name
        with ffdec.FFmpegAudioFile(path or tmp_name) as f:
            rate, channels = int(f.samplerate), int(f.channels)
            _check_native_rate(rate, desc)
            if channels < 1:
                raise AudioError(f"{desc[0].upper()}{desc[1:]} has no audio channels.")
            duration = float(f.duration or 0.0)
            if max_seconds is not None and duration > max_seconds and not trim:
                raise _too_long_error(desc, duration, max_seconds)
            limit = None if max_seconds is None else int(round(max_seconds * rate)) * channels
            chunks, n = [], 0
            for buf in f:
                chunk = np.frombuffer(buf, dtype="<i2")
                chunks.append(chunk)
                n += len(chunk)
                if limit is not None and trim and n > limit:
                    break
        pcm = np.concatenate(chunks) if chunks else np.zeros(0, dtype="<i2")
        pcm = pcm[: len(pcm) - len(pcm) % channels]
        data = (pcm.astype(np.float32) / 32768.0).reshape(-1, channels)
        seconds = max(duration, len(data) / rate)
        trimmed = False
        if max_seconds is not None and len(data) / rate > max_seconds:
            if not trim:
                raise _too_long_error(desc, seconds, max_seconds)
            data = data[: int(round(max_seconds * rate))]
            trimmed = True
        elif max_seconds is not None and trim and seconds > max_seconds:
            trimmed = True
        return data, rate, channels, seconds, trimmed
    finally:
        if tmp_name is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)


def _ffmpeg_available() -> bool:
    if shutil.which("ffmpeg") is None and shutil.which("avconv") is None:
        return False
    try:
        import audioread.ffdec  # noqa: F401
    except Exception:
        return False
    return True


#: Above this up/down factor the polyphase filter gets huge (e.g. 767999 Hz -> 16 kHz has
#: no common divisor): such odd rates are resampled in the frequency domain instead.
_MAX_POLYPHASE_FACTOR = 20_000


def resample(samples: np.ndarray, orig_rate: int, new_rate: int) -> np.ndarray:
    """Resample a mono signal with an anti-aliasing low-pass filter.

    Args:
        samples: ``np.ndarray [shape=(n,)]`` float signal.
        orig_rate: its rate in Hz, int > 0.
        new_rate: target rate in Hz, int > 0.

    Returns:
        ``np.ndarray [shape=(ceil(n * new_rate / orig_rate),), dtype=float32]``.  Content
        above the lower Nyquist frequency is removed, not folded back: a polyphase
        Kaiser-windowed FIR (:func:`scipy.signal.resample_poly` with the gcd-reduced
        up/down factors), or, when those factors exceed 20000 (rates with almost no
        common divisor), an FFT resampler (:func:`scipy.signal.resample`, ideal low-pass).
    """
    samples = np.asarray(samples, dtype=np.float32)
    if orig_rate == new_rate or samples.size == 0:
        return samples.copy()
    from scipy.signal import resample as fft_resample
    from scipy.signal import resample_poly

    g = math.gcd(int(orig_rate), int(new_rate))
    up, down = int(new_rate) // g, int(orig_rate) // g
    if max(up, down) <= _MAX_POLYPHASE_FACTOR:
        out = resample_poly(samples.astype(np.float64), up, down)  # float64 inside: rounded once, at the end
    else:
        out = fft_resample(samples.astype(np.float64), -(-len(samples) * up // down))
    return np.asarray(out, dtype=np.float32)


def fit_length(samples: ArrayT, n_samples: int) -> ArrayT:
    """Centre-crop or centre-pad (with zeros) the last axis to exactly ``n_samples``.

    The one clip-fitting rule of the project: datasets fit their clips with it for training
    and :meth:`diffres.models.AudioClassifier.fit_length` fits a clip to classify, so a
    short clip sits in the middle of the window in both.

    Args:
        samples: ``np.ndarray`` or ``torch.Tensor`` ``[..., n]`` (e.g. ``[n]`` or
            ``[batch, n]``).
        n_samples: target length in samples, int >= 1.

    Returns:
        The same type, ``[..., n_samples]``: the middle ``n_samples`` of a longer clip (a
        view), or a shorter clip with ``(n_samples - n) // 2`` zeros before it and the
        rest after.

    Example:
        >>> fit_length(np.array([1.0, 2.0]), 5).tolist()
        [0.0, 1.0, 2.0, 0.0, 0.0]
        >>> fit_length(np.arange(5.0), 2).tolist()
        [1.0, 2.0]
    """
    if isinstance(n_samples, bool) or int(n_samples) != n_samples or n_samples < 1:
        raise ParameterError(f"n_samples must be a whole number >= 1, got {n_samples!r}.")
    n_samples = int(n_samples)
    n = samples.shape[-1]
    if n > n_samples:
        start = (n - n_samples) // 2
        return samples[..., start : start + n_samples]
    if n == n_samples:
        return samples
    shape = (*samples.shape[:-1], n_samples)
    out = np.zeros(shape, samples.dtype) if isinstance(samples, np.ndarray) else samples.new_zeros(shape)
    left = (n_samples - n) // 2
    out[..., left : left + n] = samples
    return out


def split_clip(samples: np.ndarray, n_samples: int, *, min_peak: float = 1e-4) -> list[np.ndarray]:
    """Cut a long clip into ``n_samples``-long pieces; drop (nearly) silent ones.

    A clip that holds at least two pieces is cut (the remainder shorter than a piece is
    dropped), and pieces whose absolute peak is at most ``min_peak`` go; a shorter clip comes
    back whole (an empty one as no piece).  The app cuts a long recording of one class into
    training examples this way.

    Args:
        samples: ``[n]`` mono samples.
        n_samples: piece length in samples, int >= 1.
        min_peak: pieces with ``max |x| <= min_peak`` are left out (default about -80 dBFS).

    Returns:
        A list of ``[n_samples]`` float32 arrays (views), or ``[samples]`` for a short clip.

    Example:
        >>> x = np.r_[np.ones(4), np.zeros(4), np.ones(5)].astype(np.float32)
        >>> [p.tolist() for p in split_clip(x, 4)]
        [[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0]]
        >>> len(split_clip(x[:7], 4))  # shorter than two pieces: whole
        1
    """
    x = np.asarray(samples, dtype=np.float32).reshape(-1)
    if x.size < 2 * n_samples:
        return [x] if x.size else []
    pieces = [x[i : i + n_samples] for i in range(0, x.size - n_samples + 1, n_samples)]
    return [p for p in pieces if float(np.max(np.abs(p))) > min_peak]


# --------------------------------------------------------------------------- public API


def _decode(fh: BinaryIO, path: str | None, desc: str, max_s: float | None, trim: bool) -> _Decoded:
    """Sniff, check and decode an open file: soundfile first, then ffmpeg when installed."""
    Desc = desc[0].upper() + desc[1:]
    fh.seek(0)
    kind, maybe_audio = _sniff(fh.read(4096))
    if not maybe_audio:
        raise AudioError(f"{Desc} is {kind}, not audio. Choose an audio file ({_SUPPORTED_HINT}).")
    _check_wav_complete(fh, desc)
    reason = ""
    decoded: _Decoded | None
    try:
        decoded = _decode_soundfile(fh, desc, max_s, trim)
    except AudioError:
        raise
    except Exception as sf_err:
        reason = str(getattr(sf_err, "error_string", "") or sf_err)
        decoded = None
    if decoded is None and _ffmpeg_available():
        try:
            decoded = _decode_ffmpeg(fh, path, desc, max_s, trim)
        except AudioError:
            raise
        except Exception:
            decoded = None
    if decoded is not None:
        return decoded
    if kind:
        raise AudioError(
            f"{Desc} looks like {kind} but could not be decoded: it is corrupt, "
            f"truncated or uses an unsupported codec ({reason}). Re-export it as "
            "16-bit WAV or FLAC."
        )
    raise AudioError(
        f"{Desc} is not in an audio format that can be read. Use {_SUPPORTED_HINT}"
        " (headerless raw PCM is not accepted: add a WAV header, e.g. with sox or"
        " ffmpeg)."
    )


def _check_samples(data: np.ndarray, Desc: str) -> None:
    """No samples, or NaN / infinite ones, are an AudioError naming how many."""
    if data.shape[0] == 0:
        raise AudioError(f"{Desc} contains no audio samples (0 frames). Choose a clip with sound in it.")
    finite = np.isfinite(data)
    if finite.all():
        return
    n_nan = int(np.isnan(data).sum())
    n_inf = int(data.size - finite.sum() - n_nan)
    what = []
    if n_nan:
        what.append(f"{n_nan} NaN (not-a-number)")
    if n_inf:
        what.append(f"{n_inf} infinite")
    plural = "s" if n_nan + n_inf > 1 else ""
    raise AudioError(
        f"{Desc} contains {' and '.join(what)} sample value{plural}, so it cannot be "
        "analysed. The file is damaged or was written by a faulty program; re-export it as "
        "16-bit WAV."
    )


def load_clip(
    source: AudioSource,
    sample_rate: int | None = SAMPLE_RATE,
    max_seconds: float | None = None,
    *,
    trim: bool = False,
) -> Clip:
    """Decode, validate, mix to mono and resample one audio clip.

    Args:
        source: a path (``str`` or ``os.PathLike``), ``bytes``, or a binary file object
            (``.read()`` returning bytes; read from its current position, which is
            restored afterwards when the object is seekable).
        sample_rate: rate of the returned samples in Hz, int in [1000, 768000], or ``None``
            to keep the file's native rate.  Default :data:`SAMPLE_RATE` (16000).
        max_seconds: longest clip accepted, in seconds (float > 0), or ``None`` for no
            limit.  A longer clip raises :class:`AudioError` naming its length, the limit
            and what to do, unless ``trim=True``.
        trim: keyword-only.  When ``True`` and the clip is longer than ``max_seconds``,
            keep its first ``max_seconds`` instead of raising and set ``Clip.trimmed``
            (the app shows a notice).  Ignored when ``max_seconds`` is ``None``.

    Returns:
        :class:`Clip` with ``samples`` ``[shape=(n,), dtype=float32]`` in [-1, 1].

    Raises:
        AudioError: empty input, not audio (text, image, archive...), corrupt or truncated
            file, zero samples, NaN or infinite samples, a native sample rate outside
            [1000, 768000] Hz, or longer than ``max_seconds`` without ``trim``.
        ParameterError: ``sample_rate`` or ``max_seconds`` invalid, or ``source`` of an
            unsupported type.

    Silent clips (``Clip.silent``), very short clips (a few ms), 8-bit, 96 kHz and
    many-channel files are all valid.
    """
    rate_out = _check_sample_rate(sample_rate)
    max_s = _check_max_seconds(max_seconds)
    fh, path, desc, close_after = _open_source(source)
    Desc = desc[0].upper() + desc[1:]
    try:
        data, rate, channels, seconds, trimmed = _decode(fh, path, desc, max_s, trim)
    finally:
        if close_after:
            fh.close()
    _check_samples(data, Desc)

    mono = data.mean(axis=1, dtype=np.float64).astype(np.float32) if channels > 1 else data[:, 0]
    target = rate if rate_out is None else rate_out
    if target != rate:
        mono = resample(mono, rate, target)
    mono = np.clip(mono, -1.0, 1.0).astype(np.float32, copy=False)
    mono = np.ascontiguousarray(mono)
    peak = float(np.max(np.abs(mono))) if mono.size else 0.0
    return Clip(
        samples=mono,
        sample_rate=int(target),
        original_sample_rate=int(rate),
        n_channels=int(channels),
        original_seconds=float(seconds),
        trimmed=bool(trimmed),
        peak=peak,
        silent=peak < SILENCE_PEAK,
    )


def load_audio(
    source: AudioSource,
    sample_rate: int | None = SAMPLE_RATE,
    max_seconds: float | None = None,
    *,
    trim: bool = False,
) -> tuple[np.ndarray, int]:
    """Load a clip as float32 mono samples in [-1, 1]; see :func:`load_clip`.

    Args:
        source: path, ``bytes`` or binary file object.
        sample_rate: output rate in Hz (int in [1000, 768000]) or ``None`` for the native
            rate.  Default :data:`SAMPLE_RATE` (16000).
        max_seconds: longest clip accepted, in seconds, or ``None``.  Longer clips raise
            :class:`AudioError` (saying the length, the limit and what to do) unless
            ``trim=True``, which keeps the first ``max_seconds``; use :func:`load_clip` to
            learn whether that happened.
        trim: keyword-only, see above.

    Returns:
        ``(samples, sample_rate)``: ``np.ndarray [shape=(n,), dtype=float32]`` and its
        rate in Hz.

    Raises:
        AudioError, ParameterError: as :func:`load_clip`.
    """
    clip = load_clip(source, sample_rate, max_seconds, trim=trim)
    return clip.samples, clip.sample_rate


def _as_pcm_input(samples, sample_rate) -> tuple[np.ndarray, int]:
    rate = _check_sample_rate(sample_rate)
    if rate is None:
        raise ParameterError("sample_rate is required to write audio, got None.")
    x = np.asarray(samples)
    if x.ndim == 2 and 1 in x.shape:
        x = x.reshape(-1)
    if x.ndim != 1:
        raise ParameterError(f"samples must be a mono 1-D array [n], got shape {tuple(x.shape)}.")
    if not np.issubdtype(x.dtype, np.number) or np.iscomplexobj(x):
        raise ParameterError(f"samples must be real numbers, got dtype {x.dtype}.")
    x = x.astype(np.float64)
    if not np.isfinite(x).all():
        raise ParameterError("samples contain NaN or infinite values; they cannot be written.")
    return np.clip(x, -1.0, 1.0), rate


def save_wav(path_or_buffer: str | os.PathLike | BinaryIO, samples: np.ndarray, sample_rate: int) -> None:
    """Write mono samples as a 16-bit PCM WAV file.

    Args:
        path_or_buffer: destination path, or a writable binary file object.
        samples: ``np.ndarray [shape=(n,)]`` float in [-1, 1] (values outside are clipped).
        sample_rate: rate in Hz, int in [1000, 768000].

    Raises:
        ParameterError: samples not 1-D, not finite, or ``sample_rate`` invalid.
    """
    import soundfile as sf

    x, rate = _as_pcm_input(samples, sample_rate)
    if isinstance(path_or_buffer, (str, os.PathLike)):
        Path(path_or_buffer).parent.mkdir(parents=True, exist_ok=True)
    sf.write(path_or_buffer, x, rate, subtype="PCM_16", format="WAV")


def wav_bytes(samples: np.ndarray, sample_rate: int) -> bytes:
    """Encode mono samples as the bytes of a 16-bit PCM WAV file (e.g. for ``st.audio``).

    Args:
        samples: ``np.ndarray [shape=(n,)]`` float in [-1, 1] (values outside are clipped).
        sample_rate: rate in Hz, int in [1000, 768000].

    Returns:
        The complete WAV file as ``bytes``.
    """
    buf = io.BytesIO()
    save_wav(buf, samples, sample_rate)
    return buf.getvalue()
