"""The project's shape stays readable: no product module over 400 lines, no folder of more than 15 product
modules, every package says in its docstring what it owns, and imports follow the layer order of
tests/bench/import_layers.py (analysis's own layers included)."""
import ast

from tests.bench import import_layers
from tests.conftest import ROOT

PRODUCT = ("tracer", "analysis", "workloads")
# Imports against the layer order that predate the check: the phase names that schema takes from the marker
# (workloads.phases), and Perfetto's nanosecond arithmetic that the trace layout shares with `tracer check`.
KNOWN_CLIMBS = {("tracer.recording.perfetto_layout", "tracer.perfetto"), ("tracer.schema", "workloads.phases")}


def product_modules():
    return [p for pkg in PRODUCT for p in sorted((ROOT / pkg).rglob("*.py")) if "__pycache__" not in p.parts]


def test_no_product_module_over_400_lines():
    modules = product_modules()
    long = {str(p.relative_to(ROOT)): n for p in modules if (n := len(p.read_text().splitlines())) > 400}
    assert len(modules) > 80 and long == {}


def test_no_folder_holds_more_than_15_product_modules():
    folders: dict[str, int] = {}
    for p in product_modules():
        key = str(p.parent.relative_to(ROOT))
        folders[key] = folders.get(key, 0) + 1
    assert {"analysis/work", "analysis/roofline", "analysis/reports", "tracer/cli"} <= set(folders)
    assert {k: n for k, n in folders.items() if n > 15} == {}


def test_every_package_says_what_it_owns():
    for init in (ROOT / pkg for pkg in PRODUCT):
        for path in [init / "__init__.py", *sorted(init.rglob("*/__init__.py"))]:
            if "__pycache__" in path.parts:
                continue
            doc = ast.get_docstring(ast.parse(path.read_text()))
            assert doc, path.relative_to(ROOT)


def test_imports_follow_the_layer_order():
    graph = import_layers.import_graph()
    assert {import_layers.layer_of(m) for m in graph} == set(import_layers.LAYERS)
    assert set(import_layers.climbs(graph)) == KNOWN_CLIMBS


def test_readme_is_a_front_page_linking_the_docs():
    """README.md stays short (what tracer is, set-up, the command tour) and links every page of docs/; every
    relative link of the README and the docs reaches a file."""
    import re

    readme = (ROOT / "README.md").read_text()
    assert len(readme) < 12_000
    pages = sorted(p.name for p in (ROOT / "docs").glob("*.md"))
    assert {"architecture.md", "python-api.md", "files.md", "analysis.md"} <= set(pages)
    for page in pages:
        assert f"(docs/{page})" in readme, page
    setup = readme[readme.index("## Set up and run"):]
    setup = setup[: setup.index("\n## ")]
    assert re.findall(r"```\n(.*?)\n```", setup, re.S) == [   # the two set-up commands
        "pip install -e . && tracer record --workload decode_b4_s64_o16 --out traces/quickstart.json.gz && "
        "tracer analyze traces/quickstart.json.gz --out traces/quickstart", "bash tests/run"]
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", doc.read_text()):
            if "://" not in target:
                assert (doc.parent / target).exists(), (doc.name, target)
