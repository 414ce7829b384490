"""Shared helpers: the edgeopt binary under test, the shared fixtures, and a CLI runner."""
import json
import os
import subprocess
import tempfile

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SHARED = os.path.abspath(os.path.join(ROOT, "..", "shared"))
FASHION_DIR = "/usr/share/datasets/fashion-mnist"


# Estimates in tests rest on the shipped calibration alone: a developer's own on-board measurements
# (edgeopt calibrate --measured, ~/.local/share/edgeopt/calibration) stay out of them.
os.environ.setdefault("EDGEOPT_CALIBRATION_DIR", os.path.join(tempfile.gettempdir(), f"edgeopt-test-no-local-calibration-{os.getpid()}"))


def edgeopt_bin():
    return os.environ.get("EDGEOPT_BIN", os.path.join(ROOT, "build", "edgeopt"))


class CliResult:
    def __init__(self, proc):
        self.code = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr

    def json(self):
        return json.loads(self.stdout)


def run_cli(*args, timeout=600):
    proc = subprocess.run([edgeopt_bin(), *map(str, args)], capture_output=True, text=True, timeout=timeout)
    return CliResult(proc)


def optimize_run(model, dataset, data_dir, out, normalize, techniques, devices):
    """`edgeopt optimize` on the test split with the given techniques and devices (2 jobs, 2,000
    training images); its results.json as a dict."""
    args = ["optimize", model, "--dataset", dataset, "--no-download", "--out", out, "--techniques", techniques,
            "--max-train-images", "2000", "--jobs", "2", "--devices", devices, "--normalize", normalize, "--json"]
    if data_dir:
        args[4:4] = ["--data-dir", data_dir]
    r = run_cli(*args, timeout=1800)
    assert r.code == 0, r.stderr
    return r.json()


@pytest.fixture
def shared_dir():
    if not os.path.isdir(SHARED):
        pytest.skip("../shared is not present")
    return SHARED


@pytest.fixture
def fashion_dir():
    if not os.path.exists(os.path.join(FASHION_DIR, "t10k-images-idx3-ubyte.gz")):
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    return FASHION_DIR
