"""Every trace we know parses; kernel counts and times match an independent count over the raw events."""
import gzip
import os
import sqlite3
from pathlib import Path

from collections import Counter

import orjson
import pandas as pd
import pytest

from tests.conftest import DATA, EXTERNAL, assert_one_line_error, run_cli
from tracer import schema
from tracer.errors import TracerError
from tracer.parse import load_tables


def raw_kernels(path: Path):
    """(count, summed duration in us, Counter of names) of the kernels, read with a plain JSON/SQL reader."""
    from collections import Counter
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    if data.startswith(b"SQLite format 3"):
        import tempfile
        with tempfile.NamedTemporaryFile(suffix=".sqlite") as f:
            f.write(data)
            f.flush()
            con = sqlite3.connect(f.name)
            has = con.execute("SELECT count(*) FROM sqlite_master WHERE name='CUPTI_ACTIVITY_KIND_KERNEL'").fetchone()[0]
            if not has:
                return 0, 0.0, Counter()
            n, ns = con.execute("SELECT count(*), coalesce(sum(end - start), 0) FROM CUPTI_ACTIVITY_KIND_KERNEL").fetchone()
            names = Counter(r[0] for r in con.execute("SELECT s.value FROM CUPTI_ACTIVITY_KIND_KERNEL k "
                                                      "JOIN StringIds s ON s.id = k.demangledName"))
            return n, ns / 1e3, names
    doc = orjson.loads(data)
    events = doc["traceEvents"] if isinstance(doc, dict) else doc
    ks = [e for e in events if e.get("ph") == "X" and e.get("cat") in ("kernel", "Kernel")]
    return len(ks), sum(float(e.get("dur", 0)) for e in ks), Counter(e.get("name") for e in ks)


def all_traces():
    paths = sorted(DATA.glob("*.json.gz")) + sorted(DATA.glob("*.sqlite.gz"))
    if EXTERNAL.is_dir():
        paths += sorted(EXTERNAL.rglob("*.json.gz")) + sorted(EXTERNAL.rglob("*.sqlite.gz"))
        paths += sorted((EXTERNAL.parent / "traces-gpu").glob("*.gz"))
    return paths


@pytest.mark.parametrize("path", all_traces(), ids=lambda p: p.name)
def test_kernel_count_and_time_match_raw_events(path):
    tables = load_tables(path, use_cache=False)
    n, us, names = raw_kernels(path)
    assert len(tables["kernels"]) == n
    assert Counter(tables["kernels"]["name"].astype(str)) == names
    assert tables["kernels"]["dur_us"].sum() == pytest.approx(us, rel=1e-9, abs=1e-6)


def test_cache_is_used_and_rebuilt(tmp_path, user_cache):
    src = DATA / "h100_hf_gpt2_prefill_b1_s512.json.gz"
    p = tmp_path / src.name
    p.write_bytes(src.read_bytes())
    first = load_tables(p)
    from tracer.io.forked import wait_background
    from tracer.parse.cache import cache_dir
    wait_background()   # the entry is written on a background thread while the caller goes on
    assert sorted(x.name for x in tmp_path.iterdir()) == [p.name]   # nothing written beside the trace
    assert (cache_dir(p) / "kernels.arrow").exists() and cache_dir(p).parent.parent == user_cache
    again = load_tables(p)
    for name in schema.TABLES:   # read back as parsed: values, column order and dtypes (categoricals included)
        pd.testing.assert_frame_equal(again[name], first[name], check_exact=True)
    assert again["meta"] == first["meta"]
    p.write_bytes(gzip.compress(gzip.decompress(src.read_bytes())))  # same content, new mtime and size
    assert len(load_tables(p)["kernels"]) == len(first["kernels"])


def test_same_size_rewrite_with_preserved_mtime_is_not_served_from_cache(tmp_path):
    """`cp -p` of another trace of the same size over the first keeps size, mtime and inode: only the content
    tells them apart."""
    doc = {"traceEvents": [{"ph": "X", "cat": "kernel", "name": "k_a", "ts": 0, "dur": 10, "pid": 0, "tid": 7,
                            "args": {"correlation": 1}}]}
    p = tmp_path / "t.json"
    p.write_bytes(orjson.dumps(doc))
    st = p.stat()
    assert load_tables(p)["kernels"]["name"].astype(str).tolist() == ["k_a"]
    doc["traceEvents"][0]["name"] = "k_b"
    with open(p, "r+b") as f:   # in place: same inode
        f.write(orjson.dumps(doc))
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (p.stat().st_size, p.stat().st_mtime_ns, p.stat().st_ino) == (st.st_size, st.st_mtime_ns, st.st_ino)
    assert load_tables(p)["kernels"]["name"].astype(str).tolist() == ["k_b"]


def test_large_same_size_rewrite_outside_the_sampled_blocks_is_not_served_from_cache(tmp_path):
    """A known file's key is looked up by its identity and a hash of sampled blocks, not its every byte: a
    rewrite that keeps size, mtime and inode and changes only bytes between the sampled blocks still changes the
    ctime, so the trace is hashed (and parsed) again."""
    from tracer.io.cache import SAMPLE_BYTES, cache_folder

    def doc(name):   # the kernel's name sits 150 kB in, between the first and second sampled blocks of 4 MB
        return (b'{"a":"' + b"x" * 150_000 + b'","traceEvents":[{"ph":"X","cat":"kernel","name":"' + name
                + b'","ts":0,"dur":10,"pid":0,"tid":7,"args":{"correlation":1}}],"z":"' + b"y" * 4_000_000 + b'"}')
    p = tmp_path / "big.json"
    p.write_bytes(doc(b"k_a"))
    st = p.stat()
    assert 150_000 > SAMPLE_BYTES and (st.st_size - SAMPLE_BYTES) / 15 > 160_000
    assert load_tables(p)["kernels"]["name"].astype(str).tolist() == ["k_a"]
    assert load_tables(p)["kernels"]["name"].astype(str).tolist() == ["k_a"]   # from the cache, key from the index
    assert len(list(cache_folder("keys").iterdir())) >= 1
    with open(p, "r+b") as f:
        f.write(doc(b"k_b"))
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (p.stat().st_size, p.stat().st_mtime_ns, p.stat().st_ino) == (st.st_size, st.st_mtime_ns, st.st_ino)
    assert load_tables(p)["kernels"]["name"].astype(str).tolist() == ["k_b"]


def test_gpu_fixture_phases_and_identical_decode_steps():
    k = load_tables(DATA / "h100_hf_gpt2_decode_b16.json.gz", use_cache=False)["kernels"]
    assert k.loc[k.phase != "none", "dur_us"].sum() / k["dur_us"].sum() >= 0.99
    dec = k[k.phase == "decode"].sort_values("launch_start_us")
    sequences = dec.groupby("step")["short_name"].apply(tuple)
    assert len(sequences) == 63 and sequences.nunique() == 1


def test_vllm_fixture_steps():
    t = load_tables(DATA / "h100_vllm_gpt2_decode_b16_s128_o16_eager.json.gz", use_cache=False)
    k, r = t["kernels"], t["ranges"]
    steps = r[r.source == "vllm_step"]
    assert set(steps.phase) >= {"prefill", "decode"}
    assert steps.loc[steps.phase != "none", "prefill_tokens"].sum() == 16 * 128  # every prompt token computed once
    assert k.loc[k.phase != "none", "dur_us"].sum() / k["dur_us"].sum() >= 0.99
    assert k[k.kernel_class == "attention"]["name"].str.contains("flash").any()


def test_nsys_export_agrees_with_torch_profiler_of_same_workload():
    nsys = load_tables(DATA / "h100_hf_gpt2_decode_b16_s128_o16_nsys.sqlite.gz", use_cache=False)["kernels"]
    torch = load_tables(DATA / "h100_hf_gpt2_decode_b16_s128_o16.json.gz", use_cache=False)["kernels"]
    for phase in ("prefill", "decode"):
        a = nsys[nsys.phase == phase].groupby("kernel_class")["dur_us"].sum()
        b = torch[torch.phase == phase].groupby("kernel_class")["dur_us"].sum()
        total = b.sum()
        for cls in set(a.index) | set(b.index):
            assert abs(a.get(cls, 0) - b.get(cls, 0)) <= 0.05 * total, (phase, cls)
    dec = nsys[nsys.phase == "decode"].sort_values("launch_start_us")
    assert dec.groupby("step")["short_name"].apply(tuple).nunique() == 1


def test_matmul10_nsys(shared_dir):
    k = load_tables(shared_dir / "traces-gpu" / "h100_matmul10_nvtx_nsys.sqlite.gz", use_cache=False)["kernels"]
    assert len(k) == 11
    gemms = k[k.kernel_class == "gemm"]
    assert len(gemms) == 10 and (gemms.range_name == "mm").all()
    # the eleventh is the RNG kernel that filled the inputs, launched before the range opened
    assert (k[k.kernel_class != "gemm"].range_name == "").all()


def test_cpu_only_trace_has_ops_and_no_kernels(shared_dir):
    t = load_tables(shared_dir / "traces-external/hta/cpu_only_rank-34.Jul_15_10_52_41.1074.pt.trace.json.gz",
                    use_cache=False)
    assert t["kernels"].empty and len(t["ops"]) > 0


def test_report_without_kernels(shared_dir, tmp_path):
    p = run_cli("analyze", shared_dir / "traces-external/nsys-llmc-fork/report1.exported-nsys2025.3.1.sqlite.gz",
                "--out", tmp_path)
    assert p.returncode == 0 and "no GPU kernels" in p.stdout


@pytest.mark.parametrize("content,message", [
    (b"", "empty file"),
    ((DATA / "h100_hf_gpt2_prefill_b1_s512.json.gz").read_bytes()[:20000], "truncated or corrupt gzip"),
    (b'{"traceEvents": [{"ph": "X", "name": ', "not valid JSON"),
    (b'{"hello": "world"}', "not a Chrome trace"),
    (b"\x00\x01binary junk", "not a trace"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, content, message):
    p = tmp_path / "bad.json.gz"
    p.write_bytes(content)
    with pytest.raises(TracerError, match=message):
        load_tables(p, use_cache=False)
    proc = run_cli("analyze", p, "--out", tmp_path / "out")
    assert message in assert_one_line_error(proc)
    assert not (tmp_path / "out").exists()


def test_unknown_sqlite_is_one_line(tmp_path):
    p = tmp_path / "other.sqlite"
    con = sqlite3.connect(p)
    con.execute("CREATE TABLE t (x)")
    con.commit()
    con.close()
    assert "nsys export tables" in assert_one_line_error(run_cli("analyze", p))


def test_nsys_rep_without_nsys_is_one_line(shared_dir):
    rep = shared_dir / "traces-external/nsys-llmc-fork/report1.nsys-rep"
    proc = run_cli("analyze", rep, env={"PATH": "/usr/bin:/bin", "TRACER_NSYS": ""})
    assert "nsys not found" in assert_one_line_error(proc)


def test_piecewise_parallel_decoding_equals_whole_decoding(monkeypatch):
    """Large traces are cut into spans of whole events and decoded on every core: same tables as one piece."""
    from tracer.parse import chrome

    path = DATA / "h100_hf_gpt2_decode_b16.json.gz"
    whole = load_tables(path, use_cache=False)
    monkeypatch.setattr(chrome, "CHUNK_BYTES", 1_000_000)
    data = gzip.decompress(path.read_bytes())
    assert len(chrome._event_spans(data)) > 10
    pieces = load_tables(path, use_cache=False)
    for table in ("kernels", "ops", "ranges", "memops"):
        a, b = whole[table].reset_index(drop=True), pieces[table].reset_index(drop=True)
        pd.testing.assert_frame_equal(a, b, check_dtype=False)


@pytest.mark.parametrize("cores", [1, 2])
def test_spans_decoded_in_place_give_the_same_frames_and_leave_the_buffer_as_it_was(monkeypatch, tmp_path, cores):
    """A writable buffer (a plain file's private mapping, a gunzipped bytearray) is decoded in place, each span
    framed by bytes written around it: the same frames as from read-only bytes, and every byte put back (one core:
    in this process; two: in forked workers)."""
    from tracer.io.inputs import read_buffer
    from tracer.parse import chrome

    monkeypatch.setattr(chrome, "CHUNK_BYTES", 1_000_000)
    monkeypatch.setattr(chrome.os, "cpu_count", lambda: cores)
    gz = DATA / "h100_hf_gpt2_decode_b16.json.gz"
    text = gzip.decompress(gz.read_bytes())
    plain = tmp_path / "trace.json"
    plain.write_bytes(text)
    expected = chrome.chrome_trace_frames(text, "bytes")
    for path in (plain, gz):
        buf = read_buffer(path)
        assert not memoryview(buf).readonly
        got = chrome.chrome_trace_frames(buf, str(path))
        assert bytes(buf) == text
        for kind in ("kernels", "runtime", "ops", "annotations", "memcpy", "memset"):
            pd.testing.assert_frame_equal(expected[kind], got[kind])
        assert got["meta"] == expected["meta"]


def _mapped_rss_bytes(path) -> int:
    """Resident bytes of this process's mappings of `path` (/proc/self/smaps)."""
    total, inside = 0, False
    for line in open("/proc/self/smaps"):
        if line[:1] in "0123456789abcdef" and "-" in line.split()[0]:
            inside = line.rstrip().endswith(str(path))
        elif inside and line.startswith("Rss:"):
            total += int(line.split()[1]) * 1024
    return total


@pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="needs Linux's /proc/self/smaps")
def test_a_decoded_span_of_a_mapped_trace_is_no_longer_held(monkeypatch, tmp_path):
    """Each span of a plain trace's mapping is unmapped once decoded (tracer.io.inputs.release_pages): at the end
    of the decode this process holds a few boundary pages of it, not the whole file, and the file's bytes read
    back the same."""
    from tracer.io.inputs import read_buffer
    from tracer.parse import chrome

    monkeypatch.setattr(chrome, "CHUNK_BYTES", 1_000_000)
    monkeypatch.setattr(chrome.os, "cpu_count", lambda: 1)   # decoded in this process, whose mapping is measured
    text = gzip.decompress((DATA / "h100_hf_gpt2_decode_b16.json.gz").read_bytes())
    plain = tmp_path / "trace.json"
    plain.write_bytes(text)
    buf = read_buffer(plain)
    memoryview(buf)[::4096].tobytes()   # every page read, as a decode reads them
    assert _mapped_rss_bytes(plain) > 0.9 * len(text)
    frames = chrome.chrome_trace_frames(buf, str(plain))
    assert len(frames["kernels"]) > 1000
    assert _mapped_rss_bytes(plain) < 0.1 * len(text)
    assert bytes(buf) == text


def test_gunzip_with_and_without_isal_gives_the_same_bytes(monkeypatch, tmp_path):
    """Intel's igzip (isal) gunzips when installed, zlib otherwise: the same bytes either way, for a file of two
    gzip members with zero padding after them, as a bytearray (read_buffer) and as bytes (read_bytes)."""
    import zlib

    from tracer.io import inputs

    p = tmp_path / "t.json.gz"
    p.write_bytes(gzip.compress(b'{"traceEvents": [') + gzip.compress(b"]}") + b"\0" * 8)
    first = inputs.read_buffer(p)
    monkeypatch.setattr(inputs, "_inflate", zlib)
    assert inputs.read_buffer(p) == first == bytearray(b'{"traceEvents": []}')
    assert inputs.read_bytes(p) == bytes(first)


def test_cutlass_wrapper_kernels_are_named_by_the_operation_they_run():
    """FA3's kernels all launch through `cutlass::device_kernel<...>`: the short name says which operation runs
    (the main kernel, the split-KV combine), the full name stays in `name`."""
    k = load_tables(DATA / "h200_vllm_gpt2_decode_b16_graphs.json.gz", use_cache=False)["kernels"]
    wrapped = k[k["name"].astype(str).str.contains(r"cutlass::device_kernel<", regex=False)]
    assert len(wrapped)
    names = set(wrapped["short_name"].astype(str))
    assert names == {"FlashAttnFwdSm90", "FlashAttnFwdCombine"}, names
    assert not (k["short_name"].astype(str) == "device_kernel").any()
    combine = wrapped[wrapped["short_name"] == "FlashAttnFwdCombine"]["name"].astype(str)
    assert combine.str.startswith("void cutlass::device_kernel<flash::FlashAttnFwdCombine<").all()


# As PyTorch's profiler wrote it in a vLLM CPU trace of this suite (the TP 2 test): the quotes inside the name
# unescaped, so the file is not JSON.
BARE_QUOTES = b'"name": "torch/_inductor/kernel_template_choice.py(0): "pre_grad"",'


@pytest.mark.parametrize("spaced", [False, True])
def test_a_trace_with_unescaped_quotes_in_a_name_is_read_with_a_notice(tmp_path, spaced):
    """The committed H200 vLLM trace (compact JSON) with one Python-function event named as above added, compact
    and as Kineto writes it (a key per line): the same kernels and ops as the trace itself, the name read with its
    quotes, and a notice that says so. Other invalid JSON is still the one-line error."""
    from tracer.parse.unescaped_quotes import name_quotes_escaped

    source = DATA / "h200_vllm_gpt2_decode_b16_graphs.json.gz"
    text = gzip.decompress(source.read_bytes())
    name = BARE_QUOTES if spaced else BARE_QUOTES.replace(b'": "', b'":"', 1)
    sep = b",\n    " if spaced else b","
    event = sep.join([b'{"ph": "X"', b'"cat": "python_function"', name[:-1], b'"pid": 1087', b'"tid": 1087',
                      b'"ts": 5304018427219.0', b'"dur": 42.553}'])
    key = b'"traceEvents":['
    broken = text.replace(key, key + event + b",", 1)
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(broken)
    fixed, names = name_quotes_escaped(broken)
    assert names == 1
    assert orjson.loads(fixed)["traceEvents"][0]["name"] == 'torch/_inductor/kernel_template_choice.py(0): "pre_grad"'
    trace = tmp_path / "quoted.json.gz"
    trace.write_bytes(gzip.compress(broken, 1))
    tables, reference = load_tables(trace, use_cache=False), load_tables(source, use_cache=False)
    for t in ("kernels", "ops"):
        pd.testing.assert_frame_equal(tables[t], reference[t])
    assert any("unescaped quotes" in n for n in tables["meta"]["notices"])
    truncated = tmp_path / "truncated.json"
    truncated.write_bytes(broken[: len(broken) // 2])
    with pytest.raises(TracerError, match="not valid JSON"):
        load_tables(truncated, use_cache=False)
