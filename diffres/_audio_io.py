"""Reading audio bytes for :mod:`diffres.audio`: opening the source, recognising the format
from its first bytes, catching truncated WAV files, and decoding with libsndfile or ffmpeg.

Private: :func:`diffres.audio.load_clip` is the public entry point (and documents the whole
pipeline).  Split from it so that each module reads in one sitting.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import struct
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np

from .errors import AudioError, ParameterError

#: Lowest native or requested sample rate accepted, in Hz.
MIN_SAMPLE_RATE = 1000
#: Highest native or requested sample rate accepted, in Hz.
MAX_SAMPLE_RATE = 768_000
_SUPPORTED_HINT = "WAV, FLAC, OGG, MP3 or AIFF"

#: Most frames (samples per channel) one call decodes: the mono result is at most 128 MB of
#: float32 (about 11 minutes at 48 kHz, 35 minutes at 16 kHz).  Longer files are refused,
#: so memory stays bounded whatever a file's header claims.
MAX_DECODE_FRAMES = 1 << 25
#: Most channels a file may have (libsndfile's own limit is 1024).
MAX_CHANNELS = 256
#: Values (frames x channels) read per block; decoding mixes each block to mono at once.
_BLOCK_VALUES = 1 << 20


@dataclass(frozen=True)
class _Decoded:
    """A decoder's result."""

    samples: np.ndarray  #: ``[n]`` float32, mono (the mean over channels), native rate
    rate: int  #: native sample rate, Hz
    channels: int  #: channels in the file
    seconds: float  #: the whole file's length in seconds
    trimmed: bool  #: only the first ``max_seconds`` were decoded
    n_nan: int = 0  #: NaN values in the file's decoded part (before mixing)
    n_inf: int = 0  #: infinite values likewise


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
    except MemoryError:
        raise
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


class _Undecodable(Exception):
    """A decoder could not make sense of the file (not shown to people as such: :func:`_decode`
    turns it into an :class:`AudioError` naming the format and the reason)."""


@dataclass
class _Partial(Exception):
    """A decoder produced fewer frames than the container promises (or stopped early)."""

    got_seconds: float
    expected_seconds: float
    reason: str = ""

    def error(self, desc: str) -> AudioError:
        why = f" ({self.reason})" if self.reason else ""
        expected = f"{_fmt_seconds(self.expected_seconds)}" if self.expected_seconds > 0 else "the whole file"
        return AudioError(
            f"{desc[0].upper()}{desc[1:]} is damaged or truncated: only {_fmt_seconds(self.got_seconds)} of "
            f"{expected} could be decoded{why}. Get a complete copy of the file or re-export it "
            "(16-bit WAV or FLAC)."
        )


def _check_native_rate(rate: int, desc: str) -> None:
    if rate <= 0:
        raise _Undecodable(f"its header gives no valid sample rate ({rate} Hz)")
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise AudioError(
            f"{desc[0].upper()}{desc[1:]} has a sample rate of {rate} Hz, outside the supported "
            f"{MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz. Re-export it at a common rate such as "
            "16000, 44100 or 48000 Hz."
        )


def _check_channels(channels: int) -> None:
    if not 1 <= channels <= MAX_CHANNELS:
        raise _Undecodable(f"its header gives {channels} channels")


def _too_big_error(desc: str, frames: int, rate: int) -> AudioError:
    return AudioError(
        f"{desc[0].upper()}{desc[1:]} is too long to decode at once: {_fmt_seconds(frames / rate)} at {rate} Hz "
        f"is over {MAX_DECODE_FRAMES:,} samples (about {MAX_DECODE_FRAMES / 48000 / 60:.0f} minutes at 48 kHz). "
        "Cut it into shorter files."
    )


def _tolerance(frames: int, *, exact: bool) -> int:
    """Frames a decoder may come short of the container's count: a rounding's worth when the
    count is exact (WAV, FLAC, OGG, AIFF, an MP3 with a length header), else (an MP3's
    estimate from its bitrate) one MP3 frame or 2 %, whichever is larger."""
    return 64 if exact else max(1152, frames // 50)


def _mp3_has_length_header(fh: BinaryIO) -> bool:
    """Whether an MP3 carries a Xing/Info or VBRI header (an exact frame count): looked for
    in the first frame, after an ID3v2 tag."""
    fh.seek(0)
    head = fh.read(10)
    start = 0
    if head[:3] == b"ID3" and len(head) == 10:
        start = 10 + ((head[6] & 0x7F) << 21 | (head[7] & 0x7F) << 14 | (head[8] & 0x7F) << 7 | (head[9] & 0x7F))
    fh.seek(start)
    frame = fh.read(2048)
    return any(tag in frame for tag in (b"Xing", b"Info", b"VBRI"))


class _MonoMix:
    """Collects decoded blocks ``[n, channels]`` as mono float32 (the mean over channels), so
    memory holds one channel's worth of samples plus one block; counts NaN and infinite
    values before mixing (a NaN in one channel is a NaN in the mix); enforces
    :data:`MAX_DECODE_FRAMES` and ``max_seconds`` while decoding, whatever the header said.

    ``trim``: keep the first ``max_seconds`` (:attr:`full` turns True) instead of raising."""

    def __init__(self, desc: str, rate: int, max_seconds: float | None, trim: bool) -> None:
        self.desc, self.rate, self.max_seconds, self.trim = desc, rate, max_seconds, trim
        self.limit = None if max_seconds is None else int(round(max_seconds * rate))
        self.parts: list[np.ndarray] = []
        self.frames = 0
        self.n_nan = self.n_inf = 0

    def add(self, block: np.ndarray) -> None:
        if block.shape[0] == 0:
            return
        if self.frames + block.shape[0] > MAX_DECODE_FRAMES:
            raise _too_big_error(self.desc, self.frames + block.shape[0], self.rate)
        if self.limit is not None and not self.trim and self.frames + block.shape[0] > self.limit:
            raise _too_long_error(self.desc, (self.frames + block.shape[0]) / self.rate, self.max_seconds or 0.0)
        finite = np.isfinite(block)
        if not finite.all():
            nan = int(np.isnan(block).sum())
            self.n_nan += nan
            self.n_inf += int(block.size - finite.sum() - nan)
        if block.shape[1] == 1:
            mono = block[:, 0].astype(np.float32, copy=True)
        else:
            mono = block.mean(axis=1, dtype=np.float64).astype(np.float32)
        self.parts.append(mono)
        self.frames += block.shape[0]

    @property
    def full(self) -> bool:
        """``trim`` and ``max_seconds`` are decoded: stop reading."""
        return self.trim and self.limit is not None and self.frames >= self.limit

    @property
    def kept(self) -> int:
        """Frames the result holds."""
        return self.frames if self.limit is None or not self.trim else min(self.frames, self.limit)

    def samples(self) -> np.ndarray:
        out = np.concatenate(self.parts) if self.parts else np.zeros(0, np.float32)
        self.parts = []
        return out[: self.kept]


def _block_frames(channels: int) -> int:
    return max(1024, _BLOCK_VALUES // max(1, channels))


def _read_blocks(f: Any, mix: _MonoMix, channels: int, header_seconds: float) -> None:
    """Read ``f`` (an open ``soundfile.SoundFile``) into ``mix`` block by block; a decoder
    error part-way is a :class:`_Partial`."""
    block = _block_frames(channels)
    try:
        while not mix.full:
            want = block if mix.limit is None or not mix.trim else min(block, mix.limit - mix.frames)
            data = f.read(want, dtype="float32", always_2d=True)
            if data.shape[0] == 0:
                break
            mix.add(data)
    except (AudioError, MemoryError):
        raise
    except Exception as err:
        raise _Partial(mix.frames / mix.rate, header_seconds, _reason(err)) from None


def _decode_soundfile(fh: BinaryIO, desc: str, max_seconds: float | None, trim: bool) -> _Decoded:
    """Decode with libsndfile, block by block.  Raises :class:`_Partial` when fewer frames
    decode than the header promises (or, for MP3, when the decoder stopped well before the
    end of the file)."""
    import soundfile as sf

    fh.seek(0, io.SEEK_END)
    size = fh.tell()
    fh.seek(0)
    with sf.SoundFile(fh) as f:
        rate, channels, frames = int(f.samplerate), int(f.channels), int(f.frames)
        _check_native_rate(rate, desc)
        _check_channels(channels)
        seconds = frames / rate
        if max_seconds is not None and seconds > max_seconds and not trim:
            raise _too_long_error(desc, seconds, max_seconds)
        mix = _MonoMix(desc, rate, max_seconds, trim)
        if frames > MAX_DECODE_FRAMES and mix.limit is None:
            raise _too_big_error(desc, frames, rate)
        _read_blocks(f, mix, channels, seconds)
        mp3 = f.format == "MP3"
    position = fh.tell()
    exact = not mp3 or _mp3_has_length_header(fh)
    expected = frames if mix.limit is None else min(frames, mix.limit)
    if frames > 0 and mix.kept < expected - _tolerance(expected, exact=exact):
        raise _Partial(mix.kept / rate, expected / rate)
    if mix.frames == 0 and size > 1024:
        raise _Undecodable("no audio frames could be read")  # a header without any: let ffmpeg try
    if mp3 and not mix.full and position < 0.9 * size - 256:
        # libsndfile takes an MP3's length from its header, or estimates it from the first
        # frame's bitrate; with a variable bitrate and no length header it stops early
        raise _Partial(mix.frames / rate, 0.0, "the MP3 decoder stopped before the end of the file")
    trimmed = mix.limit is not None and trim and max(seconds, mix.frames / rate) > (max_seconds or 0.0)
    if not trimmed and frames != mix.frames:
        seconds = mix.frames / rate  # a codec's padding or a header estimate (MP3)
    return _Decoded(mix.samples(), rate, channels, seconds, trimmed, mix.n_nan, mix.n_inf)


def _reason(err: BaseException) -> str:
    """A decoder's complaint without object addresses or server paths."""
    text = str(getattr(err, "error_string", "") or err).strip()
    text = re.sub(r"Error opening <[^>]*>: ", "", text)
    text = re.sub(r"Error opening '[^']*': ", "", text)
    if "not a regular file" in text:  # what libsndfile says about some cut files
        text = "libsndfile could not open it"
    return text.rstrip(".")[:200] or type(err).__name__


def _decode_ffmpeg(fh: BinaryIO, path: str | None, desc: str, max_seconds: float | None, trim: bool) -> _Decoded:
    """Decode with ffmpeg through audioread (for what libsndfile cannot read), block by block,
    with the same checks as :func:`_decode_soundfile` against the container's duration."""
    import audioread.ffdec as ffdec

    tmp_name = None
    try:
        if path is None:
            fh.seek(0)
            with tempfile.NamedTemporaryFile(suffix=".audio", delete=False) as tmp:
                shutil.copyfileobj(fh, tmp)
                tmp_name = tmp.name
        with ffdec.FFmpegAudioFile(path or tmp_name) as f:
            rate, channels = int(f.samplerate or 0), int(f.channels or 0)
            _check_native_rate(rate, desc)
            _check_channels(channels)
            duration = float(f.duration or 0.0)
            if max_seconds is not None and duration > max_seconds and not trim:
                raise _too_long_error(desc, duration, max_seconds)
            mix = _MonoMix(desc, rate, max_seconds, trim)
            carry = b""
            for buf in f:
                buf = carry + bytes(buf)
                usable = len(buf) - len(buf) % (2 * channels)
                carry = buf[usable:]
                pcm = np.frombuffer(buf[:usable], dtype="<i2").reshape(-1, channels)
                mix.add(pcm.astype(np.float32) / 32768.0)
                if mix.full:
                    break
        if mix.frames == 0:
            raise _Undecodable("ffmpeg decoded no audio from it")
        expected = int(duration * rate) if mix.limit is None else min(int(duration * rate), mix.limit)
        if duration > 0 and mix.kept < expected - max(_tolerance(expected, exact=False), int(0.05 * rate)):
            raise _Partial(mix.kept / rate, expected / rate)
        seconds = max(duration, mix.frames / rate)
        trimmed = mix.limit is not None and trim and seconds > (max_seconds or 0.0)
        return _Decoded(mix.samples(), rate, channels, seconds, trimmed, mix.n_nan, mix.n_inf)
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
