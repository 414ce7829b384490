"""Bad input of every kind gets a clear error and exit code 1, never a crash."""
import gzip
import io
import os
import shutil
import stat
import zipfile

import numpy as np
import pytest

from conftest import ROOT, run_cli

MODELS = os.path.join(ROOT, "tests", "data", "models")


def assert_clean_error(r, *words):
    assert r.code == 1, f"exit {r.code}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    assert "\nerror: " in "\n" + r.stderr, r.stderr
    for w in words:
        assert w.lower() in r.stderr.lower(), f"{w!r} not in: {r.stderr}"


def fixture_files(shared_dir):
    m = os.path.join(shared_dir, "fixtures", "models")
    return {"onnx": os.path.join(m, "pytorch1.10_mnist_cnn.onnx"), "h5": os.path.join(m, "keras2.3_mnist_cnn.h5"),
            "pt": os.path.join(MODELS, "fashion_cnn.pt")}


@pytest.mark.parametrize("ext", ["onnx", "h5", "keras", "pt"])
def test_empty_file(tmp_path, ext):
    p = tmp_path / f"model.{ext}"
    p.write_bytes(b"")
    assert_clean_error(run_cli("inspect", p), "empty")


@pytest.mark.parametrize("kind", ["onnx", "h5", "pt"])
@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.97])
def test_truncated_file(shared_dir, tmp_path, kind, fraction):
    src = fixture_files(shared_dir)[kind]
    data = open(src, "rb").read()
    p = tmp_path / ("cut." + kind)
    p.write_bytes(data[: int(len(data) * fraction)])
    r = run_cli("inspect", p)
    assert_clean_error(r)


@pytest.mark.parametrize("kind", ["onnx", "h5", "pt"])
def test_corrupted_bytes(shared_dir, tmp_path, kind):
    data = bytearray(open(fixture_files(shared_dir)[kind], "rb").read())
    rng = np.random.default_rng(3)
    for pos in rng.integers(64, len(data), 200):
        data[pos] ^= 0xFF
    p = tmp_path / ("bad." + kind)
    p.write_bytes(bytes(data))
    r = run_cli("inspect", p)
    assert r.code in (0, 1), r.stderr  # a flip may land in weights only; it must never crash
    if r.code == 1:
        assert "\nerror: " in "\n" + r.stderr


def test_wrong_extension_is_read_by_content(shared_dir, tmp_path):
    p = tmp_path / "really_keras.onnx"
    shutil.copy(fixture_files(shared_dir)["h5"], p)
    r = run_cli("inspect", p, "--json")
    assert r.code == 0, r.stderr
    assert r.json()["format"] == "keras-h5"


def test_not_a_model(tmp_path):
    p = tmp_path / "notes.onnx"
    p.write_text("these are my notes, not a model\n" * 20)
    assert_clean_error(run_cli("inspect", p), "not a model")


def test_hdf5_without_model_config(tmp_path):
    h5py = pytest.importorskip("h5py")
    p = tmp_path / "weights_only.h5"
    with h5py.File(p, "w") as f:
        f.create_dataset("dense/kernel:0", data=np.zeros((4, 4), np.float32))
    assert_clean_error(run_cli("inspect", p), "model_config")


def test_unsupported_onnx_op_names_op_and_node(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 16, 16])
    scales = helper.make_tensor("scales", TensorProto.FLOAT, [4], [1, 1, 2, 2])
    node = helper.make_node("Resize", ["x", "", "scales"], ["y"], name="upsample_7", mode="nearest")
    model = helper.make_model(helper.make_graph([node], "g", [x], [y], [scales]), opset_imports=[helper.make_opsetid("", 13)])
    p = tmp_path / "resize.onnx"
    onnx.save(model, p)
    assert_clean_error(run_cli("inspect", p), "Resize", "upsample_7")


def test_pickled_pytorch_is_never_unpickled(tmp_path):
    torch = pytest.importorskip("torch")
    marker = tmp_path / "pwned"
    p = tmp_path / "model.pth"
    torch.save({"weight": torch.zeros(2), "note": "state_dict"}, p)
    r = run_cli("inspect", p)
    assert_clean_error(r, "torch.jit.save", "torch.onnx.export")
    assert not marker.exists()


def test_raw_pickle_is_refused(tmp_path):
    p = tmp_path / "model.pkl"
    p.write_bytes(b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00}\x94\x8c\x01a\x94K\x01s.")
    assert_clean_error(run_cli("inspect", p), "torch.jit.save")


# ---- datasets ----

def write_zip(path, entries):
    with zipfile.ZipFile(path, "w") as z:
        for name, data in entries:
            z.writestr(name, data)


def png_bytes():
    # A tiny valid 1x1 grayscale PNG.
    return bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108000000003a7e9b55"
                         "0000000a49444154789c63600000000200015df3bc3b0000000049454e44ae426082")


@pytest.mark.parametrize("case", ["traversal", "absolute", "symlink", "bomb", "not_images"])
def test_hostile_zip_dataset(shared_dir, tmp_path, case):
    z = tmp_path / f"{case}.zip"
    if case == "traversal":
        write_zip(z, [("cat/a.png", png_bytes()), ("../../evil.png", png_bytes())])
    elif case == "absolute":
        write_zip(z, [("cat/a.png", png_bytes()), ("/tmp/evil.png", png_bytes())])
    elif case == "symlink":
        with zipfile.ZipFile(z, "w") as zf:
            zf.writestr("cat/a.png", png_bytes())
            info = zipfile.ZipInfo("dog/link.png")
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
    elif case == "bomb":
        with zipfile.ZipFile(z, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("cat/a.png", png_bytes())
            zf.writestr("cat/huge.png", b"\0" * (300 * 1024 * 1024))
    elif case == "not_images":
        write_zip(z, [("cat/readme.txt", b"hello"), ("dog/data.csv", b"1,2,3")])
    model = os.path.join(shared_dir, "fixtures", "models", "pytorch1.10_mnist_cnn.onnx")
    r = run_cli("evaluate", model, "--dataset", z, "--no-download")
    assert_clean_error(r)
    assert not (tmp_path.parent / "evil.png").exists()


@pytest.mark.parametrize("case", ["magic", "size"])
def test_bad_idx_files(shared_dir, tmp_path, case):
    src = os.path.join(shared_dir, "datasets", "mnist-10k")
    for name in os.listdir(src):
        data = gzip.open(os.path.join(src, name)).read()
        if "images" in name:
            data = (b"\x00\x00\x09\x99" + data[4:]) if case == "magic" else data[:-100]
        with gzip.open(tmp_path / name, "wb") as f:
            f.write(data)
    model = os.path.join(shared_dir, "fixtures", "models", "pytorch1.10_mnist_cnn.onnx")
    r = run_cli("evaluate", model, "--dataset", "mnist", "--data-dir", tmp_path, "--no-download")
    assert_clean_error(r, "images")



def test_unknown_dataset_lists_choices(shared_dir):
    model = os.path.join(shared_dir, "fixtures", "models", "pytorch1.10_mnist_cnn.onnx")
    r = run_cli("evaluate", model, "--dataset", "imagenet-21k", "--no-download")
    assert_clean_error(r)
