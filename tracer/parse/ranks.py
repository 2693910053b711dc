"""Several traces of one job (one per rank) as one set of tables with a `rank` column (schema.RANK)."""
from __future__ import annotations

import glob
import re
from pathlib import Path

import pandas as pd

from tracer.errors import TracerError

_TRACE_SUFFIXES = (".json", ".json.gz", ".sqlite", ".sqlite.gz", ".nsys-rep")
_RANK_IN_NAME = re.compile(r"rank[-_]?(\d+)", re.I)
RANK_TABLES = ("kernels", "memops", "ops", "ranges", "comms")


def expand_inputs(inputs: list[str]) -> list[Path]:
    """Files named, files of named folders (traces only, not sidecars or caches) and glob matches, in order."""
    paths: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            paths += sorted(f for f in p.iterdir() if f.is_file() and f.name.endswith(_TRACE_SUFFIXES)
                            and not f.name.endswith(".meta.json"))
        elif any(ch in item for ch in "*?["):
            paths += sorted(Path(m) for m in glob.glob(item) if m.endswith(_TRACE_SUFFIXES))
        elif p.is_file():
            paths.append(p)
        else:
            raise TracerError(f"{item}: no such file or folder")
    if not paths:
        raise TracerError(f"no trace files in {' '.join(inputs)}")
    return list(dict.fromkeys(paths))


def rank_of(path: Path, meta: dict, position: int) -> int:
    """distributedInfo.rank, else `rank-N`/`rankN` in the file name, else the file's position."""
    dist = (meta or {}).get("distributed") or {}
    if isinstance(dist, dict) and isinstance(dist.get("rank"), int):
        return dist["rank"]
    m = _RANK_IN_NAME.search(path.name)
    return int(m.group(1)) if m else position


def with_rank(tables: dict, rank: int) -> dict:
    """The tables with `rank` as their first column."""
    out = dict(tables)
    for name in RANK_TABLES:
        if name in tables:
            df = tables[name].copy()
            df.insert(0, "rank", pd.Series([rank] * len(df), index=df.index, dtype="Int64"))
            out[name] = df
    return out


def check_unique(ranks: list[int], paths: list) -> None:
    seen: dict[int, object] = {}
    for r, p in zip(ranks, paths):
        if r in seen:
            raise TracerError(f"{seen[r]} and {p} are both rank {r}: give one trace per rank")
        seen[r] = p


def write_partition(df: pd.DataFrame, root: Path, rank: int) -> None:
    """One rank's table as `root/rank=<rank>/part-0.parquet` (a Hive-partitioned Parquet dataset: pandas,
    DuckDB, Spark and pyarrow.dataset read `root` whole, with `rank` from the folder names). Text columns
    are written as plain strings so that every partition has one schema."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    d = root / f"rank={rank}"
    d.mkdir(parents=True, exist_ok=True)
    df = df.drop(columns=["rank"], errors="ignore")
    table = pa.Table.from_pandas(df, preserve_index=False)
    fields = [pa.field(f.name, pa.string()) if pa.types.is_dictionary(f.type) or pa.types.is_large_string(f.type)
              or pa.types.is_null(f.type) else f for f in table.schema]
    pq.write_table(table.cast(pa.schema(fields)), d / "part-0.parquet")


def read_dataset(root: Path) -> pd.DataFrame:
    """A partitioned table back as one frame, `rank` an integer column, rows in rank order."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    part = ds.partitioning(pa.schema([("rank", pa.int64())]), flavor="hive")
    df = ds.dataset(root, format="parquet", partitioning=part).to_table().to_pandas()
    return df.sort_values("rank", kind="stable").reset_index(drop=True)
