"""sg.train.Saver: round trips, path handling, atomic writes, restore errors."""
import os
import re
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest

import staticgraph as sg
from staticgraph.train import saver as saver_mod


def make_vars():
    w = sg.Variable(np.arange(6.0).reshape(2, 3), name="w")  # float32
    d = sg.Variable(np.array([0.5, -1.5]), name="d", dtype=sg.float64)
    step = sg.Variable(7, name="step", trainable=False)  # int64 scalar
    return w, d, step


def initialized_session():
    sess = sg.Session()
    sess.run(sg.global_variables_initializer())
    return sess


def overwrite(sess, *variables):
    """Change every variable's value through ordinary assign ops."""
    sess.run(sg.group(*[sg.assign(v, sg.zeros(v.shape, v.dtype) + 42) for v in variables]))


def test_round_trip_restores_values_and_dtypes(tmp_path):
    w, d, step = make_vars()
    sess = initialized_session()
    before = sess.run([w, d, step])
    path = sg.train.Saver().save(sess, str(tmp_path / "model"))
    overwrite(sess, w, d, step)
    assert sess.run(step) == 42
    sg.train.Saver().restore(sess, str(tmp_path / "model"))
    after = sess.run([w, d, step])
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype
    with np.load(path) as data:
        assert sorted(data.files) == ["d", "step", "w"]
        assert data["d"].dtype == np.float64 and data["w"].dtype == np.float32


def test_restore_into_fresh_graph_and_uninitialized_session(tmp_path):
    w, d, step = make_vars()
    path = sg.train.Saver().save(initialized_session(), tmp_path / "m")
    g = sg.Graph()
    with g.as_default():
        w2, d2, step2 = make_vars()
    sess = sg.Session(graph=g)
    with pytest.raises(sg.errors.FailedPreconditionError):
        sess.run(w2)
    sg.train.Saver([w2, d2, step2]).restore(sess, path)
    np.testing.assert_array_equal(sess.run(w2), np.arange(6.0).reshape(2, 3))
    assert sess.run(step2) == 7


@pytest.mark.parametrize("given", ["ckpt", "ckpt.npz"])
def test_path_suffix(tmp_path, given):
    w, _, _ = make_vars()
    sess = initialized_session()
    base = str(tmp_path / given)
    written = sg.train.Saver().save(sess, base)
    assert written.startswith(base)
    assert written == str(tmp_path / "ckpt.npz")
    assert sorted(os.listdir(tmp_path)) == ["ckpt.npz"]
    overwrite(sess, w)
    sg.train.Saver().restore(sess, base)  # the same path given to save
    np.testing.assert_array_equal(sess.run(w), np.arange(6.0).reshape(2, 3))
    overwrite(sess, w)
    sg.train.Saver().restore(sess, written)  # or the path save returned
    np.testing.assert_array_equal(sess.run(w), np.arange(6.0).reshape(2, 3))


def test_global_step_in_file_name(tmp_path):
    make_vars()
    written = sg.train.Saver().save(initialized_session(), str(tmp_path / "model"), global_step=12)
    assert written == str(tmp_path / "model-12.npz")
    assert os.path.isfile(written)


def test_dict_var_list_uses_its_names_and_subset_only(tmp_path):
    w, d, step = make_vars()
    sess = initialized_session()
    path = sg.train.Saver({"weights": w}).save(sess, tmp_path / "sub")
    with np.load(path) as data:
        assert data.files == ["weights"]
    overwrite(sess, w, d)
    sg.train.Saver({"weights": w}).restore(sess, path)
    np.testing.assert_array_equal(sess.run(w), np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(sess.run(d), [42.0, 42.0])  # not in the var_list: untouched


def test_names_that_clash_with_numpy_savez_keywords(tmp_path):
    f = sg.Variable([1.0, 2.0], name="file")
    sess = initialized_session()
    path = sg.train.Saver().save(sess, tmp_path / "kw")
    overwrite(sess, f)
    sg.train.Saver().restore(sess, path)
    np.testing.assert_array_equal(sess.run(f), [1.0, 2.0])


def test_default_saver_includes_slots_created_after_it(tmp_path):
    w = sg.Variable(np.array([1.0, -1.0]), name="w", dtype=sg.float64)
    saver = sg.train.Saver()  # built before the optimizer: slots still saved
    opt = sg.train.AdamOptimizer(0.1)
    train = opt.minimize((w * w * w).sum())
    sess = initialized_session()
    sess.run(train)
    path = saver.save(sess, tmp_path / "adam")
    with np.load(path) as data:
        assert set(data.files) == {"w", "w/Adam_m", "w/Adam_v", "beta1_power", "beta2_power"}
    sess.run(train)
    sess.run(train)
    continued = sess.run(w)
    saver.restore(sess, path)
    sess.run(train)
    sess.run(train)
    np.testing.assert_array_equal(sess.run(w), continued)  # identical steps from identical state


# -- atomic writes ------------------------------------------------------------------------------

def failing_write(arrays_written):
    """A ``_write_npz`` replacement that writes part of an archive, then fails."""
    def write(f, arrays):
        f.write(b"PK\x03\x04 partial archive")
        arrays_written.append(dict(arrays))
        raise OSError("disk full (injected)")
    return write


def test_failed_write_keeps_old_checkpoint_and_removes_temp(tmp_path, monkeypatch):
    w, _, _ = make_vars()
    sess = initialized_session()
    saver = sg.train.Saver()
    path = saver.save(sess, tmp_path / "ckpt")
    old_bytes = open(path, "rb").read()
    overwrite(sess, w)
    calls = []
    monkeypatch.setattr(saver_mod, "_write_npz", failing_write(calls))
    with pytest.raises(OSError, match="injected"):
        saver.save(sess, tmp_path / "ckpt")
    assert calls and calls[0]["w"][0, 0] == 42  # the new values really were being written
    assert sorted(os.listdir(tmp_path)) == ["ckpt.npz"]
    assert open(path, "rb").read() == old_bytes
    monkeypatch.undo()
    saver.restore(sess, tmp_path / "ckpt")
    np.testing.assert_array_equal(sess.run(w), np.arange(6.0).reshape(2, 3))


def test_failed_first_write_leaves_nothing(tmp_path, monkeypatch):
    make_vars()
    monkeypatch.setattr(saver_mod, "_write_npz", failing_write([]))
    with pytest.raises(OSError):
        sg.train.Saver().save(initialized_session(), tmp_path / "ckpt")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("step", ["fsync", "replace"])
def test_failure_at_fsync_or_rename_keeps_old_checkpoint(tmp_path, monkeypatch, step):
    w, _, _ = make_vars()
    sess = initialized_session()
    path = sg.train.Saver().save(sess, tmp_path / "ckpt")
    old_bytes = open(path, "rb").read()
    overwrite(sess, w)

    def boom(*args):
        raise OSError(f"{step} failed (injected)")
    monkeypatch.setattr(os, step, boom)
    with pytest.raises(OSError, match="injected"):
        sg.train.Saver().save(sess, tmp_path / "ckpt")
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == ["ckpt.npz"]
    assert open(path, "rb").read() == old_bytes


def test_process_killed_mid_write_keeps_old_checkpoint(tmp_path):
    w, _, _ = make_vars()
    sess = initialized_session()
    path = sg.train.Saver().save(sess, tmp_path / "ckpt")
    script = textwrap.dedent(f"""
        import os, numpy as np, staticgraph as sg
        from staticgraph.train import saver as saver_mod
        def die(f, arrays):
            f.write(b"PK\\x03\\x04 half an archive")
            f.flush()
            os._exit(9)
        saver_mod._write_npz = die
        w = sg.Variable(np.zeros((2, 3)), name="w")
        sess = sg.Session()
        sess.run(sg.global_variables_initializer())
        sg.train.Saver([w]).save(sess, {str(tmp_path / "ckpt")!r})
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 9, proc.stderr
    assert [n for n in os.listdir(tmp_path) if n.endswith(".tmp")], "the killed writer left its temp file"
    overwrite(sess, w)
    sg.train.Saver([w]).restore(sess, path)
    np.testing.assert_array_equal(sess.run(w), np.arange(6.0).reshape(2, 3))
    live = tmp_path / f".ckpt.npz.{saver_mod._HOST}-{os.getpid()}-{'0' * 12}.tmp"   # a save in progress
    live.write_bytes(b"PK")
    sg.train.Saver([w]).save(sess, tmp_path / "ckpt")           # the next save removes the dead one
    assert sorted(os.listdir(tmp_path)) == sorted(["ckpt.npz", live.name])


def test_save_into_unwritable_directory_names_the_checkpoint(tmp_path, monkeypatch):
    make_vars()
    sess = initialized_session()
    real_open = open

    def refuse(file, mode="r", *args, **kwargs):       # root ignores mode bits: the OS's answer, injected
        if "x" in mode:
            raise PermissionError(13, "Permission denied", file)
        return real_open(file, mode, *args, **kwargs)
    monkeypatch.setattr("builtins.open", refuse)
    with pytest.raises(PermissionError, match=re.escape(f"cannot save checkpoint '{tmp_path / 'ckpt.npz'}' "
                                                        f"(writing in '{tmp_path}'): Permission denied")):
        sg.train.Saver().save(sess, tmp_path / "ckpt")


# -- errors -------------------------------------------------------------------------------------

def test_save_uninitialized_variable_names_it(tmp_path):
    sg.Variable(np.ones(2), name="ready")
    sg.Variable(np.ones(2), name="never_initialized")
    sess = sg.Session()
    sess.run(sg.variables_initializer(sg.global_variables()[:1]))
    with pytest.raises(sg.errors.FailedPreconditionError, match="never_initialized"):
        sg.train.Saver().save(sess, tmp_path / "x")
    assert os.listdir(tmp_path) == []


def test_restore_missing_file_names_the_path(tmp_path):
    make_vars()
    missing = str(tmp_path / "nothing_here")
    with pytest.raises(sg.errors.NotFoundError, match="nothing_here"):
        sg.train.Saver().restore(initialized_session(), missing)


def test_restore_missing_variable_names_it(tmp_path):
    w, d, _ = make_vars()
    sess = initialized_session()
    path = sg.train.Saver([w]).save(sess, tmp_path / "only_w")
    with pytest.raises(sg.errors.NotFoundError, match=r"checkpoint '.*only_w.npz': variable 'd' not found .*'w'"):
        sg.train.Saver([w, d]).restore(sess, path)


def test_restore_wrong_shape_names_variable_expected_and_found(tmp_path):
    w, d, _ = make_vars()
    sess = initialized_session()
    path = sg.train.Saver({"w": w, "d": w}).save(sess, tmp_path / "shapes")
    overwrite(sess, w, d)
    with pytest.raises(sg.errors.InvalidArgumentError, match=r"shapes.npz': .*'d'.*expected \(2,\), found \(2, 3\)"):
        sg.train.Saver({"w": w, "d": d}).restore(sess, path)
    np.testing.assert_array_equal(sess.run(w), np.full((2, 3), 42.0))  # all or nothing


def test_restore_wrong_dtype_names_variable_expected_and_found(tmp_path):
    d = sg.Variable(np.array([1.0, 2.0]), name="d", dtype=sg.float64)
    f = sg.Variable(np.array([1.0, 2.0]), name="f")  # float32, same shape
    sess = initialized_session()
    path = sg.train.Saver({"x": f}).save(sess, tmp_path / "dtypes")
    with pytest.raises(sg.errors.InvalidArgumentError, match=r"dtypes.npz': .*'x'.*expected float64, found float32"):
        sg.train.Saver({"x": d}).restore(sess, path)


def test_restore_non_checkpoint_file(tmp_path):
    make_vars()
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(sg.errors.InvalidArgumentError, match="bad.npz"):
        sg.train.Saver().restore(initialized_session(), bad)


def test_save_into_missing_directory(tmp_path):
    make_vars()
    with pytest.raises(sg.errors.NotFoundError, match="no_such_dir"):
        sg.train.Saver().save(initialized_session(), tmp_path / "no_such_dir" / "ckpt")


def test_bad_var_lists():
    w = sg.Variable(np.ones(2), name="w")
    with pytest.raises(TypeError, match="Variable"):
        sg.train.Saver([w * 2.0])
    with pytest.raises(ValueError, match="'w'"):
        sg.train.Saver([w, w])


def test_session_variable_value_accessors():
    w = sg.Variable(np.ones(2), name="w")
    sess = initialized_session()
    value = sess.get_variable_value(w)
    value[0] = 5.0
    np.testing.assert_array_equal(sess.run(w), [1.0, 1.0])  # a copy
    sess.set_variable_value(w, np.array([3.0, 4.0]))  # float64 -> float32 (same_kind)
    got = sess.run(w)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, [3.0, 4.0])
    with pytest.raises(sg.errors.InvalidArgumentError, match=r"variable 'w', which has shape \(2,\)"):
        sess.set_variable_value(w, np.ones(3))
    with pytest.raises(sg.errors.InvalidArgumentError, match="dtype str.*variable 'w'"):
        sess.set_variable_value(w, np.array(["a", "b"]))


# -- every refusal of restore names the checkpoint file ------------------------------------------

def saved_checkpoint(tmp_path):
    w, d, step = make_vars()
    sess = initialized_session()
    return sess, sg.train.Saver().save(sess, tmp_path / "ckpt")


def test_restore_refuses_truncated_empty_and_foreign_files_naming_them(tmp_path, rng):
    sess, path = saved_checkpoint(tmp_path)
    data = open(path, "rb").read()
    cut = int(rng.integers(8, len(data) - 8))
    cases = {
        "truncated.npz": (data[:cut], r"truncated or damaged"),
        "empty.npz": (b"", r"not a checkpoint \(the file is empty\)"),
        "text.npz": (b"w,d,step\n1,2,3\n", r"not a checkpoint \(not an .npz archive\)"),
    }
    for name, (content, problem) in cases.items():
        bad = tmp_path / name
        bad.write_bytes(content)
        with pytest.raises(sg.errors.DataLossError, match=rf"checkpoint '{re.escape(str(bad))}': {problem}"):
            sg.train.Saver().restore(sess, bad)


def test_restore_refuses_corrupt_member_data_naming_the_file(tmp_path):
    sess, path = saved_checkpoint(tmp_path)
    data = bytearray(open(path, "rb").read())
    # flip the last data byte of the first member: its CRC no longer matches
    with zipfile.ZipFile(path) as zf:
        info = zf.infolist()[0]
    end_of_data = info.header_offset + 30 + len(info.filename) + len(info.extra) + info.compress_size - 1
    data[end_of_data] ^= 0xFF
    bad = tmp_path / "corrupt.npz"
    bad.write_bytes(bytes(data))
    with pytest.raises(sg.errors.DataLossError, match=rf"checkpoint '{re.escape(str(bad))}': cannot be read: .*CRC"):
        sg.train.Saver().restore(sess, bad)


def test_restore_refuses_object_arrays_without_unpickling(tmp_path):
    import pickle
    w, d, step = make_vars()
    sess = initialized_session()
    marker = tmp_path / "unpickled"

    class Boom:
        def __reduce__(self):
            return (open, (str(marker), "w"))   # would create the marker file if unpickled

    bad = tmp_path / "objects.npz"
    np.savez(bad, w=np.zeros((2, 3), np.float32), d=np.array([Boom(), 1], dtype=object),
             step=np.int64(3))
    assert pickle.loads(pickle.dumps(Boom())) and marker.exists()   # the payload does work ...
    marker.unlink()
    with pytest.raises(sg.errors.DataLossError,
                       match=rf"checkpoint '{re.escape(str(bad))}': entry 'd' holds an object \(pickled\) array"):
        sg.train.Saver().restore(sess, bad)
    assert not marker.exists()                                          # ... but was never run
    np.testing.assert_array_equal(sess.run(d), [0.5, -1.5])            # nothing restored


def test_restore_refuses_truncated_entry_and_bad_npy_header(tmp_path):
    w, d, step = make_vars()
    sess = initialized_session()
    good = sg.train.Saver().save(sess, tmp_path / "good")
    raw = tmp_path / "raw.npz"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(raw, "w") as dst:
        for info in src.infolist():      # entry 'd' keeps a valid header but loses half its data
            payload = src.read(info)
            dst.writestr(info.filename, payload[:-8] if info.filename == "d.npy" else payload)
    with pytest.raises(sg.errors.DataLossError, match=rf"checkpoint '{re.escape(str(raw))}': entry 'd' is truncated: 8 of 16"):
        sg.train.Saver().restore(sess, raw)
    junk = tmp_path / "junk.npz"
    with zipfile.ZipFile(junk, "w") as dst:
        dst.writestr("w.npy", b"this is no npy header")
    with pytest.raises(sg.errors.DataLossError, match=rf"checkpoint '{re.escape(str(junk))}': entry 'w' is not a valid .npy"):
        sg.train.Saver([w]).restore(sess, junk)


def test_restore_reads_big_endian_and_fortran_entries(tmp_path, rng):
    w, d, step = make_vars()
    sess = initialized_session()
    wv = rng.standard_normal((2, 3)).astype(">f4")
    dv = np.asfortranarray(rng.standard_normal(2))
    path = tmp_path / "foreign.npz"
    np.savez(path, w=np.asfortranarray(wv), d=dv, step=np.int64(9))
    sg.train.Saver().restore(sess, path)
    np.testing.assert_array_equal(sess.run(w), wv.astype(np.float32))
    np.testing.assert_array_equal(sess.run(d), dv)
    assert sess.run(step) == 9


def test_save_fsyncs_the_directory_after_the_rename(tmp_path, monkeypatch):
    """Without the directory fsync a power cut can lose the rename (the checkpoint)."""
    import stat
    make_vars()
    sess = initialized_session()
    target = tmp_path / "durable.npz"
    synced = []
    real_fsync = os.fsync

    def recording_fsync(fd):
        is_dir = stat.S_ISDIR(os.fstat(fd).st_mode)
        synced.append(("dir" if is_dir else "file", target.exists()))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    sg.train.Saver().save(sess, target)
    assert ("file", False) in synced, synced      # the data, before it is renamed into place
    assert synced[-1] == ("dir", True), synced    # the directory entry, after the rename


# -- checkpoints while another thread trains (issue 27) ------------------------------------------

@pytest.mark.parametrize("target", ["cpu", "reference"])
def test_save_racing_a_training_thread_restores_to_one_step(tmp_path, target):
    """Saves (and single reads) take the session lock: each holds the values after one whole step,
    never half of a step's assigns (the cpu step writes the variables in place)."""
    import threading
    n = 1 << 20
    a = sg.Variable(np.zeros(n, np.float32), name="a")
    b = sg.Variable(np.zeros(n, np.float32), name="b")
    train = sg.group(sg.assign(a, a + 1.0), sg.assign(b, b + 1.0))
    sess = sg.Session(target=target)
    sess.run(sg.global_variables_initializer())
    sess.run(train)                                 # compiled before the race
    saver, stop = sg.train.Saver(), threading.Event()

    def trainer():
        while not stop.is_set():
            sess.run(train)
    thread = threading.Thread(target=trainer)
    thread.start()
    try:
        paths = [saver.save(sess, tmp_path / "ckpt", global_step=i) for i in range(8)]
        singles = [sess.get_variable_value(a) for _ in range(8)]
    finally:
        stop.set()
        thread.join()
    steps = set()
    for path in paths:
        saver.restore(sess, path)
        va, vb = sess.get_variable_value(a), sess.get_variable_value(b)
        assert va.min() == va.max() == vb.min() == vb.max(), (path, np.unique(va), np.unique(vb))
        steps.add(float(va[0]))
    for value in singles:
        assert value.min() == value.max()
    assert max(steps) > 1                           # the trainer really ran during the saves
