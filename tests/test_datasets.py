"""sg.datasets: digits vs scikit-learn, MNIST IDX files (reading, every malformed-file error,
verified atomic download from a local HTTP server) and the batch iterator. No internet needed."""
import functools
import gzip
import hashlib
import http.server
import os
import re
import struct
import threading
from pathlib import Path

import numpy as np
import pytest

import staticgraph as sg
from staticgraph.datasets import mnist_files

TRAIN_IMAGES, TRAIN_LABELS = "train-images-idx3-ubyte", "train-labels-idx1-ubyte"
TEST_IMAGES, TEST_LABELS = "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"
ALL = [TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS]


# ------------------------------------------------------------------ helpers: IDX bytes by hand

def idx_bytes(magic, dims, payload):
    """An IDX file built with struct (independent of sg.datasets.write_idx)."""
    return struct.pack(">I", magic) + struct.pack(">%dI" % len(dims), *dims) + bytes(payload)


def images_file(images):
    return idx_bytes(2051, images.shape, images.tobytes())


def labels_file(labels):
    return idx_bytes(2049, labels.shape, labels.tobytes())


def put(path, content):
    """Write ``content`` to ``path``, gzipped when the name ends in .gz."""
    path = Path(path)
    path.write_bytes(gzip.compress(content) if path.name.endswith(".gz") else content)
    return path


def random_split(rng, n, rows=28, cols=28):
    return (rng.integers(0, 256, size=(n, rows, cols), dtype=np.uint8),
            rng.integers(0, 10, size=n, dtype=np.uint8))


def write_split(root, rng, names, n, suffix="", rows=28, cols=28):
    images, labels = random_split(rng, n, rows, cols)
    put(Path(root) / (names[0] + suffix), images_file(images))
    put(Path(root) / (names[1] + suffix), labels_file(labels))
    return images, labels


# ------------------------------------------------------------------ digits

def test_digits_matches_scikit_learn():
    from sklearn.datasets import load_digits
    ref = load_digits()
    images, labels = sg.datasets.digits()
    assert images.shape == (len(ref.target), 1, 8, 8) == (1797, 1, 8, 8)
    assert images.dtype == np.float32 and labels.dtype == np.int64
    assert images.min() == 0.0 and images.max() == 1.0
    np.testing.assert_array_equal(labels, ref.target)                       # sample order kept
    np.testing.assert_allclose(images[:, 0], ref.images / 16.0, rtol=0, atol=1e-7)
    np.testing.assert_allclose(images.reshape(len(labels), -1), ref.data / 16.0, rtol=0, atol=1e-7)


def test_digits_falls_back_to_load_digits_and_says_what_is_missing(monkeypatch):
    from staticgraph.datasets import bundled
    fast = sg.datasets.digits()
    monkeypatch.setattr(bundled, "_digits_file", lambda spec: None)      # the data file moved
    slow = sg.datasets.digits()
    np.testing.assert_array_equal(fast[0], slow[0])
    np.testing.assert_array_equal(fast[1], slow[1])
    assert slow[0].dtype == np.float32 and slow[1].dtype == np.int64
    monkeypatch.setattr(bundled.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match="needs scikit-learn.*pip install scikit-learn"):
        sg.datasets.digits()


# ------------------------------------------------------------------ reading IDX files

@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("train", [True, False])
def test_mnist_reads_generated_idx_files(tmp_path, rng, suffix, train):
    names = (TRAIN_IMAGES, TRAIN_LABELS) if train else (TEST_IMAGES, TEST_LABELS)
    n = int(rng.integers(1, 9))
    images, labels = write_split(tmp_path, rng, names, n, suffix)
    x, y = sg.datasets.mnist(tmp_path, train=train)
    assert x.shape == (n, 1, 28, 28) and x.dtype == np.float32
    assert y.shape == (n,) and y.dtype == np.int64
    np.testing.assert_array_equal(x[:, 0], images.astype(np.float32) / np.float32(255))
    np.testing.assert_array_equal(y, labels)
    assert 0.0 <= x.min() and x.max() <= 1.0


def test_mnist_accepts_any_valid_idx_size_and_mixed_compression(tmp_path, rng):
    images, labels = random_split(rng, 3, rows=5, cols=7)
    put(tmp_path / (TRAIN_IMAGES + ".gz"), images_file(images))
    put(tmp_path / TRAIN_LABELS, labels_file(labels))
    x, y = sg.datasets.mnist(str(tmp_path))                           # a str root works too
    assert x.shape == (3, 1, 5, 7)
    np.testing.assert_array_equal(x[:, 0] * 255, images)
    np.testing.assert_array_equal(y, labels)


def test_mnist_needs_only_the_requested_split(tmp_path, rng):
    images, labels = write_split(tmp_path, rng, (TEST_IMAGES, TEST_LABELS), 4)
    x, y = sg.datasets.mnist(tmp_path, train=False)
    np.testing.assert_array_equal(y, labels)
    with pytest.raises(FileNotFoundError, match=TRAIN_IMAGES + r".*" + TRAIN_LABELS):
        sg.datasets.mnist(tmp_path, train=True)


def test_mnist_missing_file_error_names_it_and_says_how_to_get_it(tmp_path, rng):
    images, labels = random_split(rng, 2)
    put(tmp_path / (TRAIN_IMAGES + ".gz"), images_file(images))
    with pytest.raises(FileNotFoundError, match=TRAIN_LABELS) as info:
        sg.datasets.mnist(tmp_path)
    msg = str(info.value)
    assert TRAIN_IMAGES not in msg                 # only the missing file is named
    assert "download=True" in msg and str(tmp_path) in msg
    with pytest.raises(FileNotFoundError, match=TRAIN_IMAGES):
        sg.datasets.mnist(tmp_path / "nowhere")


def test_write_idx_round_trips(tmp_path, rng):
    images, labels = random_split(rng, 3, rows=4, cols=6)
    for name in ["a-images", "a-images.gz"]:
        sg.datasets.write_idx(tmp_path / name, images)
        np.testing.assert_array_equal(sg.datasets.read_idx(tmp_path / name, 2051), images)
    sg.datasets.write_idx(tmp_path / "l", labels)
    assert (tmp_path / "l").read_bytes() == labels_file(labels)     # byte-identical to the format
    with pytest.raises(TypeError, match="uint8"):
        sg.datasets.write_idx(tmp_path / "f", images.astype(np.float32))


# ------------------------------------------------------------------ malformed files

def _valid_images(rng, n=3):
    return images_file(rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8))


MALFORMED_IMAGES = {
    "bad magic": (lambda rng: b"\x12\x34\x56\x78" + _valid_images(rng)[4:],
                  r"bad magic number .*expected 2051.*not an IDX file"),
    "labels magic in an image file": (lambda rng: struct.pack(">I", 2049) + _valid_images(rng)[4:],
                                      r"bad magic number 2049.*1 dimensions, expected 3"),
    "float dtype byte": (lambda rng: b"\x00\x00\x0d\x03" + _valid_images(rng)[4:],
                         r"bad magic number 3331 \(0x00000d03\): dtype byte 0x0d \(float32\), "
                         r"expected 0x08 \(unsigned byte\)"),
    "empty file": (lambda rng: b"", r"truncated: 0 bytes"),
    "truncated header": (lambda rng: _valid_images(rng)[:10],
                         r"truncated: 10 bytes, the header alone needs 16"),
    "truncated pixels": (lambda rng: _valid_images(rng)[:-5],
                         r"truncated: %d bytes, expected %d for dimensions 3 x 28 x 28" % (16 + 3 * 784 - 5,
                                                                                          16 + 3 * 784)),
    "trailing bytes": (lambda rng: _valid_images(rng) + b"\x00\x01", r"2 unexpected trailing bytes"),
}


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("case", sorted(MALFORMED_IMAGES))
def test_malformed_image_file_errors_name_the_file(tmp_path, rng, case, suffix):
    make, message = MALFORMED_IMAGES[case]
    bad = put(tmp_path / (TRAIN_IMAGES + suffix), make(rng))
    put(tmp_path / TRAIN_LABELS, labels_file(np.zeros(3, np.uint8)))
    with pytest.raises(sg.datasets.IDXError, match=re.escape(str(bad)) + ": " + message):
        sg.datasets.mnist(tmp_path)
    assert isinstance(sg.datasets.IDXError("x"), ValueError)


@pytest.mark.parametrize("content, message", [
    (struct.pack(">II", 2051, 3) + bytes(3), r"bad magic number 2051.*3 dimensions, expected 1"),
    (struct.pack(">II", 2049, 5) + bytes(4), r"truncated: 12 bytes, expected 13 for dimensions 5"),
    (struct.pack(">I", 2049), r"truncated: 4 bytes, the header alone needs 8"),
])
def test_malformed_label_file_errors_name_the_file(tmp_path, rng, content, message):
    write_split(tmp_path, rng, (TEST_IMAGES, TEST_LABELS), 5)
    bad = put(tmp_path / TEST_LABELS, content)
    with pytest.raises(sg.datasets.IDXError, match=re.escape(str(bad)) + ": " + message):
        sg.datasets.mnist(tmp_path, train=False)


def test_corrupt_gzip_names_the_file(tmp_path, rng):
    images, labels = random_split(rng, 4)
    data = gzip.compress(images_file(images))
    bad = tmp_path / (TRAIN_IMAGES + ".gz")
    bad.write_bytes(data[:len(data) // 2])                          # a cut download
    put(tmp_path / TRAIN_LABELS, labels_file(labels))
    with pytest.raises(sg.datasets.IDXError, match=re.escape(str(bad)) + ": corrupt or truncated gzip"):
        sg.datasets.mnist(tmp_path)
    bad.write_bytes(b"not gzip at all")
    with pytest.raises(sg.datasets.IDXError, match=re.escape(str(bad)) + ": corrupt or truncated gzip"):
        sg.datasets.mnist(tmp_path)


def test_image_and_label_counts_must_agree(tmp_path, rng):
    images, _ = random_split(rng, 5)
    put(tmp_path / TRAIN_IMAGES, images_file(images))
    put(tmp_path / TRAIN_LABELS, labels_file(np.zeros(4, np.uint8)))
    with pytest.raises(sg.datasets.IDXError,
                       match=re.escape(str(tmp_path / TRAIN_IMAGES)) + r" holds 5 images but "
                       + re.escape(str(tmp_path / TRAIN_LABELS)) + r" holds 4 labels"):
        sg.datasets.mnist(tmp_path)


# ------------------------------------------------------------------ download from a local server

class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the mirror folder; ``/cut/<name>`` announces more bytes than it sends."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path.startswith("/cut/"):
            body = (Path(self.directory) / self.path[len("/cut/"):]).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body) + 1000))
            self.end_headers()
            self.wfile.write(body[:len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        super().do_GET()


@pytest.fixture
def mirror(tmp_path, rng, monkeypatch):
    """A local HTTP mirror serving generated MNIST .gz files; SHA256 table set to theirs."""
    folder = tmp_path / "mirror"
    folder.mkdir()
    data = {}
    sizes = {TRAIN_IMAGES: 6, TEST_IMAGES: 3}
    for images_name, labels_name in [(TRAIN_IMAGES, TRAIN_LABELS), (TEST_IMAGES, TEST_LABELS)]:
        images, labels = random_split(rng, sizes[images_name])
        put(folder / (images_name + ".gz"), images_file(images))
        put(folder / (labels_name + ".gz"), labels_file(labels))
        data[images_name], data[labels_name] = images, labels
    checksums = {name + ".gz": hashlib.sha256((folder / (name + ".gz")).read_bytes()).hexdigest()
                 for name in ALL}
    monkeypatch.setattr(mnist_files, "SHA256", checksums)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(_Handler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = "http://127.0.0.1:%d/" % server.server_address[1]
    monkeypatch.setattr(mnist_files, "MIRRORS", [url])
    try:
        yield {"url": url, "folder": folder, "data": data, "checksums": checksums}
    finally:
        server.shutdown()
        server.server_close()


def test_download_fetches_verifies_and_loads(tmp_path, mirror):
    root = tmp_path / "data" / "mnist"                              # created on demand
    x, y = sg.datasets.mnist(root, train=True, download=True)
    assert sorted(p.name for p in root.iterdir()) == sorted(n + ".gz" for n in ALL)
    for name in ALL:
        assert (root / (name + ".gz")).read_bytes() == (mirror["folder"] / (name + ".gz")).read_bytes()
    np.testing.assert_array_equal(x[:, 0] * np.float32(255), mirror["data"][TRAIN_IMAGES])
    np.testing.assert_array_equal(y, mirror["data"][TRAIN_LABELS])
    xt, yt = sg.datasets.mnist(root, train=False)                   # the test split came along
    np.testing.assert_array_equal(yt, mirror["data"][TEST_LABELS])
    assert sg.datasets.download_mnist(root) == []                   # nothing left to fetch


def test_download_fetches_only_missing_files(tmp_path, mirror, rng):
    root = tmp_path / "root"
    root.mkdir()
    mine, _ = write_split(root, rng, (TRAIN_IMAGES, TRAIN_LABELS), 2)   # local, plain, unchecked
    written = sg.datasets.download_mnist(root)
    assert sorted(p.name for p in written) == sorted([TEST_IMAGES + ".gz", TEST_LABELS + ".gz"])
    x, _ = sg.datasets.mnist(root)
    np.testing.assert_array_equal(x[:, 0] * np.float32(255), mine)


def test_download_tries_the_next_mirror(tmp_path, mirror):
    dead = mirror["url"] + "missing/"                               # 404 for every file
    x, y = sg.datasets.mnist(tmp_path / "r", train=False, download=True, mirrors=[dead, mirror["url"]])
    np.testing.assert_array_equal(y, mirror["data"][TEST_LABELS])


def test_download_error_names_file_and_every_mirror(tmp_path, mirror):
    dead = [mirror["url"] + "nope/", mirror["url"] + "gone/"]
    with pytest.raises(sg.datasets.DownloadError, match=TRAIN_IMAGES + r"\.gz") as info:
        sg.datasets.mnist(tmp_path / "r", download=True, mirrors=dead)
    assert all(url in str(info.value) for url in dead) and "404" in str(info.value)
    assert list((tmp_path / "r").iterdir()) == []


def test_checksum_mismatch_leaves_nothing_behind(tmp_path, mirror, monkeypatch):
    wrong = dict(mirror["checksums"])
    wrong[TRAIN_LABELS + ".gz"] = hashlib.sha256(b"something else").hexdigest()
    monkeypatch.setattr(mnist_files, "SHA256", wrong)
    root = tmp_path / "r"
    with pytest.raises(sg.datasets.ChecksumError, match=TRAIN_LABELS + r"\.gz.*checksum mismatch"):
        sg.datasets.mnist(root, download=True)
    assert sorted(p.name for p in root.iterdir()) == [TRAIN_IMAGES + ".gz"]   # fetched before; no temp file
    # the checksum table given as an argument wins over the module's
    assert [p.name for p in sg.datasets.download_mnist(root, checksums=mirror["checksums"])] == \
        [TRAIN_LABELS + ".gz", TEST_IMAGES + ".gz", TEST_LABELS + ".gz"]


def test_interrupted_download_leaves_nothing_behind(tmp_path, mirror):
    root = tmp_path / "r"
    message = r"(?s)" + TRAIN_IMAGES + r"\.gz.*incomplete download: \d+ of \d+ bytes"
    with pytest.raises(sg.datasets.DownloadError, match=message):
        sg.datasets.mnist(root, download=True, mirrors=[mirror["url"] + "cut/"])
    assert list(root.iterdir()) == []


def test_download_writes_atomically(tmp_path, mirror, monkeypatch):
    """Each file is complete, verified and fsynced in a temp file of root before os.replace moves it."""
    root = tmp_path / "r"
    replaced, synced = [], set()
    real_replace, real_fsync = os.replace, os.fsync

    def spy_fsync(fd):
        synced.add(os.path.realpath("/proc/self/fd/%d" % fd) if os.path.exists("/proc/self/fd") else fd)
        return real_fsync(fd)

    def spy_replace(src, dst):
        src, dst = Path(src), Path(dst)
        assert src.parent == dst.parent == root                     # same folder: rename is atomic
        assert not dst.exists()                                     # the final name appears only now
        assert hashlib.sha256(src.read_bytes()).hexdigest() == mirror["checksums"][dst.name]
        if os.path.exists("/proc/self/fd"):
            assert str(src.resolve()) in synced                     # fsynced before the rename
        replaced.append(dst.name)
        return real_replace(src, dst)

    monkeypatch.setattr(mnist_files.os, "replace", spy_replace)
    monkeypatch.setattr(mnist_files.os, "fsync", spy_fsync)
    sg.datasets.download_mnist(root)
    assert sorted(replaced) == sorted(n + ".gz" for n in ALL)
    assert sorted(p.name for p in root.iterdir()) == sorted(replaced)


def test_default_mirrors_and_checksums_are_the_standard_ones():
    assert all(u.endswith("/") and u.startswith(("http://", "https://")) for u in mnist_files.MIRRORS)
    assert sorted(mnist_files.SHA256) == sorted(n + ".gz" for n in ALL)
    assert all(re.fullmatch(r"[0-9a-f]{64}", h) for h in mnist_files.SHA256.values())


# ------------------------------------------------------------------ batches

def _ids(batches):
    return np.concatenate([b[0] for b in batches])


@pytest.mark.parametrize("n, batch_size", [(10, 3), (12, 4), (1, 5), (7, 7), (0, 2)])
def test_batches_in_order_cover_every_sample(rng, n, batch_size):
    x = rng.standard_normal((n, 2, 3)).astype(np.float32)
    y = np.arange(n)
    out = list(sg.datasets.batches(x, y, batch_size=batch_size))
    assert all(isinstance(b, tuple) and len(b) == 2 for b in out)
    assert [len(b[0]) for b in out] == [min(batch_size, n - s) for s in range(0, n, batch_size)]
    np.testing.assert_array_equal(np.concatenate([b[1] for b in out]) if out else y, y)
    for bx, by in out:
        np.testing.assert_array_equal(bx, x[by])                        # stays aligned


@pytest.mark.parametrize("n, batch_size", [(10, 3), (12, 4), (2, 5)])
def test_batches_drop_last(n, batch_size):
    out = list(sg.datasets.batches(np.arange(n), batch_size=batch_size, drop_last=True))
    assert all(len(b[0]) == batch_size for b in out)
    assert len(out) == n // batch_size
    np.testing.assert_array_equal(_ids(out) if out else [], np.arange(n // batch_size * batch_size))


def test_batches_shuffle_is_a_permutation_and_keeps_alignment(rng):
    n = 23
    x, y = rng.standard_normal((n, 4)), np.arange(n)
    out = list(sg.datasets.batches(x, y, batch_size=5, shuffle=True, seed=int(rng.integers(1000))))
    ids = np.concatenate([b[1] for b in out])
    assert sorted(ids) == list(range(n)) and not np.array_equal(ids, y)
    for bx, by in out:
        np.testing.assert_array_equal(bx, x[by])


def test_batches_shuffle_reproducible_per_seed_and_epoch(rng):
    n, seed = 50, int(rng.integers(10 ** 6))
    order = lambda **kw: _ids(sg.datasets.batches(np.arange(n), batch_size=8, shuffle=True, **kw))
    np.testing.assert_array_equal(order(seed=seed, epoch=3), order(seed=seed, epoch=3))
    assert not np.array_equal(order(seed=seed, epoch=0), order(seed=seed, epoch=1))
    assert not np.array_equal(order(seed=seed), order(seed=seed + 1))
    assert sorted(order(seed=None)) == list(range(n))
    # a Generator is drawn from: successive epochs differ, the whole sequence is reproducible
    g1, g2 = np.random.default_rng(seed), np.random.default_rng(seed)
    e1 = [order(seed=g1) for _ in range(3)]
    e2 = [order(seed=g2) for _ in range(3)]
    for a, b in zip(e1, e2):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(e1[0], e1[1])


def test_batches_bad_arguments():
    with pytest.raises(ValueError, match=r"array 1 has 4 samples but array 0 has 5"):
        sg.datasets.batches(np.zeros(5), np.zeros(4), batch_size=2)
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        sg.datasets.batches(np.zeros(5), batch_size=0)
    with pytest.raises(ValueError, match="seed must be"):
        sg.datasets.batches(np.zeros(5), batch_size=2, shuffle=True, seed=1.5)
    with pytest.raises(ValueError, match="array 0 is a scalar"):
        sg.datasets.batches(np.float32(3), batch_size=2)
    with pytest.raises(TypeError, match="at least one array"):
        sg.datasets.batches(batch_size=2)
