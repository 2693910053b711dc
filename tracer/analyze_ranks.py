"""`tracer analyze DIR` / `A B ...`: one job's rank traces, each parsed and analysed as a task (local processes,
or Ray tasks with `--ray`), written as Parquet datasets partitioned by rank, with communication, overlap and
stragglers across ranks in summary.json. Like commands.py, a place where parsing and analysis meet."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import orjson
import pandas as pd

from tracer.errors import TracerError


def rank_job(path: str, position: int, tmp_root: str, peaks_file=None, work_model: dict | None = None) -> dict:
    """Parse and analyse one rank's trace, write its partition of every table under tmp_root, return the
    small per-rank results (summary, collectives, step times) for the driver."""
    from analysis.timing.communication import collectives, step_times
    from analysis.reports.report import analyze
    from tracer.parse import load_tables
    from tracer.parse.comms import trace_comms
    from tracer.parse.ranks import rank_of, with_rank, write_partition
    from tracer.io.sidecar import read_sidecar

    p = Path(path)
    tables = load_tables(p)
    tables["comms"] = trace_comms(p, tables)
    rank = rank_of(p, tables["meta"], position)
    result = analyze(tables, read_sidecar(str(p)), peaks_file, **(work_model or {}))
    out = with_rank({**tables, "kernels": result["kernels"]}, rank)
    for name in ("kernels", "memops", "ops", "ranges", "comms"):
        write_partition(out[name], Path(tmp_root) / name / f".part-{position}", rank)
    s = result["summary"]
    calls, times = collectives(tables), step_times(tables)
    calls.insert(0, "rank", rank)
    if len(times):
        times.insert(0, "rank", rank)
    return {"rank": rank, "path": str(p), "position": position,
            "summary": {"rank": rank, "path": str(p), "device": s["source"]["device"], "totals": s["totals"],
                        "phases": s["phases"], "notices": s["notices"], "tensor_parallel": s.get("tensor_parallel")},
            "calls": calls, "times": times}


def run_jobs(paths: list[Path], tmp_root: Path, peaks_file, work_model, ray_address: str | None,
             workers: int | None = None) -> list[dict]:
    args = [(str(p), i, str(tmp_root), peaks_file, work_model) for i, p in enumerate(paths)]
    workers = workers or min(len(paths), os.cpu_count() or 1)
    if ray_address is not None:
        return _run_ray(args, ray_address, workers)
    if workers <= 1 or len(paths) == 1:
        return [rank_job(*a) for a in args]
    import concurrent.futures as cf
    import multiprocessing as mp
    from tracer.io.forked import wait_background
    wait_background()   # no fork while a background thread may hold a lock
    ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else None
    with cf.ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        return list(pool.map(rank_job, *zip(*args)))


def _run_ray(args: list, address: str, workers: int) -> list[dict]:
    try:
        import ray
    except ImportError:
        raise TracerError("--ray needs Ray: pip install 'tracer[ray]'") from None
    started = not ray.is_initialized()
    if started:
        env = {"env_vars": {"PYTHONPATH": os.environ["PYTHONPATH"]}} if os.environ.get("PYTHONPATH") else None
        kw = {"num_cpus": workers, "include_dashboard": False} if address == "local" else {"address": address}
        ray.init(runtime_env=env, log_to_driver=False, **kw)
    try:
        task = ray.remote(rank_job)
        return ray.get([task.remote(*a) for a in args])
    except ray.exceptions.RayTaskError as e:
        cause = e.cause if isinstance(getattr(e, "cause", None), TracerError) else None
        raise (cause or TracerError(f"a Ray task failed: {str(e).splitlines()[-1]}")) from None
    finally:
        if started:
            ray.shutdown()


def analyze_ranks(inputs: list[str], out_dir: str | None, as_json: bool, peaks_file=None,
                  work_model: dict | None = None, ray_address: str | None = None, workers: int | None = None) -> Path:
    import click

    from analysis.timing.communication import communication_summary, markdown, stragglers
    from tracer.parse.ranks import check_unique, expand_inputs
    from tracer.io.atomic import write_atomic

    paths = expand_inputs(inputs)
    out = Path(out_dir) if out_dir else (Path(inputs[0]) if Path(inputs[0]).is_dir() else paths[0].parent) \
        / "ranks_analysis"
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".tmp-{os.getpid()}"
    try:
        results = sorted(run_jobs(paths, tmp, peaks_file, work_model, ray_address, workers),
                         key=lambda r: r["rank"])
        check_unique([r["rank"] for r in results], [r["path"] for r in results])
        times = pd.concat([r["times"] for r in results if len(r["times"])], ignore_index=True) \
            if any(len(r["times"]) for r in results) else pd.DataFrame()
        calls = pd.concat([r["calls"] for r in results], ignore_index=True)
        times, per_step = stragglers(times) if len(times) else (times, pd.DataFrame())
        summary = {"summary_version": 1, "ranks": [r["summary"] for r in results],
                   "communication": communication_summary(calls, times, per_step, [
                       (r["summary"].get("tensor_parallel") or {}).get("predicted") for r in results])}
        for name in ("kernels", "memops", "ops", "ranges", "comms"):   # the partitions into place
            dest = out / name
            shutil.rmtree(dest, ignore_errors=True)
            dest.mkdir()
            for part in sorted((tmp / name).glob(".part-*")):
                for rank_dir in part.iterdir():
                    rank_dir.rename(dest / rank_dir.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if created and not any(out.iterdir()):   # a failed first analysis leaves no empty folder behind
            out.rmdir()
    text = orjson.dumps(summary, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY, default=str)
    write_atomic(out / "summary.json", text)
    lines = [f"# {len(results)} ranks", "", "| rank | trace | kernels | kernel ms |", "|---|---|---|---|"]
    lines += [f"| {r['rank']} | `{Path(r['path']).name}` | {r['summary']['totals']['kernels']} | "
              f"{r['summary']['totals']['kernel_us'] / 1e3:.2f} |" for r in results]
    write_atomic(out / "report.md", ("\n".join(lines) + "\n\n" + markdown(summary["communication"])).encode())
    if as_json:
        click.echo(text.decode())
    else:
        click.echo(markdown(summary["communication"]))
    click.echo(f"wrote {out}/{{kernels,memops,ops,ranges,comms}}/rank=N/, {out}/summary.json, {out}/report.md",
               err=True)
    return out
