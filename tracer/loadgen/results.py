"""Writing load-test results: one folder per run (requests table + summary), and a sweep table over rates.

Files are written to a temporary name and renamed, so an interrupted run never leaves a half-written file.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pandas as pd


def _replace(path: Path, write) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    write(tmp)
    os.replace(tmp, path)


def _json_safe(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if hasattr(obj, "item"):
        return _json_safe(obj.item())
    return obj


def write_json(path: Path, obj) -> None:
    _replace(path, lambda p: p.write_text(json.dumps(_json_safe(obj), indent=1)))


def write_table(out: Path, stem: str, df: pd.DataFrame) -> list[Path]:
    """`stem`.parquet, .csv (list columns as JSON text) and .json (records)."""
    out.mkdir(parents=True, exist_ok=True)
    flat = df.copy()
    for col in flat.columns:
        if flat[col].map(lambda v: isinstance(v, list)).any():
            flat[col] = flat[col].map(lambda v: json.dumps([round(x, 4) for x in v]))
    paths = [out / f"{stem}.parquet", out / f"{stem}.csv", out / f"{stem}.json"]
    _replace(paths[0], lambda p: df.to_parquet(p, index=False))
    _replace(paths[1], lambda p: flat.to_csv(p, index=False))
    _replace(paths[2], lambda p: p.write_text(flat.to_json(orient="records", indent=1)))
    return paths


def write_run(out: Path, rows: list[dict], summary: dict, plan: dict) -> list[Path]:
    paths = write_table(out, "requests", pd.DataFrame(rows))
    write_json(out / "summary.json", {"plan": plan, "summary": summary})
    return paths + [out / "summary.json"]
