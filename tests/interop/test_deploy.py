"""Device-faithful checks of what EdgeOpt ships: `edgeopt optimize` exports every variant to
TFLite (FP32, FP16 weights, dynamic-range int8, full-integer int8) and ONNX, scores each file in
its own runtime (LiteRT, ONNX Runtime) on the whole test split, and `edgeopt package` zips a
variant for a device. Here LiteRT and ONNX Runtime run the files again, the package is unzipped
and its self-test and example run, and a tampered package must fail its checksum check.

Models: the Fashion-MNIST CNN of tests/data (an EdgeOpt-independent PyTorch export) and the
third-party PyTorch MNIST fixture of ../shared (skipped when absent)."""
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from conftest import ROOT, SHARED, optimize_run, run_cli

litert = pytest.importorskip("ai_edge_litert.interpreter")
ort = pytest.importorskip("onnxruntime")

TECHNIQUES = "ptq_int8,prune_unstructured,hybrid_int4"
# The platform's accuracy and the runtime's on the same test split (acceptance: within 0.3 pt).
ACCURACY_POINTS = 0.3


def optimize(model, dataset, data_dir, out, normalize):
    return optimize_run(model, dataset, data_dir, out, normalize, TECHNIQUES, "raspberry_pi_4,coral_usb_pi4,jetson_orin_nano")


@pytest.fixture(scope="module")
def fashion_run(tmp_path_factory):
    if not os.path.exists("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"):
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    out = tmp_path_factory.mktemp("fashion") / "run"
    return out, optimize(os.path.join(ROOT, "tests", "data", "models", "fashion_cnn.onnx"), "fashion-mnist", None, out, "unit")


@pytest.fixture(scope="module")
def mnist_fixture_run(tmp_path_factory):
    shared = os.path.join(SHARED, "datasets", "mnist-10k")
    model = os.path.join(SHARED, "fixtures", "models", "pytorch1.10_mnist_cnn.onnx")
    if not os.path.exists(model):
        pytest.skip("../shared is not present")
    # mnist-10k has the test files only; the first 1,000 digits serve as the training copy.
    import gzip
    data = tmp_path_factory.mktemp("mnist")
    for kind, header, item in (("images-idx3", 16, 784), ("labels-idx1", 8, 1)):
        src = os.path.join(shared, f"t10k-{kind}-ubyte.gz")
        shutil.copy(src, data / f"t10k-{kind}-ubyte.gz")
        with gzip.open(src, "rb") as f:
            raw = bytearray(f.read())
        raw[4:8] = (1000).to_bytes(4, "big")
        with gzip.open(data / f"train-{kind}-ubyte.gz", "wb") as f:
            f.write(bytes(raw[:header + 1000 * item]))
    out = data / "run"
    return out, optimize(model, "mnist", str(data), out, "mnist")


RUNS = ["fashion_run", "mnist_fixture_run"]


def every_export(res):
    for v in [res["baseline"]] + res["variants"]:
        for e in v["exports"]:
            yield v, e


@pytest.mark.parametrize("run", RUNS)
def test_every_export_is_scored_in_its_runtime_like_edgeopt(run, request):
    out, res = request.getfixturevalue(run)
    kinds = set()
    for v, e in every_export(res):
        assert "path" in e, (v["technique"], e)
        acc = e["runtime_accuracy"]
        assert "accuracy" in acc, (e["path"], acc)
        assert acc["samples"] == v["samples"]
        assert abs(acc["accuracy"] - v["accuracy"]) * 100 <= ACCURACY_POINTS, (e["path"], acc["accuracy"], v["accuracy"])
        assert acc["latency_ms"]["p50"] > 0
        kinds.add((e["format"], e["kind"]))
    assert {("tflite", "fp32"), ("tflite", "fp16"), ("tflite", "dynamic_int8"), ("tflite", "int8"), ("onnx", "fp32"), ("onnx", "qdq_int8")} <= kinds


def interpreter(path):
    i = litert.Interpreter(model_path=str(path))
    i.allocate_tensors()
    return i


def run_tflite(i, x_nchw):
    d = i.get_input_details()[0]
    x = x_nchw.transpose(0, 2, 3, 1) if len(d["shape"]) == 4 and d["shape"][3] == x_nchw.shape[1] else x_nchw
    outs = []
    for k in range(len(x)):
        xi = x[k:k + 1]
        if d["dtype"] == np.int8:
            s, z = d["quantization"]
            xi = np.clip(np.round(xi / s) + z, -128, 127).astype(np.int8)
        i.set_tensor(d["index"], xi.astype(d["dtype"]))
        i.invoke()
        o = i.get_output_details()[0]
        y = i.get_tensor(o["index"])
        if o["dtype"] == np.int8:
            s, z = o["quantization"]
            y = (y.astype(np.float32) - z) * s
        outs.append(y.astype(np.float32))
    return np.concatenate(outs)


def output_grid(i):
    """The int8 step and zero point of a full-integer file's output (for float I/O: the tensor its
    final DEQUANTIZE reads)."""
    o = i.get_output_details()[0]
    if o["dtype"] == np.int8:
        return o["quantization"]
    tensors = {t["index"]: t for t in i.get_tensor_details()}
    ops = i._get_ops_details()
    for op in ops:
        if op["op_name"] == "DEQUANTIZE" and o["index"] in op["outputs"]:
            return tensors[op["inputs"][0]]["quantization"]
    # A float LOG_SOFTMAX at the end: the logits' grid, and no saturation in the output.
    last = next(op for op in ops if o["index"] in op["outputs"])
    assert last["op_name"] == "LOG_SOFTMAX", last
    feed = next(op for op in ops if last["inputs"][0] in op["outputs"])
    scale, _ = tensors[feed["inputs"][0]]["quantization"]
    return 2 * scale, None  # log_softmax moves by at most twice the largest logit error


@pytest.mark.parametrize("run", RUNS)
def test_tflite_outputs_match_edgeopts(run, request):
    """FP32 within 1e-4 relative; int8 within one output quantization step on >= 99 % of logits."""
    out, res = request.getfixturevalue(run)
    x = np.load(out / "samples" / "inputs.npy")
    for v, e in every_export(res):
        if e["format"] != "tflite":
            continue
        ref = np.load(out / "samples" / v["reference_outputs"])
        i = interpreter(out / e["path"])
        got = run_tflite(i, x).reshape(ref.shape)
        if e["kind"] == "fp32":
            np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max(), err_msg=e["path"])
        elif e["kind"] == "int8":
            step, zero = output_grid(i)
            # int8 outputs saturate at the ends of their grid (a log-softmax's at -16 in TFLite's
            # fixed range): the reference is compared where the grid can represent it.
            clipped = ref if zero is None else np.clip(ref, (-128 - zero) * step, (127 - zero) * step)
            within = np.mean(np.abs(got - clipped) <= step * 1.0001)
            assert within >= 0.99, (e["path"], within, step)
            assert np.mean(got.argmax(1) == ref.argmax(1)) >= 0.9, e["path"]
        else:  # fp16 weights, dynamic int8: the same classes
            assert np.mean(got.argmax(1) == ref.argmax(1)) >= 0.9, e["path"]


EDGETPU_UNSUPPORTED_TFLITE = {"Div": "DIV", "LogSoftmax": "LOG_SOFTMAX", "LeakyRelu": "LEAKY_RELU", "MatMul": "BATCH_MATMUL"}


@pytest.mark.parametrize("run", RUNS)
def test_full_integer_files_are_int8_end_to_end(run, request):
    out, res = request.getfixturevalue(run)
    unsupported = json.load(open(os.path.join(ROOT, "data", "estimator", "model.json")))["unsupported_ops"]["edgetpu"]
    ptq = next(v for v in res["variants"] if v["technique"] == "ptq_int8")
    files = {e["io"]: e for e in ptq["exports"] if e["format"] == "tflite"}
    i = interpreter(out / files["int8"]["path"])
    io = {i.get_input_details()[0]["index"], i.get_output_details()[0]["index"]}
    for t in i.get_tensor_details():
        assert t["dtype"] in (np.int8, np.int32), (t["name"], t["dtype"])  # int32: biases, shapes, perms
        if t["dtype"] == np.int8:  # per-tensor or per-channel (weights) parameters, never none
            assert len(t["quantization_parameters"]["scales"]) > 0 and min(t["quantization_parameters"]["scales"]) > 0, t["name"]
    assert {i.get_input_details()[0]["dtype"], i.get_output_details()[0]["dtype"]} == {np.int8}
    ops = {op["op_name"] for op in i._get_ops_details()}
    assert not ops & {"QUANTIZE", "DEQUANTIZE"}, ops
    banned = {EDGETPU_UNSUPPORTED_TFLITE[o] for o in unsupported if o in EDGETPU_UNSUPPORTED_TFLITE}
    # The third-party fixture ends in LogSoftmax, which the Edge TPU does not map (the Coral
    # package reports it, see below); the Fashion CNN has no op outside the Edge TPU's list.
    assert ops & banned == ({"LOG_SOFTMAX"} if run == "mnist_fixture_run" else set()), ops


def unzip(zip_path, dest):
    with zipfile.ZipFile(zip_path) as z:
        z.extractall(dest)
    return dest


def package(out, technique, device, dest, *extra):
    zip_path = dest / f"{technique}-{device}.zip"
    r = run_cli("package", out, "--technique", technique, "--device", device, "--out", zip_path, "--json", *extra)
    assert r.code == 0, r.stderr
    return zip_path, r.json()


@pytest.fixture(scope="module")
def runtime_venvs(tmp_path_factory):
    """Clean venvs (no system packages) with only one runtime each, from PyPI as a user would."""
    venvs = {}
    for name, reqs in (("litert", ["ai-edge-litert==2.3.0", "ml-dtypes==0.4.1", "numpy<2"]), ("ort", ["onnxruntime==1.20.1", "numpy<2"])):
        d = tmp_path_factory.mktemp("venv_" + name)
        subprocess.run([sys.executable, "-m", "venv", str(d)], check=True)
        py = str(d / "bin" / "python")
        r = subprocess.run([py, "-m", "pip", "install", "-q", "--disable-pip-version-check", *reqs], capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip(f"cannot install {reqs} from PyPI into a clean venv: {r.stderr[-300:]}")
        venvs[name] = py
    return venvs


@pytest.mark.parametrize("technique,device,venv", [("ptq_int8", "raspberry_pi_4", "litert"), ("fp32", "raspberry_pi_4", "litert"),
                                                    ("ptq_int8", "jetson_orin_nano", "ort"), ("hybrid_int4", "raspberry_pi_4", "ort")])
def test_package_selftest_and_example_pass_in_a_clean_venv(fashion_run, runtime_venvs, tmp_path, technique, device, venv):
    out, res = fashion_run
    zip_path, summary = package(out, technique, device, tmp_path)
    pkg = unzip(zip_path, tmp_path / "pkg")
    meta = json.load(open(pkg / "metadata.json"))
    assert meta["technique"] == technique and meta["device"]["id"] == device
    assert set(meta["files"]) <= {f["path"] for f in summary["files"]}
    for m in meta["models"]:
        assert os.path.exists(pkg / m["path"]), m
    assert meta["metrics"]["accuracy"]["kind"] == "measured"
    assert meta["device_estimate"]["kind"] == "estimated"
    py = runtime_venvs[venv]
    r = subprocess.run([py, str(pkg / "selftest.py"), "--runs", "20"], capture_output=True, text=True, cwd=pkg, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    report = json.load(open(pkg / "measurements.json"))
    assert report["passed"] and report["device"] == device
    ran = [m for m in report["models"] if "latency_ms" in m]
    assert ran and all(m["outputs"]["passed"] for m in ran)
    example = "example_tflite.py" if venv == "litert" else "example_onnx.py"
    if os.path.exists(pkg / example):
        r = subprocess.run([py, str(pkg / example), str(pkg / "samples" / "sample_0.png")], capture_output=True, text=True, cwd=pkg, timeout=120)
        assert r.returncode == 0, r.stderr
        top = r.stdout.split("\n")[0].split("\t")[0]
        label = meta["samples"]["labels"][0]
        assert top == (meta["class_names"][label] if meta["class_names"] else str(label)), r.stdout


# The C++ example's header: ONNX Runtime's C API header as the package README says to fetch it
# (a Go module on Go's module proxy that vendors it); the library: the onnxruntime wheel's.
ORT_HEADER_MODULE = "github.com/yalue/onnxruntime_go@v1.13.0"


@pytest.fixture(scope="module")
def ort_c_api(tmp_path_factory, runtime_venvs):
    go = shutil.which("go")
    if not go:
        pytest.skip("Go is not installed (scripts/install-deps.sh installs golang-go): it fetches ONNX Runtime's C API header for the C++ example")
    cache = os.path.join(os.environ.get("EDGEOPT_BUILD") or str(tmp_path_factory.mktemp("go")), "gomod")
    r = subprocess.run([go, "mod", "download", "-json", ORT_HEADER_MODULE], capture_output=True, text=True, timeout=600,
                       env=dict(os.environ, GOMODCACHE=cache, GOFLAGS="-modcacherw"), cwd=str(tmp_path_factory.mktemp("gomod_cwd")))
    assert r.returncode == 0, r.stdout + r.stderr
    include = json.loads(r.stdout)["Dir"]
    header = open(os.path.join(include, "onnxruntime_c_api.h")).read()
    api = int(re.search(r"#define ORT_API_VERSION (\d+)", header).group(1))
    r = subprocess.run([runtime_venvs["ort"], "-c", "import onnxruntime as o, os; print(os.path.join(os.path.dirname(o.__file__), 'capi')); print(o.__version__)"],
                       capture_output=True, text=True, check=True)
    lib_dir, version = r.stdout.split()
    # ONNX Runtime 1.N serves API versions up to N: the header must not ask for a newer one.
    assert api <= int(version.split(".")[1]), (api, version)
    return include, lib_dir


@pytest.mark.parametrize("technique,device", [("ptq_int8", "raspberry_pi_4"), ("fp32", "jetson_orin_nano")])
def test_cpp_example_builds_from_the_readme_and_classifies_like_the_python_one(fashion_run, runtime_venvs, ort_c_api, tmp_path, technique, device):
    if not shutil.which("g++"):
        pytest.skip("no C++ compiler")
    out, _ = fashion_run
    zip_path, _ = package(out, technique, device, tmp_path)
    pkg = unzip(zip_path, tmp_path / "pkg")
    meta = json.load(open(pkg / "metadata.json"))
    readme = open(pkg / "README.md").read()
    block = readme[readme.index("## C++ example"):]
    block = block[block.index("```sh") + 5:]
    block = block[:block.index("```")]
    # The README's build lines, as a user runs them, with the header and library found above.
    build = [line for line in block.splitlines() if line.startswith(("mkdir", "g++"))]
    assert len(build) == 2, block
    include, lib_dir = ort_c_api
    r = subprocess.run(["bash", "-ec", "\n".join(build)], cwd=pkg, capture_output=True, text=True, timeout=600,
                       env=dict(os.environ, ORT_INCLUDE=include, ORT_LIB=lib_dir))
    assert r.returncode == 0, r.stdout + r.stderr
    names = meta["class_names"]
    for k, image in enumerate(meta["samples"]["images"]):
        cpp = subprocess.run([str(pkg / "example_onnx"), str(pkg / image)], capture_output=True, text=True, cwd=tmp_path, timeout=120)
        assert cpp.returncode == 0, cpp.stderr
        py = subprocess.run([runtime_venvs["ort"], str(pkg / "example_onnx.py"), str(pkg / image)], capture_output=True, text=True, cwd=pkg, timeout=120)
        assert py.returncode == 0, py.stderr
        cpp_rows = [line.split("\t") for line in cpp.stdout.splitlines()]
        py_rows = [line.split("\t") for line in py.stdout.splitlines()]
        assert [c for c, _ in cpp_rows] == [c for c, _ in py_rows], (cpp.stdout, py.stdout)  # the same five classes, in order
        for (_, a), (_, b) in zip(cpp_rows, py_rows):
            assert abs(float(a) - float(b)) <= 1e-3 * max(1.0, abs(float(b))), (cpp.stdout, py.stdout)
        assert cpp_rows[0][0] == names[meta["samples"]["labels"][k]]  # and the right class for these samples
    r = subprocess.run([str(pkg / "example_onnx"), str(pkg / "README.md")], capture_output=True, text=True, cwd=pkg)
    assert r.returncode == 1 and "cannot decode the image" in r.stderr, r.stderr


def test_tampered_or_truncated_package_fails_its_checksum_check(fashion_run, runtime_venvs, tmp_path):
    out, _ = fashion_run
    zip_path, _ = package(out, "ptq_int8", "raspberry_pi_4", tmp_path)
    pkg = unzip(zip_path, tmp_path / "pkg")
    model = next(p for p in (pkg / "model").iterdir() if p.suffix == ".tflite")
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    r = subprocess.run([runtime_venvs["litert"], str(pkg / "selftest.py")], capture_output=True, text=True, cwd=pkg)
    assert r.returncode == 1
    assert "does not match" in r.stderr and model.name in r.stderr, r.stderr
    model.write_bytes(bytes(data[: len(data) // 3]))
    (pkg / "README.md").unlink()
    r = subprocess.run([runtime_venvs["litert"], str(pkg / "selftest.py")], capture_output=True, text=True, cwd=pkg)
    assert r.returncode == 1 and "README.md: missing" in r.stderr, r.stderr


def test_coral_package_names_the_compiler_command_and_what_it_will_not_map(mnist_fixture_run, tmp_path):
    out, _ = mnist_fixture_run
    zip_path, _ = package(out, "ptq_int8", "coral_usb_pi4", tmp_path)
    pkg = unzip(zip_path, tmp_path / "pkg")
    meta = json.load(open(pkg / "metadata.json"))
    tpu = meta["edgetpu"]
    assert tpu["compiler_command"] == "edgetpu_compiler -s -o model model/ptq_int8.int8_io.tflite"
    assert "x86-64" in tpu["compile_on"]
    assert [u["op"] for u in tpu["unmapped_ops"]] == ["LogSoftmax"]  # the fixture's last op
    readme = open(pkg / "README.md").read()
    assert tpu["compiler_command"] in readme and "x86-64" in readme and "LogSoftmax" in readme


def test_package_refuses_what_it_cannot_do(fashion_run, tmp_path):
    out, _ = fashion_run
    r = run_cli("package", out, "--technique", "nope", "--device", "raspberry_pi_4", "--out", tmp_path / "x.zip")
    assert r.code == 1 and "no technique 'nope'" in r.stderr
    r = run_cli("package", out, "--technique", "fp32", "--device", "toaster", "--out", tmp_path / "x.zip")
    assert r.code == 1 and "unknown device" in r.stderr
    r = run_cli("package", tmp_path, "--technique", "fp32", "--device", "raspberry_pi_4")
    assert r.code == 1 and "results" in r.stderr
    assert not list(tmp_path.glob("*.zip*"))


def catalogue_device(device):
    with open(os.path.join(ROOT, "data", "devices", device + ".json")) as f:
        return json.load(f)


@pytest.mark.parametrize("technique,device", [("fp32", "jetson_nano"), ("ptq_int8", "jetson_nano"),
                                              ("fp32", "jetson_orin_nano"), ("ptq_int8", "jetson_orin_nano")])
def test_jetson_package_pins_trtexec_to_the_catalogues_jetpack_releases(fashion_run, tmp_path, technique, device):
    import onnx
    out, _ = fashion_run
    zip_path, _ = package(out, technique, device, tmp_path)
    pkg = unzip(zip_path, tmp_path / "pkg")
    meta = json.load(open(pkg / "metadata.json"))
    readme = open(pkg / "README.md").read()
    doc = catalogue_device(device)
    trt_precisions = next(r for r in doc["runtimes"] if r["id"] == "tensorrt")["precisions"]
    onnx_models = [m for m in meta["models"] if m["path"].endswith(".onnx")]
    assert len(onnx_models) == 1, meta["models"]
    model_path = onnx_models[0]["path"]
    # The opset the package states is the file's own.
    opset = next(o.version for o in onnx.load(str(pkg / model_path)).opset_import if o.domain in ("", "ai.onnx"))
    assert onnx_models[0]["onnx_opset"] == opset and meta["format_versions"]["onnx_opset"] == opset
    releases = meta["tensorrt"]["releases"]
    assert [(r["jetpack"], r["tensorrt"], r["cuda"], r["onnx_opset_max"]) for r in releases] == \
           [(j["version"], j["tensorrt"], j["cuda"], j["onnx_opset_max"]["value"]) for j in doc["jetpack"]]
    for r in releases:
        assert f"### JetPack {r['jetpack']} (TensorRT {r['tensorrt']}, CUDA {r['cuda']}" in readme
        assert r["sources"] and all(url.startswith("https://") and url in readme for url in r["sources"].values())
        f = r["files"][0]
        assert f["model"] == model_path and f["opset"] == opset and opset <= r["onnx_opset_max"]
        assert f"ONNX opset {opset}; TensorRT {r['tensorrt']}'s ONNX parser reads up to opset {r['onnx_opset_max']}" in readme
        int8_file = technique == "ptq_int8"
        if int8_file and "int8" not in trt_precisions:
            # The Jetson Nano's TensorRT has no int8 (Maxwell): no INT8 command, and the README says why.
            assert f["command"] is None and "has no int8" in f["why_not"]
            assert "--int8" not in readme and "No trtexec command: TensorRT on" in readme
            continue
        expected = ["--int8", "--fp16"] if int8_file else ["--fp16"]
        assert "fp16" in trt_precisions and f["flags"] == expected
        engine = f"{technique}.jetpack{r['jetpack']}.trt{r['tensorrt']}.engine"
        command = f"/usr/src/tensorrt/bin/trtexec --onnx={model_path} {' '.join(expected)} --saveEngine={engine}"
        assert f["command"] == command and command + "\n" in readme
        if int8_file:
            assert "Explicit quantization" in readme
