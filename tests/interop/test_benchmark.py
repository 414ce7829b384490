"""`edgeopt benchmark`: host latency of model files, side by side, from real runs."""
import os

from conftest import ROOT, run_cli

MODEL = os.path.join(ROOT, "tests", "data", "models", "fashion_cnn.onnx")


def test_benchmark_times_each_model_at_one_and_all_threads(tmp_path, shared_dir):
    keras = os.path.join(shared_dir, "fixtures", "models", "keras2.3_mnist_cnn.h5")
    r = run_cli("benchmark", MODEL, keras, "--runs", "5", "--json")
    assert r.code == 0, r.stderr
    res = r.json()
    assert res["batch"] == 1
    assert [m["model"] for m in res["models"]] == [MODEL, keras]
    for m in res["models"]:
        one, every = m["host_latency_ms_1thread"], m["host_latency_ms"]
        assert 0 < one["p50"] <= one["p95"]
        assert 0 < every["p50"] <= every["p95"]
        assert every["threads"] >= 1
    text = run_cli("benchmark", MODEL, MODEL, "--runs", "5")
    assert text.code == 0, text.stderr
    assert "of the first" in text.stdout


def test_benchmark_names_the_file_it_cannot_read(tmp_path):
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"\x08\x07garbage")
    r = run_cli("benchmark", MODEL, bad)
    assert r.code == 1
    assert "broken.onnx" in r.stderr
    missing = run_cli("benchmark", tmp_path / "nope.onnx")
    assert missing.code == 1
    assert "nope.onnx" in missing.stderr
