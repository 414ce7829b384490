"""Hostile model and dataset files (issue 9): every one ends with exit 1 and a clear message, within
1.5 GB of peak RSS and 60 s, and touches no file outside the model and output folders.

Layout per case: <tmp>/model/ holds the hostile file, <tmp>/out/ the output folder, <tmp>/host/
a canary file (and the paths hostile files aim at). inotify watches <tmp>/host and <tmp> itself:
any open, read, write, creation or removal there fails the case, as does a change of the canary.
"""
import ctypes
import ctypes.util
import os
import struct
import subprocess
import time

import pytest

import hostile_files as hf
from conftest import FASHION_DIR, ROOT, edgeopt_bin

MAX_RSS_KB = 1_500_000
MAX_SECONDS = 60
CANARY_TEXT = b"canary: nothing may read or change this file\n" * 64

# inotify(7) event bits
IN_ACCESS, IN_MODIFY, IN_ATTRIB, IN_CLOSE_WRITE, IN_OPEN = 0x1, 0x2, 0x4, 0x8, 0x20
IN_MOVED_FROM, IN_MOVED_TO, IN_CREATE, IN_DELETE = 0x40, 0x80, 0x100, 0x200
WATCH_HOST = IN_ACCESS | IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_OPEN | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
WATCH_ROOT = IN_MODIFY | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
NAMES = {IN_ACCESS: "read", IN_MODIFY: "modify", IN_ATTRIB: "attrib", IN_CLOSE_WRITE: "close-write", IN_OPEN: "open",
         IN_MOVED_FROM: "moved-from", IN_MOVED_TO: "moved-to", IN_CREATE: "create", IN_DELETE: "delete"}


class Watch:
    """inotify on a few folders; events() lists what happened since the start."""

    def __init__(self, folders):
        self.libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        self.fd = self.libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        assert self.fd >= 0
        self.paths = {}
        for folder, mask in folders:
            wd = self.libc.inotify_add_watch(self.fd, folder.encode(), mask)
            assert wd >= 0, folder
            self.paths[wd] = folder

    def events(self):
        out = []
        while True:
            try:
                buf = os.read(self.fd, 65536)
            except BlockingIOError:
                break
            at = 0
            while at < len(buf):
                wd, mask, _, length = struct.unpack_from("iIII", buf, at)
                name = buf[at + 16: at + 16 + length].rstrip(b"\0").decode()
                at += 16 + length
                what = [n for bit, n in NAMES.items() if mask & bit]
                if what:
                    out.append(f"{'/'.join(what)} {os.path.join(self.paths[wd], name)}")
        return out

    def close(self):
        os.close(self.fd)


class Case:
    def __init__(self, tmp_path):
        self.root = str(tmp_path)
        self.model_dir = os.path.join(self.root, "model")
        self.out = os.path.join(self.root, "out")
        self.host = os.path.join(self.root, "host")
        for d in (self.model_dir, self.out, self.host):
            os.makedirs(d)
        self.canary = os.path.join(self.host, "canary.txt")
        with open(self.canary, "wb") as f:
            f.write(CANARY_TEXT)
        self.canary_stat = os.stat(self.canary)

    def model(self, name):
        return os.path.join(self.model_dir, name)

    def target(self, name):  # a path in the host folder a hostile file aims at
        return os.path.join(self.host, name)

    def run(self, *args, words=(), allow_host=()):
        """Runs the CLI under the watch; asserts exit 1, the message, RSS, time and the file system."""
        host_before = sorted(os.listdir(self.host))
        root_before = sorted(os.listdir(self.root))
        watch = Watch([(self.host, WATCH_HOST), (self.root, WATCH_ROOT)])
        start = time.monotonic()
        proc = subprocess.Popen([edgeopt_bin(), *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            stdout, stderr = proc.communicate(timeout=MAX_SECONDS * 2)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            pytest.fail(f"{args}: still running after {MAX_SECONDS * 2} s")
        seconds = time.monotonic() - start
        # wait4 on the reaped child is gone; the children's peak RSS comes from a fresh rusage.
        events = [e for e in watch.events() if not any(a in e for a in allow_host)]
        watch.close()
        stderr = stderr.decode(errors="replace")
        assert proc.returncode == 1, f"{args}: exit {proc.returncode}\nstdout: {stdout[-2000:]!r}\nstderr: {stderr[-3000:]}"
        assert "error: " in stderr, stderr
        for w in words:
            assert w.lower() in stderr.lower(), f"{w!r} not in: {stderr}"
        assert seconds < MAX_SECONDS, f"{args}: took {seconds:.1f} s"
        assert events == [], f"{args}: touched files outside the model and output folders: {events}\nstderr: {stderr}"
        assert sorted(os.listdir(self.host)) == host_before
        assert sorted(os.listdir(self.root)) == root_before
        st = os.stat(self.canary)
        assert (st.st_size, st.st_mtime_ns) == (self.canary_stat.st_size, self.canary_stat.st_mtime_ns)
        with open(self.canary, "rb") as f:
            assert f.read() == CANARY_TEXT
        return stderr


def peak_rss_kb(argv):
    """Peak RSS of argv and the children it waited for (the import sandbox), in kB."""
    script = ("import os,resource,subprocess,sys;subprocess.run(sys.argv[1:],stdout=subprocess.DEVNULL,stderr=subprocess.DEVNULL);"
              "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run(["/usr/bin/python3", "-c", script, *map(str, argv)], capture_output=True, text=True, timeout=MAX_SECONDS * 2)
    return int(out.stdout.strip())


@pytest.fixture
def case(tmp_path):
    return Case(tmp_path)


def check(case, argv, words=()):
    stderr = case.run(*argv, words=words)
    rss = peak_rss_kb([edgeopt_bin(), *argv])
    assert rss <= MAX_RSS_KB, f"{argv}: peak RSS {rss} kB"
    return stderr


def evaluate_args(model):
    if not os.path.exists(os.path.join(FASHION_DIR, "t10k-images-idx3-ubyte.gz")):
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    return ["evaluate", model, "--dataset", "fashion-mnist", "--no-download", "--limit", "20"]


DEVICE = "raspberry_pi_4"
COMMANDS = ["inspect", "evaluate", "estimate", "optimize"]


def command_args(command, model):
    if command == "inspect":
        return ["inspect", model]
    if command == "estimate":
        return ["estimate", model, "--device", DEVICE]
    if command == "optimize":
        args = optimize_args(os.path.join(os.path.dirname(os.path.dirname(model)), "out"))
        args[1] = model
        return args
    return evaluate_args(model)


# ---- TorchScript ----

@pytest.mark.parametrize("command", COMMANDS)
def test_torchscript_writing_a_host_file(case, command):
    model = case.model("writes.pt")
    hf.ts_writes_file(model, case.canary)
    check(case, command_args(command, model), words=["from_file"])


def test_torchscript_creating_a_host_file(case):
    model = case.model("creates.pt")
    hf.ts_writes_file(model, case.target("created.bin"))
    check(case, ["inspect", model])
    assert not os.path.exists(case.target("created.bin"))


def test_torchscript_setstate_loop(case):
    model = case.model("loop.pt")
    hf.ts_setstate_loop(model)
    check(case, ["inspect", model], words=["__setstate__"])


def test_torchscript_setstate_writes(case):
    model = case.model("setstate.pt")
    hf.ts_setstate_writes(model, case.canary)
    check(case, ["inspect", model], words=["__setstate__"])


def test_torchscript_nested_loops(case):
    model = case.model("loops.pt")
    hf.ts_nested_loops(model)
    check(case, ["inspect", model], words=["loops"])


def test_torchscript_huge_constant(case):
    model = case.model("ones.pt")
    hf.ts_huge_constant(model)
    check(case, ["inspect", model], words=["elements"])


def test_torchscript_extra_method(case):
    model = case.model("extra.pt")
    hf.ts_extra_method(model)
    check(case, ["inspect", model], words=["sneaky"])


def test_torchscript_short_storage(case):
    model = case.model("short.pt")
    hf.ts_short_storage(model)
    check(case, ["inspect", model], words=["storage"])


def test_torchscript_append_to_non_list(case):
    model = case.model("append.pt")
    hf.ts_append_to_non_list(model)
    check(case, ["inspect", model], words=["not a list"])


def test_torchscript_storage_bomb(case):
    model = case.model("bomb.pt")
    hf.ts_storage_bomb(model)
    check(case, ["inspect", model], words=["bomb"])


# ---- Keras HDF5 ----

@pytest.mark.parametrize("command", COMMANDS)
def test_h5_external_storage(case, command):
    model = case.model("external.h5")
    hf.h5_external_storage(model, case.canary)
    check(case, command_args(command, model), words=["external"])


def test_h5_external_link(case):
    model = case.model("link.h5")
    target = case.target("other.h5")
    hf.h5_external_link(model, target)
    case.canary_other = target
    check(case, ["inspect", model], words=["external link"])


def test_h5_virtual_dataset(case):
    model = case.model("virtual.h5")
    target = case.target("source.h5")
    hf.h5_virtual_dataset(model, target)
    check(case, ["inspect", model], words=["virtual"])


# ---- ONNX and any file ----

def test_onnx_concat_doublings(case):
    model = case.model("doubling.onnx")
    hf.onnx_concat_doublings(model)
    assert os.path.getsize(model) < 4096
    check(case, ["inspect", model])


@pytest.mark.parametrize("side", [40000, 1000000])
def test_onnx_huge_declared_input(case, side):
    model = case.model("huge.onnx")
    hf.onnx_huge_input(model, side)
    check(case, evaluate_args(model), words=["pixels per side"])


@pytest.mark.parametrize("side,words", [(40000, ["pixels per side"]), (1000000, ["more than 2^31 elements", "real input size"])])
def test_tflite_huge_declared_input(case, side, words):
    model = case.model("huge.tflite")
    hf.tflite_huge_input(model, side, edgeopt_bin())
    assert os.path.getsize(model) < 4096
    check(case, evaluate_args(model), words=words)


def test_onnx_external_data_outside_its_folder(case):
    model = case.model("ext.onnx")
    hf.onnx_external_data_outside(model, case.canary)
    check(case, ["inspect", model])


def test_big_file_of_zeros(case):
    model = case.model("zeros.bin")
    hf.big_zero_file(model)
    check(case, ["inspect", model], words=["not a model file"])


def test_fifo_as_model(case):
    model = case.model("fifo.onnx")
    os.mkfifo(model)
    check(case, ["inspect", model], words=["not a regular file"])


def test_device_as_model(case):
    model = case.model("zero.onnx")
    os.symlink("/dev/zero", model)
    check(case, ["inspect", model], words=["not a regular file"])


# ---- datasets ----

def test_dataset_zip_of_huge_pngs(case):
    data = case.model("data.zip")
    hf.dataset_zip_huge_png(data)
    check(case, ["evaluate", os.path.join(ROOT, "tests", "data", "models", "fashion_cnn.pt"), "--dataset", data, "--no-download"])


def test_dataset_images_linking_to_host_files(case):
    folder = case.model("data")
    hf.dataset_folder_symlink(folder, case.canary)
    check(case, ["evaluate", os.path.join(ROOT, "tests", "data", "models", "fashion_cnn.pt"), "--dataset", folder, "--no-download"])


# ---- the output folder and flags ----

GOOD_MODEL = os.path.join(ROOT, "tests", "data", "models", "fashion_cnn.pt")


def optimize_args(out, *extra):
    if not os.path.exists(os.path.join(FASHION_DIR, "t10k-images-idx3-ubyte.gz")):
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    return ["optimize", GOOD_MODEL, "--dataset", "fashion-mnist", "--no-download", "--techniques", "ptq_int8", "--limit", "50",
            "--max-train-images", "50", "--out", out, *extra]


@pytest.mark.parametrize("out", ["/", "/etc", "/dev/null", "", "/usr/lib"])
def test_out_refused(case, out):
    check(case, optimize_args(out), words=["--out"])


def test_out_is_a_file(case):
    path = case.model("a-file")
    open(path, "w").close()
    check(case, optimize_args(path), words=["not a folder"])


def test_out_with_planted_symlinks(case):
    """A planted fp32.eom.partial symlink must be replaced, never written through."""
    for name in ("fp32.eom.partial", "fp32.eom", "results.json.partial", "fp32.onnx.partial"):
        os.symlink(case.canary, os.path.join(case.out, name))
    # The run itself succeeds; what matters is the canary. A failing flag makes it end with exit 1.
    stderr = case.run(*optimize_args(case.out, "--max-accuracy-drop", "-1"), words=["--max-accuracy-drop"])
    assert stderr
    proc = subprocess.run([edgeopt_bin(), *optimize_args(case.out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    with open(case.canary, "rb") as f:
        assert f.read() == CANARY_TEXT
    assert not os.path.islink(os.path.join(case.out, "fp32.eom"))


@pytest.mark.parametrize("flags,words", [
    (["--max-accuracy-drop", "-1"], ["--max-accuracy-drop"]),
    (["--max-accuracy-drop", "nan"], ["--max-accuracy-drop"]),
    (["--max-accuracy-drop-pct", "inf"], ["--max-accuracy-drop-pct"]),
    (["--max-size-mb", "-1"], ["--max-size-mb"]),
    (["--max-latency-ms", "nan"], ["--max-latency-ms"]),
    (["--limit", "-5"], ["--limit"]),
])
def test_optimize_bad_numbers(case, flags, words):
    args = optimize_args(case.out, *flags)
    if flags[0] == "--limit":
        at = args.index("--limit")
        del args[at:at + 2]
    check(case, args, words=words)


def test_optimize_duplicate_technique(case):
    args = optimize_args(case.out)
    args[args.index("ptq_int8")] = "ptq_int8,ptq_int8"
    check(case, args, words=["twice"])


def test_estimate_nan_clock(case):
    check(case, ["estimate", GOOD_MODEL, "--device", DEVICE, "--cpu-mhz", "nan"], words=["--cpu-mhz"])


def test_evaluate_negative_limit(case):
    args = evaluate_args(GOOD_MODEL)
    args[args.index("20")] = "-5"
    check(case, args, words=["--limit"])
