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
   rejected, not silently shortened), partial decodes (fewer frames than the container
   promises, e.g. a cut or bit-flipped FLAC or MP3: refused, saying "only 0.26 s of 1 s
   could be decoded"), zero samples, NaN / infinite samples, native sample rates outside
   [1000, 768000] Hz, files of more than :data:`MAX_DECODE_FRAMES` frames and clips longer
   than ``max_seconds`` all raise :class:`~diffres.errors.AudioError` with a message fit to
   show a person.  A ``MemoryError`` is never taken for a bad file: it propagates.
4. **Mono**: the mean over channels (any channel count), taken block by block while
   decoding, so memory holds one channel's worth of samples.
5. **Resample** with a polyphase anti-aliasing filter (:func:`scipy.signal.resample_poly`
   with the gcd-reduced ratio, Kaiser window), never by dropping samples.
6. **Range**: integer formats are scaled to [-1, 1) by libsndfile; the result is clipped to
   [-1, 1] (float files may exceed it, and so may filter ringing).

differentiable: no (NumPy, CPU).
"""

from __future__ import annotations

import io
import math
import numbers
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, TypeVar

import numpy as np

from ._audio_io import (
    _SUPPORTED_HINT,
    MAX_DECODE_FRAMES,
    MAX_SAMPLE_RATE,
    MIN_SAMPLE_RATE,
    _check_wav_complete,
    _decode_ffmpeg,
    _decode_soundfile,
    _Decoded,
    _ffmpeg_available,
    _open_source,
    _Partial,
    _reason,
    _sniff,
)
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
    "MAX_DECODE_FRAMES",
    "SILENCE_PEAK",
]

if TYPE_CHECKING:
    import torch

AudioSource = str | os.PathLike[str] | bytes | bytearray | memoryview | BinaryIO
ArrayT = TypeVar("ArrayT", np.ndarray, "torch.Tensor")
#: Sample rate (Hz) of the project's models, built-in datasets and app: the one home of 16 kHz.
SAMPLE_RATE = 16000
#: A clip whose absolute peak is below this (about -90 dBFS, i.e. at most one 16-bit
#: step) is flagged ``silent``.  Silent clips are valid; the app shows a notice.
SILENCE_PEAK = 10 ** (-90 / 20)


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
    """Sniff, check and decode an open file: soundfile first, then ffmpeg when installed.

    A decode that comes out shorter than the container promises is never accepted silently:
    ffmpeg gets a try, and unless it decodes the length libsndfile's header gave, the file is
    refused, saying how much of it decoded.  MemoryError is never taken for a bad file."""
    Desc = desc[0].upper() + desc[1:]
    fh.seek(0)
    kind, maybe_audio = _sniff(fh.read(4096))
    if not maybe_audio:
        raise AudioError(f"{Desc} is {kind}, not audio. Choose an audio file ({_SUPPORTED_HINT}).")
    _check_wav_complete(fh, desc)
    decoded, partial, reason = _attempt(_decode_soundfile, fh, desc, max_s, trim)
    if decoded is None and _ffmpeg_available():
        decoded, partial_ff, reason_ff = _attempt(_decode_ffmpeg, fh, path, desc, max_s, trim)
        if partial is None or (partial_ff is not None and partial_ff.got_seconds > partial.got_seconds):
            partial = partial_ff
        reason = reason or reason_ff
    if decoded is not None and partial is not None and not decoded.trimmed:
        got = len(decoded.samples) / decoded.rate
        if partial.expected_seconds > 0 and got < partial.expected_seconds - 0.01:
            raise _Partial(max(got, partial.got_seconds), partial.expected_seconds).error(desc)
    if decoded is not None:
        return decoded
    if partial is not None:
        raise partial.error(desc)
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


def _attempt(decoder, *args) -> tuple[_Decoded | None, _Partial | None, str]:
    """Run one decoder: (result, partial decode, reason it failed); AudioError and MemoryError
    propagate."""
    try:
        return decoder(*args), None, ""
    except (AudioError, MemoryError):
        raise
    except _Partial as p:
        return None, p, ""
    except Exception as err:
        return None, None, _reason(err)


def _check_samples(decoded: _Decoded, Desc: str) -> None:
    """No samples, or NaN / infinite ones, are an AudioError naming how many."""
    if decoded.samples.shape[0] == 0:
        raise AudioError(f"{Desc} contains no audio samples (0 frames). Choose a clip with sound in it.")
    n_nan, n_inf = decoded.n_nan, decoded.n_inf
    if not n_nan and not n_inf:
        return
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

    Example:
        >>> clip = load_clip(wav_bytes(np.zeros(8000, np.float32), 8000))  # 1 s of silence at 8 kHz
        >>> clip.samples.shape, clip.sample_rate, clip.original_sample_rate, clip.silent
        ((16000,), 16000, 8000, True)
    """
    rate_out = _check_sample_rate(sample_rate)
    max_s = _check_max_seconds(max_seconds)
    fh, path, desc, close_after = _open_source(source)
    Desc = desc[0].upper() + desc[1:]
    try:
        decoded = _decode(fh, path, desc, max_s, trim)
    finally:
        if close_after:
            fh.close()
    _check_samples(decoded, Desc)
    mono, rate, channels = decoded.samples, decoded.rate, decoded.channels
    seconds, trimmed = decoded.seconds, decoded.trimmed
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

    Example:
        >>> samples, rate = load_audio(wav_bytes(np.full(8000, 0.5, np.float32), 16000))
        >>> samples.shape, rate, round(float(samples.max()), 3)
        ((8000,), 16000, 0.5)
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

    Example:
        >>> wav_bytes(np.zeros(10, np.float32), 16000)[:4]
        b'RIFF'
    """
    buf = io.BytesIO()
    save_wav(buf, samples, sample_rate)
    return buf.getvalue()
