"""The project's import graph, read with ast (nothing is imported): per layer, the project modules each module
imports; the imports that climb against the data flow; and the import cycles among modules.

    python tests/bench/import_layers.py [--strict]

Exit 1 when modules import each other in a cycle (lazy imports inside functions count: they are the same
dependency, paid later); with --strict, also when a layer imports one it must not. Layers in data-flow order:
workloads produce runs, tracer/recording writes traces, tracer/parse turns them into tables, analysis reads tables
(and parse's vocabulary, the kernel classes); the top (tracer/*.py: api, commands, perfetto; tracer/cli, tracer/serve,
tracer/loadgen) may use everything. analysis is layered too: its root (analysis/numbers.py, how numbers are
written) under all of it; the work model (analysis/work) under the steps (analysis/steps), both under the roofline
(analysis/roofline); time (analysis/timing) beside them; reports (analysis/reports) over all of analysis.
tracer/errors.py and tracer/schema.py are shared definitions any layer may import, and so is the one I/O layer
(tracer/io: atomic writes, output folders, sidecars, bounded input, the cache; and tracer/tools.py, finding
nsys/ncu), which itself imports only the shared definitions.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("workloads", "tracer", "analysis")
SHARED = {"tracer.errors", "tracer.schema"}
LAYERS = ("shared", "tracer/io", "workloads", "tracer/recording", "tracer/parse", "analysis", "analysis/work",
          "analysis/steps", "analysis/roofline", "analysis/timing", "analysis/reports", "tracer (top)")
_ANALYSIS_BASE = {"analysis", "tracer/parse", "tracer/io"}
# what each layer may import besides itself and the shared modules
ALLOWED = {"shared": set(), "tracer/io": set(), "workloads": {"tracer/io"},
           "tracer/recording": {"workloads", "tracer/io"}, "tracer/parse": {"tracer/io"},
           "analysis": {"tracer/parse", "tracer/io"},
           "analysis/work": _ANALYSIS_BASE,
           "analysis/steps": _ANALYSIS_BASE | {"analysis/work"},
           "analysis/roofline": _ANALYSIS_BASE | {"analysis/work", "analysis/steps"},
           "analysis/timing": _ANALYSIS_BASE,
           "analysis/reports": _ANALYSIS_BASE | {"analysis/work", "analysis/steps", "analysis/roofline",
                                                 "analysis/timing"},
           "tracer (top)": set(LAYERS)}
# module prefix -> layer, most specific first
_PREFIXES = (("tracer.io", "tracer/io"), ("tracer.tools", "tracer/io"), ("workloads", "workloads"),
             ("tracer.recording", "tracer/recording"), ("tracer.parse", "tracer/parse"),
             ("analysis.work", "analysis/work"), ("analysis.steps", "analysis/steps"),
             ("analysis.roofline", "analysis/roofline"), ("analysis.timing", "analysis/timing"),
             ("analysis.reports", "analysis/reports"), ("analysis", "analysis"))


def layer_of(module: str) -> str:
    if module in SHARED:
        return "shared"
    for prefix, layer in _PREFIXES:
        if module == prefix or module.startswith(prefix + "."):
            return layer
    return "tracer (top)"


def project_modules(root: Path = ROOT) -> dict[str, Path]:
    mods = {}
    for pkg in PACKAGES:
        for path in sorted((root / pkg).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            mods[".".join(parts)] = path
    return mods


def imports_of(module: str, path: Path, known: set[str]) -> set[str]:
    """Project modules named by the file's import statements, at module level or inside functions."""
    tree = ast.parse(path.read_text(), str(path))
    is_pkg = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                pkg = module.split(".") if is_pkg else module.split(".")[:-1]
                pkg = pkg[: len(pkg) - (node.level - 1)]
                base = ".".join(pkg + ([base] if base else []))
            # `from a.b import c` names the submodule a.b.c when there is one, else a name inside a.b
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for name in names:
            while name and name not in known:  # `import a.b.c` of a name inside a module: the module
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    mods = project_modules(root)
    return {m: imports_of(m, p, set(mods)) for m, p in mods.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    m = stack.pop()
                    on_stack.discard(m)
                    comp.append(m)
                    if m == node:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def climbs(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    """(importer, imported) pairs where a layer imports one it must not."""
    bad = []
    for m, deps in sorted(graph.items()):
        lm = layer_of(m)
        for d in sorted(deps):
            ld = layer_of(d)
            if ld not in (lm, "shared") and ld not in ALLOWED[lm]:
                bad.append((m, d))
    return bad


def main(argv: list[str]) -> int:
    graph = import_graph()
    for layer in LAYERS:
        mods = sorted(m for m in graph if layer_of(m) == layer)
        used = sorted({layer_of(d) for m in mods for d in graph[m]} - {layer})
        print(f"== {layer} ({len(mods)} modules) imports layers: {', '.join(used) or '-'}")
        for m in mods:
            print(f"  {m}: {', '.join(sorted(graph[m])) or '-'}")
    bad = climbs(graph)
    print(f"\nimports against the layer order: {len(bad)}")
    for m, d in bad:
        print(f"  {m} ({layer_of(m)}) -> {d} ({layer_of(d)})")
    found = cycles(graph)
    print(f"\nimport cycles: {len(found)}")
    for comp in found:
        print("  " + " <-> ".join(comp))
    return 1 if found or ("--strict" in argv and bad) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
