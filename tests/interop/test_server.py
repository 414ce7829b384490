"""Black-box tests of `edgeopt serve`: the real server on a free loopback port, driven over HTTP
through the whole flow with a small real model and the real Fashion-MNIST data, on SQLite and on
a real PostgreSQL server."""
import io
import json
import os
import pickle
import subprocess
import time
import zipfile

import pytest
import requests

from conftest import ROOT
from server_util import MODEL, Server, create_experiment, sse_events, upload_model, wait_for

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
def server(request, tmp_path, fashion_dir):
    s = Server(tmp_path, backend=request.param, workers=2)
    yield s
    s.stop()


def assert_error(r, status, *words):
    assert r.status_code == status, f"{r.status_code} {r.text}"
    body = r.json()
    assert set(body) == {"error"} and {"code", "message", "details"} <= set(body["error"]), body
    for w in words:
        assert w.lower() in (body["error"]["message"] + " " + json.dumps(body["error"]["details"])).lower(), body


def test_whole_flow(server):
    e = create_experiment(server, techniques=["ptq_int8", "prune_unstructured"])
    assert e["status"] == "created" and e["id"]
    up = upload_model(server, e["id"])
    assert up.status_code == 200, up.text
    summary = up.json()["model"]
    assert summary["format"] == "onnx" and summary["params"] > 0 and summary["macs"] > 0
    assert summary["inputs"][0]["shape"][-2:] == [28, 28]

    r = server.post(f"/api/optimize/{e['id']}/start")
    assert r.status_code == 202, r.text
    events = sse_events(server, e["id"])
    ids = [i for i, _, _ in events]
    assert ids == list(range(1, len(ids) + 1)), ids  # every event once, in order, no gaps
    kinds = {k for _, k, _ in events}
    assert {"status", "baseline_completed", "technique_started", "technique_progress", "technique_completed"} <= kinds, kinds
    assert events[-1][1] == "status" and events[-1][2]["status"] == "completed", events[-1]
    done = [d for _, k, d in events if k == "technique_completed"]
    assert {d["technique"] for d in done} == {"ptq_int8", "prune_unstructured"}
    assert all(d["status"] == "completed" and d["size_bytes"] > 0 for d in done), done

    # Resume: from any event id, exactly the events after it.
    k = len(events) // 2
    assert sse_events(server, e["id"], last_event_id=ids[k - 1]) == events[k:]

    exp = server.get(f"/api/experiments/{e['id']}").json()
    assert exp["status"] == "completed" and exp["progress"] == 1.0
    assert {t["technique"]: t["status"] for t in exp["techniques"]} == {"fp32": "completed", "ptq_int8": "completed",
                                                                          "prune_unstructured": "completed", "final": "completed"}
    res = server.get(f"/api/results/{e['id']}/results").json()
    assert res["complete"] and res["status"] == "completed"
    rows = {row["technique_name"]: row for row in res["results"]}
    assert set(rows) == {"fp32", "ptq_int8", "prune_unstructured"}
    for row in rows.values():
        assert row["status"] == "completed"
        assert row["test_samples"] == 1000
        assert 0 < row["optimized_accuracy"] <= 100
        assert row["host_latency_ms"]["p50"] > 0
        assert row["target_device_estimate"]["device"] == "raspberry_pi_4" and row["target_device_estimate"]["is_estimate"]
    assert rows["ptq_int8"]["optimized_size_mb"] < 0.3 * rows["fp32"]["optimized_size_mb"]
    assert rows["ptq_int8"]["original_accuracy"] == rows["fp32"]["optimized_accuracy"]

    rec = server.get(f"/api/results/{e['id']}/recommendations").json()
    assert rec["recommendations"][0]["recommended"] and rec["recommendations"][0]["reasoning"]
    assert {x["technique_name"] for x in rec["recommendations"]} <= {"fp32", "ptq_int8", "prune_unstructured"}
    what_if = server.post(f"/api/results/{e['id']}/recommendations", json={"optimization_goal": "minimize_size"}).json()
    assert what_if["recommendation"]["goal"] == "size" and what_if["what_if"] == {"optimization_goal": "minimize_size"}

    perf = server.get(f"/api/performance/{e['id']}/comparison").json()
    assert {c["technique"] for c in perf["comparison"]} == {"fp32", "ptq_int8", "prune_unstructured"}
    m = server.get(f"/api/performance/{e['id']}/metrics")
    assert m.status_code == 200
    base_est = server.post("/api/estimate", json={"experiment_id": e["id"], "device": "jetson_nano"})  # technique defaults to fp32
    assert base_est.status_code == 200 and base_est.json()["technique"] == "fp32", base_est.text
    est = server.post("/api/estimate", json={"experiment_id": e["id"], "technique": "ptq_int8", "device": "jetson_nano"}).json()
    assert est["is_estimate"] and est["precision"] == "int8" and est["latency_ms_low"] <= est["latency_ms"] <= est["latency_ms_high"]
    assert est["precision_source"] == "results"
    assert base_est.json()["precision"] == "fp32" and base_est.json()["precision_source"] == "file"

    devices = {d["id"]: d for d in server.get("/api/devices").json()["devices"]}
    assert devices["raspberry_pi_4"]["estimator_error"]["lofo"]["rows"] > 0
    assert server.get("/api/devices/raspberry_pi_4").json()["id"] == "raspberry_pi_4"
    assert {t["id"] for t in server.get("/api/techniques").json()["techniques"]} >= {"ptq_int8", "distillation"}

    check_download(server, e["id"], rows["ptq_int8"])

    # Delete removes it and its files.
    r = requests.delete(server.url(f"/api/experiments/{e['id']}"), timeout=30)
    assert r.status_code == 200
    assert_error(server.get(f"/api/experiments/{e['id']}"), 404)
    assert_error(server.get(f"/api/results/{e['id']}/download/ptq_int8"), 404)
    if server.database == "":
        assert not os.path.exists(os.path.join(server.store, "blobs", e["id"]))


def check_download(server, eid, row):
    """The predecessor's download route (no query) gives the deployment package `edgeopt package`
    writes for the experiment's target device, built from the run's stored artifacts; it passes its
    own self-test in the venv's real runtimes. A bad device or format is a 422 that says what to send."""
    import hashlib
    import sys
    z = server.get(f"/api/results/{eid}/download/ptq_int8")
    assert z.status_code == 200 and z.headers["Content-Type"] == "application/zip", z.text[:500]
    pkg = server.tmp_path / f"pkg-{eid}"
    with zipfile.ZipFile(io.BytesIO(z.content)) as zf:
        names = set(zf.namelist())
        zf.extractall(pkg)
    assert {"metadata.json", "README.md", "SHA256SUMS", "selftest.py", "edgeopt_image.py", "example_onnx.py", "example_tflite.py",
            "cpp/example_onnx.cpp", "cpp/preprocessing.txt", "model/ptq_int8.eom", "model/ptq_int8.onnx", "model/ptq_int8.int8.tflite",
            "samples/inputs.npy", "samples/reference_outputs.npy", "samples/sample_0.png"} <= names, names
    meta = json.loads((pkg / "metadata.json").read_text())
    assert meta["technique"] == "ptq_int8" and meta["device"]["id"] == "raspberry_pi_4"  # the experiment's target device
    eom = (pkg / "model" / "ptq_int8.eom").read_bytes()
    assert len(eom) == row["size_bytes"] == meta["metrics"]["size_bytes"]["value"]
    assert meta["files"]["model/ptq_int8.eom"]["sha256"] == hashlib.sha256(eom).hexdigest()
    assert meta["device_estimate"]["kind"] == "estimated"
    runtimes = {m["path"]: m["runtime_accuracy"] for m in meta["models"] if m["format"] != "eom"}
    assert all("accuracy" in a for a in runtimes.values()), runtimes  # the final job scored every stored export
    r = subprocess.run([sys.executable, str(pkg / "selftest.py"), "--runs", "20"], capture_output=True, text=True, cwd=pkg, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    report = json.loads((pkg / "measurements.json").read_text())
    assert report["passed"] and report["device"] == "raspberry_pi_4"
    assert {m["path"] for m in report["models"] if m.get("outputs", {}).get("passed")} == set(runtimes)

    # Another device and format: the Jetson's ONNX file only.
    z = server.get(f"/api/results/{eid}/download/ptq_int8", params={"device": "jetson_orin_nano", "format": "onnx"})
    assert z.status_code == 200, z.text
    with zipfile.ZipFile(io.BytesIO(z.content)) as zf:
        meta = json.loads(zf.read("metadata.json"))
    assert meta["device"]["id"] == "jetson_orin_nano" and [m["path"] for m in meta["models"]] == ["model/ptq_int8.onnx"]
    assert "jetson_orin_nano" in z.headers.get("Content-Disposition", "")
    assert_error(server.get(f"/api/results/{eid}/download/ptq_int8", params={"device": "toaster"}), 422, "unknown device", "raspberry_pi_4")
    assert_error(server.get(f"/api/results/{eid}/download/ptq_int8", params={"format": "gguf"}), 422, "unknown package format", "tflite")
    assert_error(server.get(f"/api/results/{eid}/download/nope"), 404, "no variant")

    if server.database == "":
        # A run stored before every export and sample was kept (only .eom and .onnx) still downloads,
        # with what it has and a note; selftest.py then checks checksums and latency.
        art = os.path.join(server.store, "blobs", eid, "artifacts")
        for root, _, files in os.walk(art):
            for f in files:
                if not f.endswith((".eom", ".onnx", "results.json")):
                    os.remove(os.path.join(root, f))
        z = server.get(f"/api/results/{eid}/download/ptq_int8")
        assert z.status_code == 200, z.text
        old = server.tmp_path / f"pkg-old-{eid}"
        with zipfile.ZipFile(io.BytesIO(z.content)) as zf:
            zf.extractall(old)
        meta = json.loads((old / "metadata.json").read_text())
        assert sorted(m["path"] for m in meta["models"]) == ["model/ptq_int8.eom", "model/ptq_int8.onnx"]
        assert meta["samples"] is None and any("not stored" in n for n in meta["notes"]), meta["notes"]
        r = subprocess.run([sys.executable, str(old / "selftest.py"), "--runs", "5"], capture_output=True, text=True, cwd=old, timeout=600)
        assert r.returncode == 0, r.stdout + r.stderr
        os.remove(os.path.join(art, "ptq_int8.eom"))
        assert_error(server.get(f"/api/results/{eid}/download/ptq_int8"), 410, "no longer stored", "run the experiment again")


def test_list_paging_filters_patch(server):
    ids = [create_experiment(server, name=f"run {i}", target_device="jetson_nano" if i % 2 else "raspberry_pi_4")["id"] for i in range(5)]
    page = server.get("/api/experiments", params={"limit": 2, "offset": 0}).json()
    assert page["total"] == 5 and len(page["items"]) == 2 and page["items"][0]["id"] == ids[-1]
    assert server.get("/api/experiments", params={"limit": 2, "offset": 4}).json()["items"][0]["id"] == ids[0]
    assert server.get("/api/experiments", params={"device": "jetson_nano"}).json()["total"] == 2
    assert server.get("/api/experiments", params={"dataset": "fashion_mnist"}).json()["total"] == 5  # any spelling of a preset
    assert server.get("/api/experiments", params={"dataset": "Fashion-MNIST"}).json()["total"] == 5
    assert server.get("/api/experiments/search", params={"q": "RUN 3"}).json()["total"] == 1
    recent = server.get("/api/experiments/recent").json()
    assert isinstance(recent, list) and recent[0]["id"] == ids[-1]
    r = requests.patch(server.url(f"/api/experiments/{ids[0]}"), json={"name": "renamed", "max_size_mb": 0.5}, timeout=30)
    assert r.status_code == 200 and r.json()["name"] == "renamed" and r.json()["max_size_mb"] == 0.5
    assert_error(requests.patch(server.url(f"/api/experiments/{ids[0]}"), json={"max_size_mb": -1}, timeout=30), 422)


def test_a_zoo_model_instead_of_an_upload(server):
    zoo = server.get("/api/zoo").json()
    ready = {m["name"]: m for m in zoo["models"]}
    assert "mnist-small" in ready and ready["mnist-small"]["accuracy"] > 0.9  # ready at once, no training
    assert any(r["name"] == "mnist-small" and r["ready"] for r in zoo["recipes"])
    e = create_experiment(server, dataset_name="fashion_mnist")
    r = server.post(f"/api/upload/{e['id']}/model", data={"model_source": "pretrained", "pretrained_model_name": "mnist-small"})
    assert r.status_code == 200, r.text
    model = r.json()["model"]
    assert model["source"] == "pretrained" and model["format"] == "eom" and model["params"] == ready["mnist-small"]["params"]
    assert server.get(f"/api/experiments/{e['id']}").json()["dataset_name"] == "mnist"  # the model's own dataset


def test_a_tflite_upload_declared_as_tensorflow(tmp_path, fashion_dir):
    """A .tflite file (EdgeOpt's own full-precision export) is imported at once; a declared framework
    of another spelling is a note, never a server error."""
    from conftest import edgeopt_bin
    tflite = tmp_path / "fashion_cnn.tflite"
    r = subprocess.run([edgeopt_bin(), "export", MODEL, "--out", str(tflite), "--format", "tflite", "--kind", "fp32"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    s = Server(tmp_path, workers=0)
    try:
        for framework in ("tensorflow", "pytorch"):
            e = create_experiment(s, dataset_name="fashion_mnist", framework=framework)
            r = upload_model(s, e["id"], path=str(tflite))
            assert r.status_code == 200, r.text
            model = r.json()["model"]
            assert model["format"] == "tflite" and model["params"] > 0 and model["macs"] > 0, model
            notes = " ".join(model["notes"])
            assert ("framework 'pytorch'" in notes) == (framework == "pytorch"), model["notes"]
    finally:
        s.stop()


def test_stream_of_an_experiment_never_started_says_so_and_ends(server):
    e = create_experiment(server)
    events = sse_events(server, e["id"], timeout=10)
    assert len(events) == 1 and events[0][1] == "status" and events[0][2]["status"] == "created"
    assert "start" in events[0][2]["message"]


def states_of(server, eid):
    return {t["technique"]: t for t in server.get(f"/api/experiments/{eid}").json()["techniques"]}


def test_stop_really_stops(server):
    # No limits: the techniques would take minutes; stop must end them within 5 s.
    e = create_experiment(server, eval_limit=None, max_train_images=None, techniques=["qat_int8", "distillation"])
    assert upload_model(server, e["id"]).status_code == 200
    assert server.post(f"/api/optimize/{e['id']}/start").status_code == 202
    wait_for(lambda: sum(t["status"] == "running" and t["job"] == "technique" for t in states_of(server, e["id"]).values()) == 2,
             120, what="both techniques to run (both workers busy)")
    time.sleep(1.0)
    t0 = time.time()
    r = server.post(f"/api/optimize/{e['id']}/stop")
    assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
    events = sse_events(server, e["id"], timeout=30)
    assert events[-1][2]["status"] == "cancelled"

    def jobs_ended():
        states = server.get(f"/api/experiments/{e['id']}").json()["techniques"]
        return all(t["status"] in ("cancelled", "completed", "failed") for t in states)

    wait_for(jobs_ended, 10, interval=0.1, what="every job to end")
    # The workers' threads are free again: a new run is picked up at once (both workers were busy).
    e2 = create_experiment(server, techniques=["ptq_int8"])
    assert upload_model(server, e2["id"]).status_code == 200
    assert server.post(f"/api/optimize/{e2['id']}/start").status_code == 202
    wait_for(lambda: states_of(server, e2["id"])["fp32"]["status"] != "queued", 10, interval=0.1, what="the next run's baseline to start")
    took = time.time() - t0
    print(f"stop: a worker was free again {took:.2f} s after the stop request")
    assert took <= 5.0, took
    assert_error(server.post(f"/api/optimize/{e['id']}/stop"), 409, "already ended")


def test_predecessor_readme_examples_run_unchanged(tmp_path, shared_dir):
    """The predecessor README's Python `requests` examples, verbatim, against our server on
    port 8000's stand-in (the base URL is the only thing the test changes: to the free port)."""
    torch = pytest.importorskip("torch")

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 8, 3)
            self.fc = torch.nn.Linear(8 * 13 * 13, 10)

        def forward(self, x):
            x = torch.nn.functional.max_pool2d(torch.relu(self.conv(x)), 2)
            return self.fc(torch.flatten(x, 1))

    workdir = tmp_path / "client"
    workdir.mkdir()
    torch.jit.save(torch.jit.script(Net().eval()), str(workdir / "model.pt"),
                   _extra_files={"edgeopt.json": json.dumps({"input_shape": [1, 1, 28, 28]})})
    s = Server(tmp_path, workers=2, args=["--data-dir", os.path.join(shared_dir, "datasets", "mnist-10k")])
    try:
        readme = open(os.path.join(shared_dir, "seeds", "seed-readme.md")).read()
        start = readme.index("### API Usage")
        blocks = []
        rest = readme[start:readme.index("## Project Structure")]
        while "```python" in rest:
            rest = rest[rest.index("```python") + len("```python"):]
            blocks.append(rest[:rest.index("```")])
            rest = rest[rest.index("```") + 3:]
        assert len(blocks) == 4
        script = "\n".join(blocks).replace("http://localhost:8000", s.base)
        env = {}
        cwd = os.getcwd()
        os.chdir(workdir)
        try:
            exec(compile(script, "seed-readme-examples", "exec"), env)
        finally:
            os.chdir(cwd)
        assert env["response"].status_code == 200
        assert env["experiment_id"]
        assert isinstance(env["results"], dict) and "results" in env["results"]
        exp = s.get(f"/api/experiments/{env['experiment_id']}").json()
        assert exp["framework"] == "pytorch" and exp["framework_detected"] == "torchscript" and exp["target_device"] == "raspberry_pi_4"
        assert exp["status"] in ("queued", "running", "completed")
        events = sse_events(s, env["experiment_id"])
        assert events[-1][2]["status"] == "completed", events[-3:]
        final = s.get(f"/api/results/{env['experiment_id']}/results").json()
        assert len(final["results"]) == 9  # the baseline, the seven techniques and hybrid_int4
    finally:
        s.stop()


FASHION_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def gray_png(pixels):
    """A 28x28 8-bit grayscale PNG of a uint8 array (stdlib only)."""
    import struct
    import zlib
    h, w = pixels.shape
    raw = b"".join(b"\x00" + pixels[y].tobytes() for y in range(h))

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def test_per_class_results_of_an_image_folder_zip(server):
    """A ZIP of class folders (train/ and test/) made from Fashion-MNIST test images: the run's
    `classes` map each output index to its folder, and every variant's per_class counts add up.
    The folders go into the ZIP in reverse order and are numbered by name (00_..09_), so the
    mapping follows the names, as documented, not the ZIP's order. The baseline's confusion matrix
    is checked image by image against ONNX Runtime on the same test images."""
    import gzip

    import numpy as np
    import onnxruntime as ort
    from conftest import FASHION_DIR
    with gzip.open(os.path.join(FASHION_DIR, "t10k-images-idx3-ubyte.gz")) as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(os.path.join(FASHION_DIR, "t10k-labels-idx1-ubyte.gz")) as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)
    folders = [f"{i:02d}_{n.replace('/', '-')}" for i, n in enumerate(FASHION_NAMES)]
    test_x, test_y = [], []
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for c in reversed(range(10)):
            idx = np.flatnonzero(y == c)
            for k, i in enumerate(idx[:40]):
                split = "train" if k < 25 else "test"
                zf.writestr(f"{split}/{folders[c]}/{i:05d}.png", gray_png(x[i]))
    for c in range(10):  # the test images, in the loader's order (class folders by name, files by name)
        for i in sorted(np.flatnonzero(y == c)[:40][25:]):
            test_x.append(x[i])
            test_y.append(c)
    test_x = np.stack(test_x).astype(np.float32)[:, None] / 255
    test_y = np.array(test_y)

    e = create_experiment(server, dataset_type="custom", dataset_name="fashion-folders", eval_limit=None, max_train_images=None,
                          techniques=["ptq_int8", "qat_int8"])
    up = server.post(f"/api/upload/{e['id']}/dataset", files={"file": ("fashion-folders.zip", buf.getvalue())})
    assert up.status_code == 200, up.text
    assert [(c["index"], c["name"]) for c in up.json()["dataset"]["classes"]] == list(enumerate(folders))
    assert upload_model(server, e["id"]).status_code == 200
    assert server.post(f"/api/optimize/{e['id']}/start").status_code == 202

    # While the run goes on, the partial results already name the classes and count the baseline.
    def partial_with_baseline():
        r = server.get(f"/api/results/{e['id']}/results").json()
        return r if not r["complete"] and any(row["technique"] == "fp32" for row in r["results"]) else None
    partial = wait_for(partial_with_baseline, 300, interval=0.05, what="partial results with the baseline")
    assert partial["classes"] == [{"index": i, "name": folders[i]} for i in range(10)]
    assert partial["class_names"] == folders
    (base_row,) = [row for row in partial["results"] if row["technique"] == "fp32"]
    assert sum(base_row["per_class"]["support"]) == 150

    assert sse_events(server, e["id"])[-1][2]["status"] == "completed"
    res = server.get(f"/api/results/{e['id']}/results").json()
    assert res["complete"]
    assert res["classes"] == [{"index": i, "name": folders[i]} for i in range(10)]
    assert res["class_names"] == folders == res["raw"]["class_names"]
    assert res["raw"]["classes"] == res["classes"]
    assert isinstance(res["host_latency_unstable"], bool) and "1.30x" in res["host_latency_note"]
    rows = {row["technique"]: row for row in res["results"]}
    assert set(rows) == {"fp32", "ptq_int8", "qat_int8"}
    raw = {"fp32": res["raw"]["baseline"], **{v["technique"]: v for v in res["raw"]["variants"]}}
    for t, row in rows.items():
        pc = row["per_class"]
        n = row["test_samples"]
        assert n == 150
        assert pc["support"] == [15] * 10, (t, pc["support"])
        correct = round(row["optimized_accuracy"] / 100 * n)
        assert abs(row["optimized_accuracy"] / 100 * n - correct) < 1e-6
        assert sum(pc["correct"]) == correct
        assert [sum(r) for r in pc["confusion"]] == pc["support"]
        assert [pc["confusion"][c][c] for c in range(10)] == pc["correct"]
        assert pc["accuracy"] == [pc["correct"][c] / 15 for c in range(10)]
        assert row["per_class"] == raw[t]["per_class"]  # the row carries results.json's own counts
        assert isinstance(row["host_latency_unstable"], bool)
        for key in ("host_latency_ms", "host_latency_ms_1thread"):
            rounds = row[key]["rounds_p50"]
            assert len(rounds) == 3 and row[key]["p50"] == min(rounds)
            assert row[key]["spread"] == pytest.approx(max(rounds) / min(rounds))
    # The oracle: ONNX Runtime's predictions on the same test images give the same confusion matrix.
    s = ort.InferenceSession(MODEL, providers=["CPUExecutionProvider"])
    pred = s.run(None, {s.get_inputs()[0].name: test_x})[0].argmax(1)
    confusion = np.zeros((10, 10), int)
    for t, p in zip(test_y, pred):
        confusion[t, p] += 1
    assert rows["fp32"]["per_class"]["confusion"] == confusion.tolist()
    # Named in the model's order, each class is mostly recognised (a wrong mapping would score ~0).
    assert min(rows["fp32"]["per_class"]["accuracy"]) >= 0.4, rows["fp32"]["per_class"]["accuracy"]
    # The what-if route still ranks these results.
    what_if = server.post(f"/api/results/{e['id']}/recommendations", json={"optimization_goal": "minimize_size"})
    assert what_if.status_code == 200 and what_if.json()["recommendation"]["goal"] == "size", what_if.text
