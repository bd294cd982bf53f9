"""Reading audio bytes for :mod:`diffres.audio`: opening the source, recognising the format
from its first bytes, catching truncated WAV files, and decoding with libsndfile or ffmpeg.

Private: :func:`diffres.audio.load_clip` is the public entry point (and documents the whole
pipeline).  Split from it so that each module reads in one sitting.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import struct
import tempfile
from collections.abc import Callable
from typing import Any, BinaryIO

import numpy as np

from .errors import AudioError, ParameterError

#: Lowest native or requested sample rate accepted, in Hz.
MIN_SAMPLE_RATE = 1000
#: Highest native or requested sample rate accepted, in Hz.
MAX_SAMPLE_RATE = 768_000
_SUPPORTED_HINT = "WAV, FLAC, OGG, MP3 or AIFF"

#: A decoder's result: frames ``[n, channels]`` float32, native rate (Hz), channels, the whole
#: file's length in seconds, whether it was trimmed to ``max_seconds``.
_Decoded = tuple[np.ndarray, int, int, float, bool]


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
