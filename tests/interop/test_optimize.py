"""`edgeopt optimize` end to end on a real model and the real Fashion-MNIST test split (shortened
with --limit): every figure comes from files on disk and real runs."""
import json
import os

from conftest import ROOT, run_cli

MODEL = os.path.join(ROOT, "tests", "data", "models", "fashion_cnn.onnx")


def test_optimize_writes_measured_variants(fashion_dir, tmp_path):
    out = tmp_path / "run"
    r = run_cli("optimize", MODEL, "--dataset", "fashion-mnist", "--no-download", "--limit", "1000", "--out", out,
                "--devices", "raspberry_pi_4,coral_dev_board", "--device", "raspberry_pi_4", "--json")
    assert r.code == 0, r.stderr
    res = r.json()
    assert json.load(open(out / "results.json")) == res
    base = res["baseline"]
    assert base["samples"] == 1000
    assert base["size_bytes"] == os.path.getsize(base["artifact"])
    (int4,) = [v for v in res["variants"] if v["technique"] == "ptq_int4"]
    assert int4["status"] == "completed"
    assert int4["size_bytes"] == os.path.getsize(int4["artifact"])
    assert int4["size_bytes"] <= 0.16 * base["size_bytes"]
    assert int4["accuracy_drop_pp"] <= 1.0
    assert {e["device"] for e in int4["device_estimates"]} == {"raspberry_pi_4", "coral_dev_board"}
    (pruned,) = [v for v in res["variants"] if v["technique"] == "prune_unstructured"]
    assert pruned["status"] == "completed", pruned["error"]
    assert pruned["nonzero_params"] <= 0.30 * pruned["params"]  # 75 % of the Conv/Gemm weights are zero
    assert pruned["size_bytes"] == os.path.getsize(pruned["artifact"])
    assert pruned["size_bytes"] <= 0.35 * base["size_bytes"]
    assert res["recommendation"]["technique"] in ("fp32", "ptq_int4", "prune_unstructured")
    assert res["recommendation"]["reasoning"]


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


def test_optimize_unknown_technique_lists_valid_ones(tmp_path):
    r = run_cli("optimize", MODEL, "--dataset", "fashion-mnist", "--techniques", "magic", "--out", tmp_path / "o")
    assert r.code == 1
    assert "ptq_int4" in r.stderr
