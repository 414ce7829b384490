"""A real `edgeopt serve` (and `edgeopt worker`s) on a free loopback port, against SQLite in a
temporary folder or a fresh database on the PostgreSQL server `make test` starts
(EDGEOPT_TEST_POSTGRES_URL), plus a small SSE client."""
import json
import os
import re
import secrets
import signal
import subprocess
import time
import urllib.parse

import pytest
import requests

from conftest import ROOT, edgeopt_bin

MODEL = os.path.join(ROOT, "tests", "data", "models", "fashion_cnn.onnx")
PG_URL = os.environ.get("EDGEOPT_TEST_POSTGRES_URL", "")


def fresh_postgres_database():
    """A new empty database on the test cluster; its URL."""
    if not PG_URL:
        pytest.skip("EDGEOPT_TEST_POSTGRES_URL is not set (make test starts a PostgreSQL cluster)")
    name = "edgeopt_test_" + secrets.token_hex(6)
    subprocess.run(["psql", PG_URL, "-q", "-c", f"CREATE DATABASE {name}"], check=True, capture_output=True)
    parts = urllib.parse.urlsplit(PG_URL)
    return urllib.parse.urlunsplit(parts._replace(path="/" + name))


class Server:
    def __init__(self, tmp_path, backend="sqlite", args=(), workers=1, env=None, store=None, database=None):
        self.tmp_path = tmp_path
        self.store = store or str(tmp_path / "store")
        self.database = database if database is not None else (fresh_postgres_database() if backend == "postgresql" else "")
        self.args = list(args)
        self.workers = workers
        self.env = dict(os.environ, **(env or {}))
        self.proc = None
        self.start()

    def location_args(self):
        return ["--database", self.database] if self.database else ["--store", self.store]

    def start(self):
        cmd = [edgeopt_bin(), "serve", "--host", "127.0.0.1", "--port", "0", "--workers", str(self.workers),
               "--lease-seconds", "4", *self.location_args(), *self.args]
        self.log = open(self.tmp_path / f"serve-{time.time_ns()}.log", "w")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.log, text=True, env=self.env)
        line = self.proc.stdout.readline()
        m = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        assert m, f"serve did not start: {line!r} {open(self.log.name).read()}"
        self.base = f"http://127.0.0.1:{m.group(1)}"

    def url(self, path):
        return self.base + path

    def get(self, path, **kw):
        return requests.get(self.url(path), timeout=30, **kw)

    def post(self, path, **kw):
        return requests.post(self.url(path), timeout=120, **kw)

    def kill(self, sig=signal.SIGKILL):
        self.proc.send_signal(sig)
        self.proc.wait(timeout=30)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def logs(self):
        return open(self.log.name).read()


def start_worker(server, name, concurrency=1):
    log = open(server.tmp_path / f"worker-{name}.log", "w")
    return subprocess.Popen([edgeopt_bin(), "worker", *server.location_args(), "--concurrency", str(concurrency), "--name", name,
                             "--lease-seconds", "4", "--scratch", str(server.tmp_path / f"scratch-{name}")],
                            stdout=log, stderr=subprocess.STDOUT, text=True)


def sse_events(server, experiment_id, last_event_id=None, timeout=900, headers=None):
    """Reads the progress stream to its end: a list of (id, event, data)."""
    h = dict(headers or {})
    if last_event_id is not None:
        h["Last-Event-ID"] = str(last_event_id)
    events = []
    with requests.get(server.url(f"/api/optimize/{experiment_id}/progress-stream"), stream=True, timeout=timeout, headers=h) as r:
        assert r.status_code == 200, r.text
        assert r.headers["Content-Type"].startswith("text/event-stream")
        current = {}
        for raw in r.iter_lines(decode_unicode=True):
            if raw is None:
                continue
            if raw == "":
                if "event" in current:
                    events.append((int(current["id"]), current["event"], json.loads(current.get("data", "{}"))))
                current = {}
                continue
            if raw.startswith(":"):
                continue
            key, _, value = raw.partition(":")
            current[key] = value[1:] if value.startswith(" ") else value
    return events


def create_experiment(server, **fields):
    body = {"name": "test", "dataset_type": "preset", "dataset_name": "fashion_mnist", "target_device": "raspberry_pi_4",
            "optimization_goal": "balanced", "eval_limit": 1000, "max_train_images": 2000, "devices": ["raspberry_pi_4", "coral_dev_board"]}
    body.update(fields)
    r = server.post("/api/experiments/create", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def upload_model(server, experiment_id, path=MODEL, **data):
    with open(path, "rb") as f:
        return server.post(f"/api/upload/{experiment_id}/model", files={"file": (os.path.basename(path), f)}, data=data or {"model_source": "custom"})


def wait_for(predicate, timeout, interval=0.2, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
