"""User zips: checked before anything is extracted, extracted with every byte counted, and
cleaned up.

The checks (:func:`check_zip`) run on the archive's directory alone: path traversal,
absolute paths, symlinks, encryption, unsupported compression, the entry count, each
entry's size, each entry's compression ratio (every entry of 64 KiB or more; a zip bomb's
entries are usually small and many) and the total uncompressed size.  Extraction counts the
bytes as they inflate, so a header that lies cannot fill the disk, and an entry that does
not decompress is named in the error, never the server's folders.

Extracted folders do not pile up: :func:`extracted` removes its temporary folder when the
caller is done (the dataset loader reads the clips into memory first), and
:func:`prune_extractions` removes extractions older than a day and temporary folders left by
a killed process.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import stat
import tempfile
import time
import zipfile
import zlib
from collections.abc import Iterator
from functools import partial
from pathlib import Path, PurePosixPath

from ..errors import DatasetError
from ..names import shown

__all__ = [
    "DEFAULT_MAX_ENTRIES",
    "DEFAULT_MAX_ARCHIVE_BYTES",
    "DEFAULT_MAX_ENTRY_BYTES",
    "DEFAULT_MAX_RATIO",
    "EXTRACTION_MAX_AGE_SECONDS",
    "check_zip",
    "extract_zip_safely",
    "extracted",
    "prune_extractions",
]

DEFAULT_MAX_ENTRIES = 20_000
"""Most entries (files and folders) a user zip may hold."""
DEFAULT_MAX_ARCHIVE_BYTES = 500 * 1024 * 1024
"""Largest total uncompressed size of a user zip (500 MB)."""
DEFAULT_MAX_ENTRY_BYTES = 64 * 1024 * 1024
"""Largest uncompressed size of one entry (64 MB: over 5 minutes of 48 kHz stereo WAV)."""
DEFAULT_MAX_RATIO = 200.0
"""Largest uncompressed/compressed ratio of any entry of :data:`RATIO_MIN_BYTES` or more
(zip-bomb guard; recorded audio compresses less than 10x)."""
RATIO_MIN_BYTES = 64 * 1024
"""Entries smaller than this are not held to the ratio (a tiny file can compress well and
cannot add up to much: the total size and the entry count bound them)."""
EXTRACTION_MAX_AGE_SECONDS = 24 * 3600.0
"""Extractions in the cache unused for longer than this are removed."""
_STALE_TMP_SECONDS = 3600.0
_SUPPORTED_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
_CHUNK = 1 << 20


def _check_entry_name(name: str) -> None:
    norm = name.replace("\\", "/")
    if norm.startswith("/") or re.match(r"^[A-Za-z]:", norm):
        raise DatasetError(
            f"unsafe zip: entry {shown(name)} has an absolute path; zip the class folders with relative paths"
        )
    if any(part == ".." for part in norm.split("/")):
        raise DatasetError(f"unsafe zip: entry {shown(name)} contains '..' (path traversal); such archives are refused")
    if "\x00" in norm:
        raise DatasetError(f"unsafe zip: entry {shown(name)} contains a NUL character")


def _check_entry(info: zipfile.ZipInfo, max_entry_bytes: int, max_ratio: float) -> None:
    """One entry's own checks: link, encryption, compression method, size, ratio."""
    _check_entry_name(info.filename)
    mode = (info.external_attr >> 16) & 0xFFFF
    if stat.S_ISLNK(mode):
        raise DatasetError(f"unsafe zip: entry {shown(info.filename)} is a symbolic link; links are refused")
    if info.flag_bits & 0x1:
        raise DatasetError(f"zip entry {shown(info.filename)} is encrypted; give an unencrypted zip")
    if info.is_dir():
        return
    if info.compress_type not in _SUPPORTED_METHODS:
        raise DatasetError(
            f"zip entry {shown(info.filename)} uses compression method {info.compress_type}, which is not "
            "supported; zip it again with the usual (deflate) compression"
        )
    if info.file_size > max_entry_bytes:
        raise DatasetError(
            f"zip entry {shown(info.filename)} is {info.file_size / 1e6:.0f} MB uncompressed; entries larger than "
            f"{max_entry_bytes / 1e6:.0f} MB are refused (cut long recordings into clips)"
        )
    if info.file_size >= RATIO_MIN_BYTES and info.file_size > max_ratio * max(1, info.compress_size):
        raise DatasetError(
            f"suspicious zip (possible zip bomb): entry {shown(info.filename)} expands "
            f"{info.file_size / max(1, info.compress_size):.0f}x (the limit is {max_ratio:.0f}x)"
        )


def check_zip(
    zip_path: str | os.PathLike,
    *,
    max_entries: int = DEFAULT_MAX_ENTRIES,
    max_total_bytes: int = DEFAULT_MAX_ARCHIVE_BYTES,
    max_ratio: float = DEFAULT_MAX_RATIO,
    max_entry_bytes: int = DEFAULT_MAX_ENTRY_BYTES,
) -> list[zipfile.ZipInfo]:
    """Validate a zip without extracting it; return its file entries.

    Raises:
        DatasetError: not a zip, too many entries, an absolute or ``..`` path, a symlink
            entry, an encrypted entry, an unsupported compression method, an entry larger
            than ``max_entry_bytes``, total uncompressed size above ``max_total_bytes``, or
            an entry of 64 KiB or more compressed more than ``max_ratio`` times.
    """
    zip_path = Path(zip_path)
    if not zipfile.is_zipfile(zip_path):
        raise DatasetError(f"{zip_path.name} is not a readable .zip archive")
    try:
        with zipfile.ZipFile(zip_path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc).split(":")[0]
        raise DatasetError(f"{zip_path.name} is not a readable .zip archive: {reason}") from None
    if len(infos) > max_entries:
        raise DatasetError(
            f"zip has too many entries: {len(infos)} (the limit is {max_entries}); use fewer files or a folder"
        )
    total = 0
    files = []
    for info in infos:
        _check_entry(info, max_entry_bytes, max_ratio)
        if info.is_dir():
            continue
        total += info.file_size
        if total > max_total_bytes:
            raise DatasetError(
                f"zip too large: its uncompressed size exceeds the limit of {max_total_bytes / 1e6:.0f} MB "
                f"(at least {total / 1e6:.1f} MB); use a smaller archive or a folder"
            )
        files.append(info)
    return files


def _extract_entries(zip_path: Path, infos: list[zipfile.ZipInfo], folder: Path, max_total_bytes: int) -> None:
    """Write the checked entries under ``folder``, counting bytes as they inflate; an entry
    that cannot be extracted is named (never the server's folders)."""
    written = 0
    root = str(folder.resolve()) + os.sep
    with zipfile.ZipFile(zip_path) as zf:
        for info in infos:
            rel = PurePosixPath(info.filename.replace("\\", "/"))
            target = folder.joinpath(*rel.parts)
            if not str(target.resolve()).startswith(root):
                raise DatasetError(f"unsafe zip: entry {shown(info.filename)} would be written outside the folder")
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                n_entry = 0
                with zf.open(info) as src, open(target, "wb") as dst:
                    for block in iter(partial(src.read, _CHUNK), b""):
                        n_entry += len(block)
                        written += len(block)
                        if n_entry > info.file_size or written > max_total_bytes:
                            raise DatasetError(
                                f"zip too large: entry {shown(info.filename)} inflates beyond its declared size "
                                f"or the {max_total_bytes / 1e6:.0f} MB limit"
                            )
                        dst.write(block)
            except OSError as exc:  # a full disk, a name the file system refuses
                raise DatasetError(
                    f"cannot extract {zip_path.name}: entry {shown(info.filename)}: {exc.strerror or 'write failed'}"
                ) from None
            except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, ValueError) as exc:
                reason = str(exc).split(" for file ")[0][:120] or type(exc).__name__
                raise DatasetError(
                    f"cannot extract {zip_path.name}: entry {shown(info.filename)} is corrupt ({reason})"
                ) from None


def _extraction_root() -> Path:
    from .cache import cache_root

    return cache_root() / "user-zips"


def _default_extraction_folder(zip_path: Path) -> Path:
    """``cache_root()/user-zips/<sha256 prefix of the archive>``."""
    h = hashlib.sha256()
    with open(zip_path, "rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            h.update(block)
    return _extraction_root() / h.hexdigest()[:16]


def prune_extractions(max_age_seconds: float = EXTRACTION_MAX_AGE_SECONDS, *, now: float | None = None) -> list[Path]:
    """Remove extracted zips unused for ``max_age_seconds`` (their ``.complete`` marker is
    touched on every use) and temporary folders of a killed extraction older than an hour.

    Only ``cache_root()/user-zips/`` is touched: a cache of copies of archives, never a
    user's own files.  Returns the removed folders."""
    root = _extraction_root()
    now = time.time() if now is None else now
    removed: list[Path] = []
    if not root.is_dir():
        return removed
    for folder in root.iterdir():
        try:
            if folder.name.startswith(".tmp-extract-"):
                stale = now - folder.stat().st_mtime > _STALE_TMP_SECONDS
            else:
                marker = folder / ".complete"
                stale = now - (marker if marker.exists() else folder).stat().st_mtime > max_age_seconds
        except OSError:
            continue
        if stale and folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def extract_zip_safely(
    zip_path: str | os.PathLike,
    dest: str | os.PathLike | None = None,
    *,
    max_entries: int = DEFAULT_MAX_ENTRIES,
    max_total_bytes: int = DEFAULT_MAX_ARCHIVE_BYTES,
    max_ratio: float = DEFAULT_MAX_RATIO,
    max_entry_bytes: int = DEFAULT_MAX_ENTRY_BYTES,
) -> Path:
    """Check (see :func:`check_zip`) and extract a zip; return the extraction folder.

    ``dest`` defaults to ``cache_root()/user-zips/<sha256 prefix>``, reused when the same
    archive was extracted before (extractions unused for a day are removed by
    :func:`prune_extractions`, which runs here).  Writes are counted: an entry that inflates
    beyond its declared size, or a total beyond ``max_total_bytes``, aborts with
    DatasetError and leaves nothing behind.
    """
    zip_path = Path(zip_path)
    infos = check_zip(
        zip_path,
        max_entries=max_entries,
        max_total_bytes=max_total_bytes,
        max_ratio=max_ratio,
        max_entry_bytes=max_entry_bytes,
    )
    if dest is None:
        prune_extractions()
        dest = _default_extraction_folder(zip_path)
    dest = Path(dest)
    if (dest / ".complete").is_file():
        with contextlib.suppress(OSError):
            (dest / ".complete").touch()
        return dest
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-extract-", dir=dest.parent))
    except OSError as exc:
        raise DatasetError(f"cannot extract {zip_path.name}: {exc.strerror or 'no room for it'}") from None
    try:
        _extract_entries(zip_path, infos, tmp, max_total_bytes)
        (tmp / ".complete").write_text("ok\n")
        if dest.exists():
            shutil.rmtree(dest, ignore_errors=True)
        os.replace(tmp, dest)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise DatasetError(f"cannot extract {zip_path.name}: {exc.strerror or 'write failed'}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


@contextlib.contextmanager
def extracted(zip_path: str | os.PathLike, **limits) -> Iterator[Path]:
    """Check and extract a zip into a temporary folder under ``cache_root()/user-zips/``;
    yield it and remove it afterwards (whatever happens).  ``limits`` are
    :func:`check_zip`'s."""
    prune_extractions()
    root = _extraction_root()
    try:
        root.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=".tmp-extract-", dir=root))
    except OSError as exc:
        raise DatasetError(f"cannot extract {Path(zip_path).name}: {exc.strerror or 'no room for it'}") from None
    try:
        yield extract_zip_safely(zip_path, folder / "x", **limits)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
