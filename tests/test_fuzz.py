"""Fuzz corpus, generated at test time from the committed fixtures: mutated traces (values, fields, files), broken
nsys exports, odd paths and bad options. Every case must end with exit 0 and true numbers (no negative or
impossible times, busy shares within 0..100%, no NaN shown as a figure) or exit 2 with exactly one
`tracer: error:` line and no traceback. Most cases run in-process (library call or `tracer.cli.main`); the
kill -9 and concurrency cases run as subprocesses."""
import gzip
import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import time

import orjson
import pytest

from tests.conftest import DATA, ROOT, assert_one_line_error, run_cli
from tracer.errors import TracerError

BASE = DATA / "h100_hf_gpt2_prefill_b1_s512.json.gz"
NSYS = DATA / "h100_hf_gpt2_decode_b16_s128_o16_nsys.sqlite.gz"
_DOC = orjson.loads(gzip.decompress(BASE.read_bytes()))

VALUES = {"missing": KeyError, "null": None, "text": "abc", "negative": -5.0, "huge": 1e300, "neg_huge": -1e300,
          "list": [1], "dict": {"a": 1}, "bigint": 2**70, "nan_text": "NaN", "zero": 0, "bool": True}
KINDS = {"kernel": "kernel", "op": "cpu_op", "runtime": "cuda_runtime", "annotation": "user_annotation",
         "memset": "gpu_memset"}
FIELDS = ("ts", "dur", "ph", "cat", "name", "args", "pid", "tid")


def _mutated(kind: str, field: str, value, every: int = 3) -> dict:
    """The base trace with every `every`-th event of `kind` changed (copies of those events; the rest shared)."""
    events = list(_DOC["traceEvents"])
    hits = [i for i, e in enumerate(events) if e.get("cat") == KINDS[kind]][::every]
    for i in hits:
        e = events[i] = dict(events[i])
        if value is KeyError:
            e.pop(field, None)
        else:
            e[field] = value
    return {**_DOC, "traceEvents": events}


def _sane(summary: dict) -> None:
    t = summary["totals"]
    assert t["kernel_us"] >= 0 and math.isfinite(t["kernel_us"])
    for key in ("unmodeled_pct", "phase_attributed_pct"):
        assert t[key] is None or 0 <= t[key] <= 100 + 1e-6, (key, t[key])
    for p in summary["phases"]:
        for key, v in p.items():
            if isinstance(v, float):
                assert math.isfinite(v), (key, v)
                if key.endswith("_pct") or key.endswith("_pct_of_wall"):
                    assert -1e-6 <= v <= 100 + 1e-6, (key, v)
            if key.endswith("_us") and isinstance(v, (int, float)):
                assert v >= 0, (key, v)


def _analyze_lib(path):
    """The library path of `tracer analyze` (parse, attribute, analyse) without plots: exit 0 or one-line error."""
    from tracer.commands import analyze_one
    try:
        tables, result = analyze_one(str(path))
    except TracerError as e:
        assert "\n" not in str(e) and str(e)
        return None
    _sane(result["summary"])
    return result


def _main(*args) -> tuple[int, str, str]:
    """`tracer ARGS` in this process, as the console script runs it: (exit code, stdout, stderr)."""
    from tracer.cli import main
    import io
    import contextlib
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main([str(a) for a in args])
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
    return code, out.getvalue(), err.getvalue()


def _contract(code, out, err):
    assert code in (0, 2), (code, err)
    assert "Traceback" not in err and "internal error" not in err, err
    if code == 2:
        assert len([ln for ln in err.splitlines() if ln.startswith("tracer: error:")]) == 1, err
    else:
        assert not any(w == "nan" for w in out.replace("|", " ").split()), out


VALUE_CASES = [(k, f, v) for k in KINDS for f in FIELDS for v in VALUES]


@pytest.mark.parametrize("kind,field,value", VALUE_CASES, ids=[f"analyze-chrome-{k}-{f}-{v}" for k, f, v in VALUE_CASES])
def test_mutated_event_values(kind, field, value, tmp_path):
    # plain JSON (gzip has its own cases: test_mutated_files); json for integers past 64 bits, which orjson refuses
    p = tmp_path / "t.json"
    doc = _mutated(kind, field, VALUES[value])
    p.write_bytes(json.dumps(doc).encode() if value == "bigint" else orjson.dumps(doc))
    result = _analyze_lib(p)
    # a negative timestamp is a valid clock value alone, and a JSON true reads as 1: both stay (sane) figures
    if result is not None and kind == "kernel" and field in ("ts", "dur", "ph") and value not in (
            "zero", "bool") and (field, value) != ("ts", "negative"):
        dropped = [n for n in result["summary"]["notices"] if "dropped" in n]
        assert dropped, (result["summary"]["notices"], result["summary"]["totals"])


def _file_variants():
    raw = gzip.decompress(BASE.read_bytes())
    gz = BASE.read_bytes()
    v = {f"gzip_cut_{int(f * 100)}": gz[:int(len(gz) * f)] for f in (0.01, 0.1, 0.5, 0.9, 0.999)}
    v |= {f"json_cut_{int(f * 100)}": raw[:int(len(raw) * f)] for f in (0.001, 0.1, 0.5, 0.9, 0.999)}
    v |= {"empty": b"", "blank": b"  \n", "null": b"null", "list": b"[]", "dict": b"{}", "string": b'"abc"',
          "events_text": b'{"traceEvents":"abc"}', "events_numbers": b'{"traceEvents":[1,2]}', "junk": b"\x00\x01zz",
          "deep": b"[" * 5000 + b"]" * 5000, "bom": b"\xef\xbb\xbf" + raw, "gzip_empty": gzip.compress(b""),
          "double_gzip": gzip.compress(gz), "trailing_junk": raw + b"garbage", "gzip_zero_padded": gz + b"\x00" * 64,
          "events_null": b'{"traceEvents":null}', "utf16": raw[:2000].decode().encode("utf-16"),
          "ok_plain": raw, "ok_gzip": gz}
    return v


FILES = _file_variants()
FILE_CASES = [(cmd, name) for cmd in ("analyze", "check") for name in FILES]


@pytest.mark.parametrize("cmd,name", FILE_CASES, ids=[f"{c}-file-{n}" for c, n in FILE_CASES])
def test_mutated_files(cmd, name, tmp_path):
    p = tmp_path / "t.json.gz"
    p.write_bytes(FILES[name])
    if cmd == "analyze":
        result = _analyze_lib(p)
        if name.startswith("ok_"):
            assert result is not None and result["summary"]["totals"]["kernels"] == 236
        return
    code, out, err = _main("check", p)
    assert code in (0, 2) and "Traceback" not in err, err
    assert len([ln for ln in err.splitlines() if ln.startswith("tracer: error:")]) == (code == 2), err


def _nsys_variants():
    out = {}
    con = sqlite3.connect(":memory:")
    con.deserialize(gzip.decompress(NSYS.read_bytes()))
    cols = {t: [r[1] for r in con.execute(f"PRAGMA table_info({t})")] for t in
            ("CUPTI_ACTIVITY_KIND_KERNEL", "CUPTI_ACTIVITY_KIND_RUNTIME", "NVTX_EVENTS", "StringIds")}
    con.close()
    for table, names in cols.items():
        for c in names[:12]:
            out[f"rename_{table.split('_')[-1]}_{c}"] = [f"ALTER TABLE {table} RENAME COLUMN {c} TO {c}_renamed"]
        out[f"drop_{table}"] = [f"DROP TABLE {table}"]
    k = "CUPTI_ACTIVITY_KIND_KERNEL"
    out |= {"end_before_start": [f"UPDATE {k} SET end = start - 1000000 WHERE rowid % 3 = 0"],
            "end_text": [f"UPDATE {k} SET end = 'abc' WHERE rowid % 5 = 0"],
            "start_text": [f"UPDATE {k} SET start = 'abc' WHERE rowid % 7 = 0"],
            "huge_end": [f"UPDATE {k} SET end = 9e300 WHERE rowid % 11 = 0"],
            "nvtx_end_before_start": ["UPDATE NVTX_EVENTS SET end = start - 5"],
            "no_rows": [f"DELETE FROM {k}"], "ok": []}
    return out


NSYS_CASES = _nsys_variants()


@pytest.mark.parametrize("name", NSYS_CASES, ids=[f"analyze-nsys-{n}" for n in NSYS_CASES])
def test_mutated_nsys_exports(name, tmp_path):
    p = tmp_path / "t.sqlite"
    con = sqlite3.connect(p)
    con.deserialize(gzip.decompress(NSYS.read_bytes()))
    for sql in NSYS_CASES[name]:
        con.execute(sql)
    con.commit()
    con.execute(f"VACUUM INTO '{tmp_path / 'out.sqlite'}'")
    con.close()
    result = _analyze_lib(tmp_path / "out.sqlite")
    if name == "end_before_start":
        assert any("negative duration" in n for n in result["summary"]["notices"])


BAD_OPTIONS = {
    "record": [["-w", ""], ["-w", ","], ["-w", "decode_b1", "--warmup", "-1"], ["-w", "decode_b1", "--backend", "tf"],
               ["-w", "decode_b1", "--backend", ""], ["-w", "bogus_b1"], ["-w", "decode_b0"],
               ["-w", "decode_b1", "--ncu-launch-count", "0"], ["-w", "decode_b1", "--profiler", "perf"],
               ["-w", "decode_b1", "--dtype", "int8"], ["-w", "decode_b1", "--out", "/proc/x/t.json.gz"],
               ["-w", "decode_b1", "--warmup", "x"], ["-w", "decode_b1", "--repeat", "0"],
               ["-w", "decode_b1", "--profiled-repeats", "0"], ["-w", "decode_b1", "--sdpa-backend", "fast"]],
    "sweep": [["--repeats", "0"], ["--repeats", "-3"], ["--batch", ""], ["--batch", "a,b"], ["--batch", "0"],
              ["--prompt", ""], ["--output", "-1"], ["--backend", "tf"], ["--backend", ""], ["--requests", ""],
              ["--hf-batch", "0"], ["--layers", "0"], ["--out", "/proc/x"]],
    "open": [["x.json", "--port", "70000"], ["x.json", "--port", "-1"], ["/nonexistent.json"]],
    "serve": [["--port", "70000"], ["--backend", "tf"]],
    "analyze": [[], ["/nonexistent.json.gz"], [str(DATA)], ["/dev/zero"], ["/dev/null"],
                [str(BASE), "--peaks", "/nonexistent"], [str(BASE), "--out", "/proc/x"],
                [str(BASE), "--ncu-phase", "both"], [str(BASE), "--workload", "bogus"], [str(BASE), "--model", "nope"]],
    "compare": [[str(BASE)], [str(BASE), "/nonexistent"], [str(BASE), str(BASE), "--out", "/proc/x"]],
    "check": [["/nonexistent"], [str(DATA)], ["/dev/zero"]],
    "calibrate": [["--bogus"]],
}
OPTION_CASES = [(cmd, args) for cmd, lists in BAD_OPTIONS.items() for args in lists]


@pytest.mark.parametrize("cmd,args", OPTION_CASES, ids=[f"{c}-options-{i}" for i, (c, _) in enumerate(OPTION_CASES)])
def test_bad_options_are_one_line(cmd, args):
    code, out, err = _main(cmd, *args)
    assert code == 2, (code, err)
    _contract(code, out, err)


def test_folder_with_a_file_that_is_no_trace_leaves_nothing_behind(tmp_path):
    """A folder of "ranks" where one file is JSON but no trace: one line naming it, and no empty
    ranks_analysis folder left in the input folder."""
    import shutil
    folder = tmp_path / "run"
    folder.mkdir()
    shutil.copy(BASE, folder / BASE.name)
    shutil.copy(DATA / "h100_peaks.json", folder / "h100_peaks.json")
    code, out, err = _main("analyze", folder)
    assert code == 2 and "h100_peaks.json" in err and "not a Chrome trace" in err, err
    _contract(code, out, err)
    assert sorted(p.name for p in folder.iterdir()) == sorted([BASE.name, "h100_peaks.json"])


def test_fifo_and_broken_symlink_refused(tmp_path):
    fifo = tmp_path / "t.json"
    os.mkfifo(fifo)
    for cmd in ("analyze", "check"):
        code, out, err = _main(cmd, fifo)
        assert code == 2 and "FIFO" in err
    link = tmp_path / "gone.json.gz"
    link.symlink_to(tmp_path / "nothing")
    assert _main("analyze", link)[0] == 2


def test_decompressed_size_cap(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACER_MAX_BYTES", "100K")
    p = tmp_path / "t.json.gz"
    p.write_bytes(BASE.read_bytes() + gzip.compress(b" " * 7))   # content not in the cache yet
    code, out, err = _main("analyze", p, "--out", tmp_path / "a")
    assert code == 2 and "TRACER_MAX_BYTES" in err and not (tmp_path / "a").exists()


def test_odd_path_names_and_no_writes_beside_input(tmp_path):
    d = tmp_path / "dir with spaces é"
    d.mkdir()
    p = d / "t r;ace $x.json.gz"
    p.write_bytes(BASE.read_bytes())
    code, out, err = _main("analyze", p, "--out", tmp_path / "out")
    _contract(code, out, err)
    assert code == 0 and sorted(x.name for x in d.iterdir()) == [p.name]   # no cache beside the input
    assert (tmp_path / "out" / "summary.json").exists()


def test_existing_user_files_kept_unless_force(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.md").write_text("my notes")
    code, _, err = _main("analyze", BASE, "--out", out)
    assert code == 2 and "report.md" in err and (out / "report.md").read_text() == "my notes"
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    code, _, err = _main("record", "-w", "decode_b1_s8_o2", "--out", notes)
    assert code == 2 and notes.read_text() == "mine"
    code, _, err = _main("analyze", BASE, "--out", out, "--force")
    assert code == 0 and (out / "report.md").read_text() != "my notes"
    (out / "mine.txt").write_text("keep")
    assert _main("analyze", BASE, "--out", out)[0] == 0   # our own outputs are replaced, other files kept
    assert (out / "mine.txt").read_text() == "keep"


def test_out_that_is_a_file_is_refused_before_work(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    t0 = time.perf_counter()
    code, _, err = _main("analyze", DATA / "h100_hf_gpt2_decode_b16.json.gz", "--out", f / "sub")
    assert code == 2 and "is a file" in err and time.perf_counter() - t0 < 5


def test_chunked_reader_keeps_device_properties_after_trace_events(tmp_path, monkeypatch):
    from tracer.parse import chrome
    doc = {"traceEvents": _DOC["traceEvents"] * 3, "deviceProperties": _DOC["deviceProperties"]}
    data = orjson.dumps(doc)
    monkeypatch.setattr(chrome, "CHUNK_BYTES", 64 * 1024)
    assert chrome._event_spans(data) is not None
    frames = chrome.chrome_trace_frames(data, "x")
    assert frames["meta"]["device_properties"][0]["name"] == _DOC["deviceProperties"][0]["name"]


def _popen(*args):
    e = dict(os.environ)
    e.pop("TRACER_DEBUG", None)
    return subprocess.Popen([sys.executable, "-m", "tracer.cli", *map(str, args)], cwd=ROOT, env=e,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_concurrent_analyses_into_one_out(tmp_path):
    out = tmp_path / "out"
    procs = [_popen("analyze", BASE, "--out", out), _popen("analyze", DATA / "h100_hf_llama-1b_prefill_b1_s512.json.gz",
                                                           "--out", out)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    summary = orjson.loads((out / "summary.json").read_bytes())
    k = __import__("pandas").read_parquet(out / "kernels.parquet")
    assert len(k) == summary["totals"]["kernels"]   # one run's files, not a mix
    assert not [x for x in tmp_path.iterdir() if x.name.startswith(".tracer-")]


def test_kill_9_then_rerun_leaves_one_whole_folder(tmp_path):
    out = tmp_path / "out"
    p = _popen("analyze", DATA / "h100_vllm_gpt2_decode_b16_s128_o16_eager.json.gz", "--out", out)
    time.sleep(4)
    p.send_signal(signal.SIGKILL)
    p.communicate()
    r = run_cli("analyze", BASE, "--out", out, timeout=300)
    assert r.returncode == 0, r.stderr
    assert not [x for x in tmp_path.iterdir() if x.name.startswith(".tracer-")]
    assert orjson.loads((out / "summary.json").read_bytes())["totals"]["kernels"] == 236


def test_corrupt_calibration_names_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACER_PEAKS_DIR", str(tmp_path))
    name = _DOC["deviceProperties"][0]["name"].replace(" ", "_")
    (tmp_path / f"{name}.json").write_text("{not json")
    code, _, err = _main("analyze", BASE, "--out", tmp_path / "a")
    assert code == 2 and f"{name}.json" in err


def test_one_line_error_of_a_subprocess(tmp_path):
    assert_one_line_error(run_cli("analyze", tmp_path / "missing.json"))
