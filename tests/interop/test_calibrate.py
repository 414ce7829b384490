"""`edgeopt calibrate --measured`: a board's measurements.json (written by a package's selftest.py)
folded into a local calibration kept apart from the shipped one. A real package's self-test runs
here (LiteRT and ONNX Runtime on this host); its latencies are then set to a known multiple of the
shipped estimate, as a board slower or faster than the estimate would measure."""
import json
import math
import os
import subprocess
import sys
import zipfile

import pytest

from conftest import FASHION_DIR, ROOT, run_cli
from server_util import Server

pytest.importorskip("ai_edge_litert.interpreter")
pytest.importorskip("onnxruntime")

MODEL = os.path.join(ROOT, "tests", "data", "models", "fashion_cnn.onnx")
OTHER_DEVICES = ["raspberry_pi_5", "jetson_orin_nano", "coral_usb_pi4", "raspberry_pi_3b"]


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    """A real measurements.json of a ptq_int8 package for raspberry_pi_4, and the variant's .eom."""
    if not os.path.exists(os.path.join(FASHION_DIR, "t10k-images-idx3-ubyte.gz")):
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    work = tmp_path_factory.mktemp("calibrate")
    r = run_cli("optimize", MODEL, "--dataset", "fashion-mnist", "--no-download", "--out", work / "run", "--techniques", "ptq_int8",
                "--limit", "300", "--max-train-images", "600", "--devices", "raspberry_pi_4", "--jobs", "1", "--json", timeout=900)
    assert r.code == 0, r.stderr
    r = run_cli("package", work / "run", "--technique", "ptq_int8", "--device", "raspberry_pi_4", "--out", work / "p.zip")
    assert r.code == 0, r.stderr
    with zipfile.ZipFile(work / "p.zip") as z:
        z.extractall(work / "pkg")
    r = subprocess.run([sys.executable, str(work / "pkg" / "selftest.py"), "--runs", "10"], capture_output=True, text=True, cwd=work / "pkg", timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    report = json.load(open(work / "pkg" / "measurements.json"))
    assert report["passed"] and report["layers"]["layers"]
    ran = [m for m in report["models"] if "latency_ms" in m]
    assert {m["estimate"]["runtime"] for m in ran} == {"tflite", "onnxruntime"}, ran
    assert all(m["sha256"] == report["package_files"][m["path"]] for m in ran)
    return report, str(work / "run" / "ptq_int8.eom")


def synthetic(report, factor):
    """The report with every measured p50 set to `factor` x the package's (shipped) estimate."""
    out = json.loads(json.dumps(report))
    for m in out["models"]:
        if "latency_ms" in m and m.get("estimate"):
            m["latency_ms"]["p50"] = factor * m["estimate"]["latency_ms"]
            m["threads"] = m["estimate"]["threads"]  # as many threads as the estimate assumed
    return out


def write(path, doc):
    path.write_text(json.dumps(doc))
    return path


def estimate(eom, device, cal_dir, runtime="tflite"):
    r = run_cli("estimate", eom, "--device", device, "--runtime", runtime, "--precision", "int8", "--calibration-dir", cal_dir, "--json")
    assert r.code == 0, r.stderr
    return r.json()


def test_slower_measurements_raise_that_devices_estimates_and_leave_others_alone(measured, tmp_path):
    report, eom = measured
    cal = tmp_path / "cal"
    before = {d: estimate(eom, d, cal) for d in ["raspberry_pi_4", *OTHER_DEVICES]}
    before_ort = estimate(eom, "raspberry_pi_4", cal, "onnxruntime")
    assert all(e["calibration"] == "shipped" for e in before.values())

    slow = write(tmp_path / "slow.json", synthetic(report, 3.0))
    r = run_cli("calibrate", "--measured", slow, "--calibration-dir", cal, "--json")
    assert r.code == 0, r.stderr
    out = r.json()
    assert out["device"] == "raspberry_pi_4" and out["added"] == 2
    for p in out["points"]:
        assert p["ratio"] == pytest.approx(3.0, rel=1e-6)  # the file's estimate is the shipped one, re-derived from the layers
    assert (cal / "local_calibration.json").exists() and not (tmp_path / "data").exists()

    after = {d: estimate(eom, d, cal) for d in ["raspberry_pi_4", *OTHER_DEVICES]}
    pi4 = after["raspberry_pi_4"]
    assert pi4["calibration"] == "local (1 measurement)"
    factor = pi4["latency_ms"] / before["raspberry_pi_4"]["latency_ms"]
    # Measured 3x slower than estimated: estimates go up, most of the way (the prior keeps some of the fit).
    assert 2.0 < factor < 3.0, factor
    assert pi4["local_calibration_factor"] == pytest.approx(factor, rel=1e-9)
    assert pi4["latency_ms_low"] > before["raspberry_pi_4"]["latency_ms_low"] and pi4["latency_ms_high"] > before["raspberry_pi_4"]["latency_ms_high"]
    assert estimate(eom, "raspberry_pi_4", cal, "onnxruntime")["latency_ms"] > before_ort["latency_ms"]
    for d in OTHER_DEVICES:
        assert after[d]["latency_ms"] == before[d]["latency_ms"] and after[d]["calibration"] == "shipped", d

    # Folding the same file again changes nothing; faster measurements pull the factor back down.
    r = run_cli("calibrate", "--measured", slow, "--calibration-dir", cal, "--json")
    assert r.code == 0 and r.json()["added"] == 0 and r.json()["already_there"] == 2
    fast = synthetic(report, 0.5)
    fast["measured_at"] = "2027-01-01T00:00:00Z"
    r = run_cli("calibrate", "--measured", write(tmp_path / "fast.json", fast), "--calibration-dir", cal, "--json")
    assert r.code == 0, r.stderr
    again = estimate(eom, "raspberry_pi_4", cal)
    assert again["calibration"] == "local (2 measurements)"
    assert before["raspberry_pi_4"]["latency_ms"] < again["latency_ms"] < pi4["latency_ms"]
    prior_sd = json.load(open(cal / "local_calibration.json"))["devices"]["raspberry_pi_4"]["tflite"]["prior_log_sd"]
    expected = math.exp((math.log(3.0) + math.log(0.5)) / (2 + (0.1 / prior_sd) ** 2))  # docs/packages.md's formula
    assert again["local_calibration_factor"] == pytest.approx(expected, rel=1e-6)

    devices = {d["id"]: d for d in json.loads(run_cli("devices", "--json", "--calibration-dir", cal).stdout)["devices"]}
    assert devices["raspberry_pi_4"]["calibration"]["calibration"] == "local (4 measurements)"  # two runtimes, two files each
    assert devices["raspberry_pi_4"]["calibration"]["rows"] > 0  # the shipped fit's own figures stay beside it
    assert devices["raspberry_pi_5"]["calibration"]["calibration"] == "shipped"
    text = run_cli("devices", "--calibration-dir", cal).stdout
    assert "calibration local (4 measurements)" in text and "calibration shipped" in text

    # The API shows it too (the server's user's folder, $EDGEOPT_CALIBRATION_DIR).
    s = Server(tmp_path, env={"EDGEOPT_CALIBRATION_DIR": str(cal)}, workers=0)
    try:
        listed = {d["id"]: d for d in s.get("/api/devices").json()["devices"]}
        assert listed["raspberry_pi_4"]["calibration"] == "local (4 measurements)"
        assert listed["raspberry_pi_4"]["local_calibration"]["local"]["tflite"]["measurements"] == 2
        assert listed["jetson_orin_nano"]["calibration"] == "shipped"
    finally:
        s.stop()


def test_device_option_folds_into_the_board_named(measured, tmp_path):
    report, eom = measured
    cal = tmp_path / "cal"
    before = estimate(eom, "raspberry_pi_5", cal)
    r = run_cli("calibrate", "--measured", write(tmp_path / "m.json", synthetic(report, 2.0)), "--device", "raspberry_pi_5", "--calibration-dir", cal, "--json")
    assert r.code == 0, r.stderr
    assert r.json()["device"] == "raspberry_pi_5"
    assert estimate(eom, "raspberry_pi_5", cal)["latency_ms"] > before["latency_ms"]
    assert estimate(eom, "raspberry_pi_4", cal)["calibration"] == "shipped"


def test_malformed_measurements_are_refused_clearly(measured, tmp_path):
    report, _ = measured
    cal = tmp_path / "cal"

    def refused(doc_or_text, *words, device=None):
        path = tmp_path / "bad.json"
        path.write_text(doc_or_text if isinstance(doc_or_text, str) else json.dumps(doc_or_text))
        args = ["calibrate", "--measured", path, "--calibration-dir", cal] + (["--device", device] if device else [])
        r = run_cli(*args)
        assert r.code == 1, (r.code, r.stdout, r.stderr)
        for w in words:
            assert w.lower() in r.stderr.lower(), r.stderr
        assert not (cal / "local_calibration.json").exists()

    refused("{not json", "not valid json")
    refused("[1, 2]", "not an edgeopt measurements file")
    refused({"kind": "something-else"}, "not an edgeopt measurements file")
    refused(dict(report, device="toaster"), "unknown device 'toaster'", "raspberry_pi_4")
    refused(report, "unknown device 'toaster'", "--device", device="toaster")
    doc = synthetic(report, 1.0)
    doc["models"][0]["latency_ms"]["p50"] = -2.5
    refused(doc, "latency p50 -2.5", "positive")
    text = json.dumps(synthetic(report, 1.0)).replace('"p50": ', '"p50": NaN, "was": ', 1)
    refused(text, "nan")
    doc = synthetic(report, 1.0)
    doc["models"][0]["latency_ms"]["p50"] = "fast"
    refused(doc, "positive number")
    doc = synthetic(report, 1.0)
    doc["models"][0]["sha256"] = "0" * 64
    refused(doc, "sha-256", "not the package's")
    refused(dict(report, passed=False), "self-test that failed")
    doc = dict(report)
    del doc["layers"]
    refused(doc, "'layers' is missing")
    refused(dict(report, version=7), "version 7")
    doc = synthetic(report, 1.0)
    for m in doc["models"]:
        m.pop("latency_ms", None)
    refused(doc, "no measurement the estimator can use")
    r = run_cli("calibrate", "--measured", tmp_path / "absent.json", "--calibration-dir", cal)
    assert r.code == 1 and "cannot open" in r.stderr
