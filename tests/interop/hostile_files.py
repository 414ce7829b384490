"""Generators of hostile model and dataset files (issue 9), made at test time by test_hostile.py.

Each function writes one file (or folder) at `path`; `target` is a file outside the model's folder
the hostile file tries to read or write (the test's canary).
"""
import os
import struct
import zipfile
import zlib

import numpy as np

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


# ---- ONNX ------------------------------------------------------------------------------------

def onnx_concat_doublings(path, doublings=40):
    """A 2 KB model whose constant Concat doubles a tensor 40 times (2^40 elements)."""
    import onnx
    from onnx import TensorProto, helper
    nodes = [helper.make_node("Constant", [], ["c0"], value=helper.make_tensor("v", TensorProto.FLOAT, [256], [1.0] * 256))]
    for i in range(doublings):
        nodes.append(helper.make_node("Concat", [f"c{i}", f"c{i}"], [f"c{i + 1}"], axis=0))
    nodes.append(helper.make_node("Add", ["x", f"c{doublings}"], ["y"]))
    graph = helper.make_graph(nodes, "bomb", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)


def onnx_huge_input(path, side=40000):
    """A tiny model that declares a side x side image input."""
    import onnx
    from onnx import TensorProto, helper
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "huge",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, side, side])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, side, side])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)


def tflite_huge_input(path, side, edgeopt):
    """A 600-byte TFLite file (EdgeOpt's own export of onnx_huge_input) declaring a side x side image."""
    import subprocess
    onnx_path = path + ".onnx"
    onnx_huge_input(onnx_path, side)
    subprocess.run([edgeopt, "export", onnx_path, "--format", "tflite", "--out", path], check=True, capture_output=True)
    os.remove(onnx_path)


def onnx_external_data_outside(path, target):
    """An initializer whose external data lives at an absolute path outside the model's folder."""
    import onnx
    from onnx import TensorProto, helper
    w = helper.make_tensor("w", TensorProto.FLOAT, [4], [0.0] * 4)
    w.ClearField("float_data")
    w.data_location = TensorProto.EXTERNAL
    for k, v in (("location", target), ("offset", "0"), ("length", "16")):
        e = w.external_data.add()
        e.key, e.value = k, v
    graph = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "ext",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], initializer=[w])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)


def big_zero_file(path, size=5 << 30):
    """5 GiB of zeros (sparse on disk): not a model, and never to be read whole."""
    with open(path, "wb") as f:
        f.truncate(size)


# ---- TorchScript -------------------------------------------------------------------------------

def _torch():
    import torch
    return torch


def _script(src, path):
    """Scripts class M of `src` and saves it; the source goes to a module file torch.jit can read."""
    import importlib.util
    import tempfile
    torch = _torch()
    with tempfile.TemporaryDirectory() as tmp:
        module_path = os.path.join(tmp, "hostile_module.py")
        with open(module_path, "w") as f:
            f.write(src)
        spec = importlib.util.spec_from_file_location("hostile_module", module_path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        # The input shape is given, so the importer goes on to lower forward() (where the harm is).
        torch.jit.save(torch.jit.script(module.M()), path, _extra_files={"edgeopt.json": '{"input_shape": [1, 1, 28, 28]}'})


def ts_writes_file(path, target):
    """forward() maps `target` with torch.from_file(shared=True) and writes into it."""
    src = f'''
import torch
class M(torch.nn.Module):
    def forward(self, x):
        t = torch.from_file({target!r}, shared=True, size=64)
        t.fill_(7.0)
        return x + t.sum()
'''
    _script(src, path)


def ts_setstate(path, body):
    """A module whose __setstate__ (run by LibTorch while loading) does `body`."""
    src = f'''
import torch
from typing import Tuple
class M(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(2))
    def forward(self, x):
        return x * 2
    @torch.jit.export
    def __getstate__(self) -> Tuple[torch.Tensor, bool]:
        return (self.w, self.training)
    @torch.jit.export
    def __setstate__(self, state: Tuple[torch.Tensor, bool]) -> None:
{body}
        self.w = state[0]
'''
    _script(src, path)


def ts_setstate_loop(path):
    ts_setstate(path, "        i = 0\n        while i >= 0:\n            i = i + 1")


def ts_setstate_writes(path, target):
    ts_setstate(path, f"        t = torch.from_file({target!r}, shared=True, size=64)\n        t.fill_(1.0)")


def ts_nested_loops(path):
    """Three nested loops, each under the importer's trip cap, on constants."""
    src = '''
import torch
class M(torch.nn.Module):
    def forward(self, x):
        n = 0
        for i in range(9000):
            for j in range(9000):
                for k in range(9000):
                    n = n + 1
        return x + n
'''
    _script(src, path)


def ts_huge_constant(path):
    """A constant-folded torch.ones(4e9): 16 GB if evaluated."""
    src = '''
import torch
class M(torch.nn.Module):
    def forward(self, x):
        return x + torch.ones(4000000000).sum()
'''
    _script(src, path)


def ts_extra_method(path):
    """An exported method forward() never calls."""
    src = '''
import torch
class M(torch.nn.Module):
    def forward(self, x):
        return x * 2
    @torch.jit.export
    def sneaky(self, x: torch.Tensor) -> torch.Tensor:
        return x.exp()
'''
    _script(src, path)


def _linear_archive(path):
    torch = _torch()
    torch.jit.script(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10)).eval()).save(path)


def _rewrite_zip(src, dst, change):
    """Copies a ZIP entry by entry, stored, with change(name, bytes) -> bytes applied."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, change(info.filename, zin.read(info.filename)))


def ts_short_storage(path):
    """A weight entry shorter than its tensor (the rest would be read from process memory)."""
    tmp = path + ".src"
    _linear_archive(tmp)
    _rewrite_zip(tmp, path, lambda name, data: data[:64] if "/data/" in name and len(data) > 64 else data)
    os.remove(tmp)


def ts_append_to_non_list(path):
    """A data.pkl whose APPEND targets None instead of a list (found by fuzz_torchscript_archive)."""
    tmp = path + ".src"
    _linear_archive(tmp)
    _rewrite_zip(tmp, path, lambda name, data: b"\x80\x02NNa." if name.endswith("/data.pkl") else data)
    os.remove(tmp)


def ts_storage_bomb(path, inflated=3 << 30):
    """A storage entry that deflates to 3 GiB of zeros, and a data.pkl that declares it so."""
    tmp = path + ".src"
    _linear_archive(tmp)
    with zipfile.ZipFile(tmp) as z:
        entries = [(i.filename, z.read(i.filename)) for i in z.infolist()]
    os.remove(tmp)
    # One deflate block of 1 MiB of zeros, full-flushed so it can be repeated verbatim.
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = comp.compress(b"\0" * (1 << 20)) + comp.flush(zlib.Z_FULL_FLUSH)
    tail = comp.flush(zlib.Z_FINISH)
    crc = 0
    zeros = b"\0" * (1 << 20)
    for _ in range(inflated >> 20):
        crc = zlib.crc32(zeros, crc)
    with open(path, "wb") as out:
        central = b""
        for name, data in entries:
            bomb = "/data/" in name
            body_len = len(block) * (inflated >> 20) + len(tail) if bomb else len(data)
            size = inflated if bomb else len(data)
            c = crc if bomb else zlib.crc32(data)
            method = 8 if bomb else 0
            offset = out.tell()
            fname = name.encode()
            out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0, c, body_len, size, len(fname), 0) + fname)
            if bomb:
                for _ in range(inflated >> 20):
                    out.write(block)
                out.write(tail)
            else:
                out.write(data)
            central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0, c, body_len, size, len(fname),
                                   0, 0, 0, 0, 0, offset) + fname
        start = out.tell()
        out.write(central)
        out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries), len(central), start, 0))


# ---- Keras HDF5 --------------------------------------------------------------------------------

KERAS_H5 = os.path.join(ROOT, "tests", "data", "keras", "dense_acts_k2.h5")


def _first_weight(f):
    found = []
    f["model_weights"].visititems(lambda name, obj: found.append(name) if hasattr(obj, "shape") and not found else None)
    return "model_weights/" + found[0]


def _copy_keras(path):
    import shutil
    shutil.copyfile(KERAS_H5, path)


def h5_external_storage(path, target):
    """A kernel whose raw data is external storage on `target` (a host file)."""
    import h5py
    _copy_keras(path)
    with h5py.File(path, "r+") as f:
        name = _first_weight(f)
        shape, dtype = f[name].shape, f[name].dtype
        del f[name]
        nbytes = int(np.prod(shape)) * dtype.itemsize
        f.create_dataset(name, shape=shape, dtype=dtype, external=[(target, 0, nbytes)])


def h5_external_link(path, target_h5):
    """A kernel that is an external link into another HDF5 file."""
    import h5py
    _copy_keras(path)
    with h5py.File(path, "r+") as f:
        name = _first_weight(f)
        shape, dtype = f[name].shape, f[name].dtype
        del f[name]
        f[name] = h5py.ExternalLink(target_h5, "/w")
    with h5py.File(target_h5, "w") as g:
        g["w"] = np.ones(shape, dtype)


def h5_virtual_dataset(path, target_h5):
    """A kernel that is a virtual dataset mapped from another HDF5 file."""
    import h5py
    _copy_keras(path)
    with h5py.File(path, "r+") as f:
        name = _first_weight(f)
        shape, dtype = f[name].shape, f[name].dtype
        with h5py.File(target_h5, "w") as g:
            g["w"] = np.ones(shape, dtype)
        del f[name]
        layout = h5py.VirtualLayout(shape=shape, dtype=dtype)
        layout[...] = h5py.VirtualSource(target_h5, "w", shape=shape)
        f.create_virtual_dataset(name, layout)


# ---- datasets ----------------------------------------------------------------------------------

def png_header_only(width, height):
    """A PNG whose header declares width x height and holds almost no data."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def dataset_zip_huge_png(path):
    with zipfile.ZipFile(path, "w") as z:
        for cls in ("a", "b"):
            for i in range(3):
                z.writestr(f"{cls}/{i}.png", png_header_only(100000, 100000))


def dataset_folder_symlink(folder, target):
    """Class folders whose images are symlinks to a host file."""
    for cls in ("a", "b"):
        os.makedirs(os.path.join(folder, cls), exist_ok=True)
        for i in range(3):
            os.symlink(target, os.path.join(folder, cls, f"{i}.png"))
