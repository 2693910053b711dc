"""Nsight Systems SQLite exports (`nsys export --type sqlite`) into the same raw frames as chrome.py.

Tables read (absent ones are empty): CUPTI_ACTIVITY_KIND_KERNEL, _RUNTIME, _MEMCPY, _MEMSET, NVTX_EVENTS,
StringIds, TARGET_INFO_GPU. Times are nanoseconds there and microseconds here; thread ids are nsys's globalTid,
which kernels' launches and NVTX ranges share.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd

from tracer.errors import TracerError

NVTX_PUSHPOP, NVTX_STARTEND, NVTX_DOMAIN_CREATE = 59, 60, 75
KNOWN = {"CUPTI_ACTIVITY_KIND_KERNEL", "CUPTI_ACTIVITY_KIND_RUNTIME", "NVTX_EVENTS", "StringIds"}


def nsys_frames(path: Path, label: str | None = None) -> dict:
    label = label or str(path)
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not tables & KNOWN:
            raise TracerError(f"{label}: SQLite file without the nsys export tables tracer knows "
                              f"({', '.join(sorted(KNOWN))}); export it with `nsys export --type sqlite`")
        strings = _q(con, tables, "StringIds", "SELECT id, value FROM StringIds")
        names = dict(zip(strings["id"], strings["value"])) if not strings.empty else {}
        kernels = _kernels(con, tables, names)
        runtime = _q(con, tables, "CUPTI_ACTIVITY_KIND_RUNTIME",
                     "SELECT start, end, correlationId AS correlation, globalTid AS tid, nameId FROM "
                     "CUPTI_ACTIVITY_KIND_RUNTIME")
        if not runtime.empty:
            runtime = pd.DataFrame({"name": runtime["nameId"].map(names), "ts": runtime["start"] / 1e3,
                                    "dur": (runtime["end"] - runtime["start"]) / 1e3, "pid": runtime["tid"] // 2**24,
                                    "tid": runtime["tid"], "correlation": runtime["correlation"]})
        memcpy = _memops(con, tables, "CUPTI_ACTIVITY_KIND_MEMCPY")
        memset = _memops(con, tables, "CUPTI_ACTIVITY_KIND_MEMSET")
        annotations = _nvtx(con, tables, names)
        gpus = _q(con, tables, "TARGET_INFO_GPU", "SELECT * FROM TARGET_INFO_GPU")
        version = _export_version(con, tables)
    except (sqlite3.DatabaseError, pd.errors.DatabaseError) as e:
        raise TracerError(f"{label}: not a readable nsys SQLite export ({e})") from None
    except (KeyError, TypeError, ValueError) as e:   # a renamed or retyped column: another export schema
        raise TracerError(f"{label}: nsys export without a column tracer reads ({type(e).__name__}: {e}); "
                          "export it again with `nsys export --type sqlite` of a supported nsys") from None
    finally:
        con.close()
    meta = {"source_format": "nsys-sqlite", "export_schema": version,
            "device_properties": [{"name": n} for n in gpus.get("name", pd.Series(dtype=str)).dropna().unique()]}
    return {"kernels": kernels, "memcpy": memcpy, "memset": memset, "runtime": runtime,
            "ops": pd.DataFrame(), "annotations": annotations, "gpu_annotations": pd.DataFrame(),
            "range_source": "nvtx", "meta": meta}


def _q(con, tables: set, table: str, sql: str) -> pd.DataFrame:
    return pd.read_sql_query(sql, con) if table in tables else pd.DataFrame()


def _columns(con, table: str) -> set:
    return {r[1] for r in con.execute(f"PRAGMA table_info({table})")}


def _kernels(con, tables: set, names: dict) -> pd.DataFrame:
    t = "CUPTI_ACTIVITY_KIND_KERNEL"
    if t not in tables:
        return pd.DataFrame()
    cols = _columns(con, t)
    name_col = "demangledName" if "demangledName" in cols else "shortName"
    df = pd.read_sql_query(f"SELECT * FROM {t}", con)
    grid = [f"{x},{y},{z}" for x, y, z in zip(df.get("gridX", 0), df.get("gridY", 0), df.get("gridZ", 0))]
    block = [f"{x},{y},{z}" for x, y, z in zip(df.get("blockX", 0), df.get("blockY", 0), df.get("blockZ", 0))]
    shared = df.get("staticSharedMemory", 0) + df.get("dynamicSharedMemory", 0)
    return pd.DataFrame({"name": df[name_col].map(names), "ts": df["start"] / 1e3,
                         "dur": (df["end"] - df["start"]) / 1e3, "device": df.get("deviceId"),
                         "stream": df.get("streamId"), "correlation": df["correlationId"],
                         "grid": [g.split(",") for g in grid], "block": [b.split(",") for b in block],
                         "registers per thread": df.get("registersPerThread"), "shared memory": shared})


def _memops(con, tables: set, table: str) -> pd.DataFrame:
    if table not in tables:
        return pd.DataFrame()
    df = pd.read_sql_query(f"SELECT * FROM {table}", con)
    kind = "Memcpy" if "MEMCPY" in table else "Memset"
    return pd.DataFrame({"name": kind, "ts": df["start"] / 1e3, "dur": (df["end"] - df["start"]) / 1e3,
                         "device": df.get("deviceId"), "stream": df.get("streamId"),
                         "correlation": df.get("correlationId"), "bytes": df.get("bytes")})


def _nvtx(con, tables: set, names: dict) -> pd.DataFrame:
    if "NVTX_EVENTS" not in tables:
        return pd.DataFrame()
    cols = _columns(con, "NVTX_EVENTS")
    text_id = ", textId" if "textId" in cols else ""
    df = pd.read_sql_query(f"SELECT start, end, text{text_id}, globalTid, domainId, eventType FROM NVTX_EVENTS",
                           con)
    text = df["text"]
    if "textId" in df:
        text = text.fillna(df["textId"].map(names))
    domains = dict(zip(df.loc[df.eventType == NVTX_DOMAIN_CREATE, "domainId"],
                       text[df.eventType == NVTX_DOMAIN_CREATE]))
    rng = df[df.eventType.isin([NVTX_PUSHPOP, NVTX_STARTEND]) & df["end"].notna()]
    return pd.DataFrame({"name": text[rng.index], "ts": rng["start"] / 1e3, "dur": (rng["end"] - rng["start"]) / 1e3,
                         "pid": rng["globalTid"] // 2**24, "tid": rng["globalTid"],
                         "domain": rng["domainId"].map(domains).astype("string").fillna("")}).reset_index(drop=True)


def _export_version(con, tables: set):
    for table in ("META_DATA_EXPORT", "EXPORT_META_DATA"):
        if table in tables:
            rows = dict(con.execute(f"SELECT name, value FROM {table}").fetchall())
            return rows.get("EXPORT_SCHEMA_VERSION") or rows.get("EXPORT_SCHEMA_VERSION_MAJOR")
    return None
