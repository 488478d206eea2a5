"""staticgraph.files: errors about files the library reads name the file and the problem; writes are atomic."""
import re
import zipfile

import numpy as np
import pytest

import staticgraph as sg
from staticgraph.files import file_error, reading, sniff, write_atomically


def test_file_error_names_the_file_and_the_problem(tmp_path):
    path = tmp_path / "labels.idx"
    err = file_error(path, "has 3 labels for 5 images", what="dataset file")
    assert isinstance(err, sg.errors.DataLossError) and isinstance(err, ValueError)
    assert str(err) == f"dataset file '{path}': has 3 labels for 5 images"
    err = file_error(str(path), "no entry 'x'", error=sg.errors.NotFoundError)
    assert type(err) is sg.errors.NotFoundError and str(err) == f"file '{path}': no entry 'x'"


@pytest.mark.parametrize("fail, error, problem", [
    (lambda p: open(p / "missing.bin", "rb"), sg.errors.NotFoundError, r"does not exist"),
    (lambda p: open(p, "rb"), sg.errors.DataLossError, r"cannot be read: Is a directory"),
    (lambda p: np.load(p / "obj.npy", allow_pickle=False), sg.errors.DataLossError,
     r"cannot be read: Object arrays cannot be loaded"),
    (lambda p: zipfile.ZipFile(p / "obj.npy"), sg.errors.DataLossError, r"cannot be read: File is not a zip"),
])
def test_reading_translates_low_level_failures(tmp_path, fail, error, problem):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(error, match=rf"cache manifest '{re.escape(str(tmp_path))}': {problem}"):
        with reading(tmp_path, what="cache manifest"):
            fail(tmp_path)


def test_reading_lets_errors_that_already_name_the_file_through(tmp_path):
    original = file_error(tmp_path / "x", "bad header")
    with pytest.raises(sg.errors.DataLossError) as info:
        with reading(tmp_path / "y"):
            raise original
    assert info.value is original
    with pytest.raises(KeyError, match="a bug"):          # not a file problem: not disguised as one
        with reading(tmp_path / "y"):
            raise KeyError("a bug")


def test_sniff_reads_the_first_bytes(tmp_path):
    (tmp_path / "f").write_bytes(b"PK\x03\x04rest")
    assert sniff(tmp_path / "f", 4) == b"PK\x03\x04" and sniff(tmp_path / "f") == b"PK\x03\x04rest"


def test_write_atomically_replaces_whole_files_and_leaves_no_temp_file(tmp_path):
    path = tmp_path / "model.onnx"
    write_atomically(path, b"first")
    write_atomically(str(path), b"second version")
    assert path.read_bytes() == b"second version"
    with pytest.raises(TypeError):                   # a failure mid-write: the old file stays whole
        write_atomically(path, "not bytes")
    assert path.read_bytes() == b"second version" and [p.name for p in tmp_path.iterdir()] == ["model.onnx"]
    with pytest.raises(sg.errors.NotFoundError, match=r"ONNX model '.*nowhere.*': cannot be written: directory"):
        write_atomically(tmp_path / "nowhere" / "m.onnx", b"x", what="ONNX model")
