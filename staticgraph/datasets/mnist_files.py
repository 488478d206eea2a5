"""MNIST from its standard IDX files: loading, and a verified, atomic download.

The files keep their standard names directly in ``root`` (plain or ``.gz``)::

    train-images-idx3-ubyte  train-labels-idx1-ubyte    (train=True, 60,000 samples)
    t10k-images-idx3-ubyte   t10k-labels-idx1-ubyte     (train=False, 10,000 samples)

``download=True`` fetches the missing ones as ``.gz`` from the first mirror of
:data:`MIRRORS` that answers, checks each against :data:`SHA256`, and moves it
into ``root`` only once complete and verified. Both tables are module
attributes (and :func:`download_mnist` arguments), so they can be overridden,
e.g. to point at a local mirror. Checksums are verified on download only:
local files may be any valid IDX files.
"""
from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from pathlib import Path
from typing import Mapping, Optional, Sequence, Tuple

import numpy as np

from .idx import IMAGES_MAGIC, LABELS_MAGIC, IDXError, PathLike, read_idx

TRAIN_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
TEST_FILES = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

#: Base URLs tried in order; a file's URL is ``base + name + ".gz"``.
MIRRORS = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
]

#: SHA-256 of the standard MNIST ``.gz`` files (as published with TensorFlow Datasets).
SHA256 = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}

_CHUNK = 1 << 20
_TIMEOUT_S = 60


class DownloadError(OSError):
    """No mirror delivered a file (the message names the file and every attempt)."""


class ChecksumError(DownloadError):
    """A downloaded file's checksum does not match the expected one (nothing was kept)."""


def mnist(root: PathLike, train: bool = True, download: bool = False,
          mirrors: Optional[Sequence[str]] = None) -> Tuple[np.ndarray, np.ndarray]:
    """MNIST's training (``train=True``) or test split from the IDX files in ``root``.

    Returns ``(images, labels)``: float32 N×1×rows×cols (28×28 for MNIST) with
    pixels ``value / 255``, and int64 labels. With ``download=True`` the missing
    files are fetched first (see :func:`download_mnist`; ``mirrors`` overrides
    :data:`MIRRORS`). Raises ``FileNotFoundError`` naming the missing files, and
    :class:`IDXError` naming a malformed file.
    """
    root = Path(root)
    if download:
        download_mnist(root, mirrors=mirrors)
    names = TRAIN_FILES if train else TEST_FILES
    paths = [find_file(root, name) for name in names]
    missing = [name for name, path in zip(names, paths) if path is None]
    if missing:
        split = "training" if train else "test"
        raise FileNotFoundError(
            f"MNIST {split} split: {' and '.join(missing)} (plain or .gz) not found in {root}; "
            f"fetch the files with sg.datasets.mnist({str(root)!r}, train={bool(train)}, download=True)")
    image_path, label_path = paths
    images = read_idx(image_path, IMAGES_MAGIC)
    labels = read_idx(label_path, LABELS_MAGIC)
    if len(images) != len(labels):
        raise IDXError(f"{image_path} holds {len(images)} images but {label_path} holds "
                       f"{len(labels)} labels: the counts must agree")
    return images[:, None].astype(np.float32) / np.float32(255), labels.astype(np.int64)


def find_file(root: PathLike, name: str) -> Optional[Path]:
    """``root/name`` if it exists, else ``root/name.gz`` if that exists, else None."""
    for candidate in (Path(root) / name, Path(root) / (name + ".gz")):
        if candidate.is_file():
            return candidate
    return None


def download_mnist(root: PathLike, mirrors: Optional[Sequence[str]] = None,
                   checksums: Optional[Mapping[str, str]] = None) -> list:
    """Fetch the MNIST files missing from ``root`` (created if needed); return the paths written.

    Each file is tried on every mirror in turn (default :data:`MIRRORS`), hashed
    while it streams into a temporary file in ``root``, checked against
    ``checksums`` (SHA-256 hex digests by ``.gz`` file name, default
    :data:`SHA256`), fsynced and moved into place with ``os.replace``: a failed
    or interrupted download leaves nothing behind. Raises :class:`ChecksumError`
    or :class:`DownloadError` naming the file when no mirror delivers it intact.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    mirrors = MIRRORS if mirrors is None else mirrors
    checksums = SHA256 if checksums is None else checksums
    written = []
    for name in TRAIN_FILES + TEST_FILES:
        if find_file(root, name) is None:
            written.append(_fetch(name + ".gz", root, mirrors, checksums))
    return written


def _fetch(filename: str, root: Path, mirrors: Sequence[str], checksums: Mapping[str, str]) -> Path:
    """Download ``filename`` from the first mirror that delivers it with the expected checksum."""
    if filename not in checksums:
        raise ValueError(f"no checksum known for {filename}: add it to the checksums table")
    if not mirrors:
        raise DownloadError(f"cannot download {filename}: the mirror list is empty")
    import http.client       # here, not at import: it costs ~50 ms of every `import staticgraph`
    attempts, mismatch = [], False
    for base in mirrors:
        url = base.rstrip("/") + "/" + filename
        print(f"Downloading {url}", file=sys.stderr)
        try:
            return _download_verified(url, root / filename, checksums[filename])
        except ChecksumError as e:
            mismatch = True
            attempts.append(str(e))
        except (OSError, http.client.HTTPException) as e:
            attempts.append(f"{url}: {type(e).__name__}: {e}")
    error = ChecksumError if mismatch else DownloadError
    raise error(f"could not download {filename} into {root}:\n  " + "\n  ".join(attempts))


def _download_verified(url: str, dest: Path, sha256: str) -> Path:
    """Stream ``url`` into a temporary file next to ``dest``; verify, fsync, ``os.replace``."""
    import urllib.request
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix="." + dest.name + ".", suffix=".part")
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=_TIMEOUT_S) as response:
            announced, received = response.headers.get("Content-Length"), 0
            for chunk in iter(lambda: response.read(_CHUNK), b""):
                digest.update(chunk)
                out.write(chunk)
                received += len(chunk)
            if announced is not None and announced.isdigit() and received != int(announced):
                raise DownloadError(f"{url}: incomplete download: {received} of {announced} bytes")
            out.flush()
            os.fsync(out.fileno())
        got = digest.hexdigest()
        if got != sha256.lower():
            raise ChecksumError(f"{dest.name} from {url}: checksum mismatch: SHA-256 {got}, "
                                f"expected {sha256}")
        os.replace(tmp, dest)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(dest.parent)
    return dest


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
