"""Shared test helpers: paths of committed fixtures and external traces, a CLI runner that checks the one-line
error contract, the CPU recordings several test files share, and how the tests are spread over pytest-xdist
workers."""
import fcntl
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
SHARED = Path(os.environ.get("TRACER_SHARED", ROOT.parent / "shared"))
EXTERNAL = SHARED / "traces-external"


def _share_the_cores_between_workers() -> None:
    """Each xdist worker gets its own slice of the CPUs: torch's and vLLM's OpenMP threads default to every core,
    so two workers running models at once kept four spinning threads on two cores (an HF record took 43 s of CPU
    instead of 18). Set here, before any test imports torch, so that in-process runs and every subprocess
    (record, serve, vLLM's engine workers) inherit it; a value set outside the suite is kept."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if workers < 2 or not worker.startswith("gw"):
        return
    cpus = sorted(os.sched_getaffinity(0))
    share = max(1, len(cpus) // workers)
    start = (int(worker[2:]) * share) % len(cpus)
    mine = cpus[start:start + share]
    os.environ.setdefault("OMP_NUM_THREADS", str(len(mine)))
    os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", ",".join(map(str, mine)))   # vLLM-CPU's engine worker


_share_the_cores_between_workers()


def run_cli(*args, timeout=900, env=None):
    """Run `python -m tracer.cli ARGS` as a user would; return the CompletedProcess."""
    e = dict(os.environ, **(env or {}))
    e.pop("TRACER_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "tracer.cli", *map(str, args)], cwd=ROOT, env=e,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout)


def assert_one_line_error(proc):
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.startswith("tracer: error")]
    assert len(lines) == 1, proc.stderr
    return lines[0]


@pytest.fixture(scope="session", autouse=True)
def user_cache(tmp_path_factory):
    """The suite's own user cache folder (shared by its in-process and subprocess runs), not the tester's."""
    d = tmp_path_factory.mktemp("tracer-cache")
    old = os.environ.get("TRACER_CACHE_DIR")
    os.environ["TRACER_CACHE_DIR"] = str(d)
    yield d
    if old is None:
        os.environ.pop("TRACER_CACHE_DIR", None)
    else:
        os.environ["TRACER_CACHE_DIR"] = old


@pytest.fixture(scope="session")
def shared_dir():
    if not EXTERNAL.is_dir():
        pytest.skip(f"shared traces not found at {SHARED}")
    return SHARED


# One `tracer record` serves the tests of recorded CPU traces in test_vllm_cpu, test_unannotated,
# test_repeats_cpu, test_report and test_perfetto: every vLLM-CPU engine start costs tens of seconds, and
# several workloads share one engine and one HF model. vLLM records Python stacks (real execute_model frames for
# test_unannotated); HF and vLLM are timed 3 times unprofiled and 2 times profiled, then compared per workload.
# vLLM runs eager: torch.compile's warm-up would add ~12 s to the suite's longest setup (the compiled engine is
# started end to end by test_serve_cpu's vLLM server).
CPU_RECORD_WORKLOADS = ("decode_b2_s16_o4", "decode_b4_s64_o8")
CPU_RECORD_ARGS = ("record", "--backend", "hf,vllm", "-w", ",".join(CPU_RECORD_WORKLOADS), "--device", "cpu",
                   "--layers", "2", "--repeat", "3", "--profiled-repeats", "2", "--enforce-eager")
CPU_RECORDINGS = "cpu-recordings"   # their xdist group: one worker records, its tests run beside it


class CpuRecordings:
    def __init__(self, folder: Path):
        self.folder = folder
        run = json.loads((folder / "run.json").read_text())
        self.returncode, self.stdout, self.stderr = run["returncode"], run["stdout"], run["stderr"]

    def _stem(self, backend: str, workload: str) -> str:
        eager = backend == "vllm" and "--enforce-eager" in CPU_RECORD_ARGS
        return f"{backend}_gpt2_L2_{workload}_cpu" + ("_eager" if eager else "")

    def trace(self, backend: str, workload: str) -> Path:
        return self.folder / f"{self._stem(backend, workload)}.json.gz"

    def sidecar(self, backend: str, workload: str) -> dict:
        return json.loads(self.folder.joinpath(f"{self._stem(backend, workload)}.meta.json").read_text())


@pytest.fixture(scope="session")
def cpu_recordings(tmp_path_factory) -> CpuRecordings:
    """The shared recording, made once per test run: under xdist the first worker that needs it records into the
    run's common temporary folder under a lock, and any other waits for it and reads it."""
    pytest.importorskip("vllm")
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent   # the folder all workers' temporary folders sit in
    folder = base / "cpu-recordings"
    with open(base / "cpu-recordings.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / "run.json").exists():
            folder.mkdir(exist_ok=True)
            proc = run_cli(*CPU_RECORD_ARGS, "--out", folder, env={"TRACER_VLLM_WITH_STACK": "1"}, timeout=1500)
            (folder / "run.json").write_text(json.dumps({"returncode": proc.returncode, "stdout": proc.stdout,
                                                          "stderr": proc.stderr}))
    rec = CpuRecordings(folder)
    assert rec.returncode == 0, rec.stderr[-3000:]
    return rec


# How the tests are spread over the xdist workers (tests/run: --dist loadgroup --no-loadscope-reorder). A test
# that uses a module-scoped fixture stays with the rest of its module (servers and analyses start once); every
# other test is handed out on its own. xdist hands out work in collection order, so the longest-running work
# comes first, which keeps the two workers busy to the end (figures: a 2-core run, seconds).
LONGEST_FIRST = (
    "tests/test_sweep_cpu.py::test_small_sweep_both_backends",                      # HF + vLLM engine, 8 points
    CPU_RECORDINGS,                                                                 # the shared record, 5 tests
    "tests/test_multirank.py::test_vllm_cpu_tensor_parallel_2_one_trace_per_rank",  # vLLM TP 2
    "tests/test_serve_cpu.py::test_vllm_cpu_server_poisson_load_and_profiled_window",
    "tests/test_serve_cpu.py::test_vllm_server_that_fails_to_start_says_why_in_one_line",
    "tests/test_vllm_cpu.py::test_engine_that_fails_to_start_says_why_in_one_line",
    "tests/test_serve_cpu.py",                                                      # the HF server's module
    "tests/test_record_cpu.py::test_record_hf_cpu",
    "tests/test_serve_cpu.py::test_hf_window_longer_than_the_load_closes_when_idle_or_at_exit",
    "tests/test_serve_cpu.py::test_hf_profiled_window_under_load_is_analysed",
    "tests/test_multirank.py",
    "tests/test_report.py",
    "tests/test_html_report.py",
    "tests/test_api.py::test_readme_python_api_examples_print_what_they_say",
    "tests/test_serve_fixtures.py",
    "tests/test_unannotated.py",
)


def _group_of(item) -> str | None:
    mark = item.get_closest_marker("xdist_group")
    if mark:
        return str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
    defs = item._fixtureinfo.name2fixturedefs
    if any(d and d[-1].scope == "module" for d in defs.values()):
        return item.nodeid.split("::")[0]   # with its module's other tests that share the fixture
    return None


def _rank(item) -> int:
    keys = (_group_of(item) or "", item.nodeid)
    for i, prefix in enumerate(LONGEST_FIRST):
        if any(k == prefix or k.startswith(prefix + "[") or k.startswith(prefix + "::") for k in keys):
            return i
    return len(LONGEST_FIRST)


@pytest.hookimpl(tryfirst=True)   # before xdist reads the groups
def pytest_collection_modifyitems(config, items):
    for item in items:
        group = _group_of(item)
        if group and not item.get_closest_marker("xdist_group"):
            item.add_marker(pytest.mark.xdist_group(group))
    items.sort(key=_rank)   # stable: the rest keep their order
