"""What may import what (STYLE.md), and nothing built at import time: checked on the source with `ast`."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OUR_PACKAGES = ("shared", "services", "bench")
STDLIB = set(sys.stdlib_module_names)
# The `passpro` command (a package) and the demo data compose the services; they are not a service.
COMPOSITION_ROOT = {ROOT / "services" / "cli", ROOT / "services" / "demo.py"}
SERVICE_NAMES = sorted(
    p.name for p in (ROOT / "services").iterdir() if (p / "__init__.py").exists() and p not in COMPOSITION_ROOT
)
DOMAIN_STDLIB = {"__future__", "dataclasses", "datetime", "typing", "zoneinfo"}  # zoneinfo: tz rules, no clock

# Calls that connect or build a service: only ever inside a function (a factory), never at import.
BUILDERS = {"create_engine", "create_async_engine", "Redis", "StrictRedis", "from_url", "FastAPI", "RedisBroker", "FastStream"}


def python_files(*parts: str) -> list[Path]:
    return sorted(p for p in ROOT.joinpath(*parts).rglob("*.py") if "__pycache__" not in p.parts)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path, source: str | None = None) -> list[tuple[int, str]]:
    """Every module `path` imports, anywhere in the file (functions included), as absolute names."""
    tree = ast.parse(source if source is not None else path.read_text(encoding="utf-8"), filename=str(path))
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
                found += [(node.lineno, n) for n in [target, *(f"{target}.{a.name}" for a in node.names)]]
            else:
                found.append((node.lineno, node.module or ""))
                # `from services import registration`, `from services.cli import common` import the submodule, too.
                found += [(node.lineno, f"{node.module}.{a.name}") for a in node.names if top(node.module or "") in OUR_PACKAGES]
    return found


def top(name: str) -> str:
    return name.split(".")[0]


def where(path: Path, line: int) -> str:
    return f"{path.relative_to(ROOT)}:{line}"


# --- the helpers themselves must be able to fail ---------------------------------------------------


def test_the_import_reader_sees_relative_and_nested_imports():
    probe = ROOT / "services" / "registration" / "probe.py"  # parsed from a string, never written
    source = "from . import domain\nfrom ..scoring import queries\ndef f():\n    import redis\n"
    assert [name for _, name in imports(probe, source)] == [
        "services.registration",
        "services.registration.domain",
        "services.scoring",
        "services.scoring.queries",
        "redis",
    ]


def test_the_builder_check_sees_a_module_level_client():
    tree = ast.parse("import redis\nclient = redis.Redis.from_url('redis://x')\ndef make():\n    return FastAPI()\n")
    assert [name for _, name in module_level_builders(tree)] == ["from_url"]


# --- the rules ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", python_files("shared", "contracts"), ids=lambda p: str(p.relative_to(ROOT)))
def test_contracts_import_only_the_standard_library_pydantic_and_themselves(path):
    bad = [
        where(path, line) + f" imports {name}"
        for line, name in imports(path)
        if not (top(name) in STDLIB or top(name) == "pydantic" or name == "shared.contracts" or name.startswith("shared.contracts."))
    ]
    assert not bad, bad


def _within(name: str, *packages: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


@pytest.mark.parametrize("path", python_files("shared", "domain"), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_shared_domain_imports_only_the_contracts_and_itself(path):
    bad = [
        where(path, line) + f" imports {name}"
        for line, name in imports(path)
        if not (top(name) in STDLIB or top(name) == "pydantic" or _within(name, "shared.contracts", "shared.domain"))
    ]
    assert not bad, bad


@pytest.mark.parametrize("path", python_files("shared", "runtime"), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_runtime_never_imports_a_service_nor_the_pages(path):
    bad = [
        where(path, line) + f" imports {name}"
        for line, name in imports(path)
        if top(name) == "services" or _within(name, "shared.web")
    ]
    assert not bad, bad


@pytest.mark.parametrize("path", python_files("shared", "web"), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_pages_toolkit_never_imports_a_service(path):
    bad = [where(path, line) + f" imports {name}" for line, name in imports(path) if top(name) == "services"]
    assert not bad, bad


@pytest.mark.parametrize("service", [s for s in SERVICE_NAMES if s != "records"])  # records: no domain of its own
def test_a_domain_imports_only_the_contracts_and_a_little_standard_library(service):
    path = ROOT / "services" / service / "domain.py"
    assert path.exists(), f"{service} has no domain.py"
    bad = [
        where(path, line) + f" imports {name}"
        for line, name in imports(path)
        if not (name in DOMAIN_STDLIB or _within(name, "shared.contracts", "shared.domain"))
    ]
    assert not bad, bad


# `records` works on the whole log for the rectorat: it may read a service only through what the service
# exposes (its tables, its queries and reports, its pure domain, its settings, its migrations' place).
RECORDS = "records"
SERVICES_PROPER = [s for s in SERVICE_NAMES if s != RECORDS]
PUBLIC_MODULES = {"views", "queries", "domain", "affelnet", "settings", "app", "purge"}
# What records may take from a service's app module: the migrations' folder (rebuild migrates a fresh copy).
PUBLIC_NAMES = {"app": {"MIGRATIONS"}}


@pytest.mark.parametrize("service", SERVICES_PROPER)
def test_services_never_import_each_other_nor_the_records(service):
    bad = []
    for path in python_files("services", service):
        for line, name in imports(path):
            parts = name.split(".")
            if parts[0] == "services" and len(parts) > 1 and parts[1] != service:
                bad.append(where(path, line) + f" imports {name}")
    assert not bad, bad


def records_reaches_into_a_service(name: str) -> bool:
    """True when `name` (imported by records) is a service's module or name that the service does not expose."""
    parts = name.split(".")
    if parts[0] != "services" or len(parts) < 2 or parts[1] == RECORDS:
        return False
    if parts[1] not in SERVICES_PROPER:
        return True  # the CLI, the demo: the composition root is above records
    if len(parts) == 2:
        return False  # `from services.scoring import views`: the module itself is judged on its own line
    module = parts[2]
    if module not in PUBLIC_MODULES:
        return True
    return len(parts) > 3 and module in PUBLIC_NAMES and parts[3] not in PUBLIC_NAMES[module]


def test_the_records_rule_sees_a_private_module_and_a_private_name():
    assert records_reaches_into_a_service("services.scoring.pages")
    assert records_reaches_into_a_service("services.scoring.app.create_app")
    assert records_reaches_into_a_service("services.cli.common")
    assert not records_reaches_into_a_service("services.scoring.app.MIGRATIONS")
    assert not records_reaches_into_a_service("services.registration.views.purge_campaign")


@pytest.mark.parametrize("path", python_files("services", RECORDS), ids=lambda p: str(p.relative_to(ROOT)))
def test_records_import_services_only_through_what_they_expose(path):
    bad = [where(path, line) + f" imports {name}" for line, name in imports(path) if records_reaches_into_a_service(name)]
    assert not bad, bad


def test_only_the_composition_root_lives_beside_the_services():
    loose = {p for p in (ROOT / "services").glob("*.py") if p.name != "__init__.py"}
    loose |= {p for p in (ROOT / "services").iterdir() if p.is_dir() and p.name not in SERVICE_NAMES and p.name != "__pycache__"}
    assert loose <= COMPOSITION_ROOT, sorted(str(p.relative_to(ROOT)) for p in loose - COMPOSITION_ROOT)


# --- nothing is built at import time -----------------------------------------------------------------


def _called_name(call: ast.Call) -> str | None:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def module_level_builders(tree: ast.Module) -> list[tuple[int, str]]:
    """Builder calls that run at import: in the module's (and its classes') statements, outside functions."""
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            return
        if isinstance(node, ast.Call):
            name = _called_name(node)
            if name in BUILDERS or (name or "").endswith("Settings"):
                found.append((node.lineno, name))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


@pytest.mark.parametrize(
    "path",
    [p for p in python_files("shared") + python_files("services") if "migrations" not in p.parts],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_no_engine_client_app_or_settings_is_built_at_import_time(path):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    bad = [where(path, line) + f" calls {name}() at import time" for line, name in module_level_builders(tree)]
    assert not bad, bad


# --- no import cycle, and the layers in one order ----------------------------------------------------

GRAPH_PACKAGES = ("shared", "services", "bench")
# Lower never imports higher; a module's room is the longest that holds it. shared/fr (the French catalogue)
# sits above the domain it names and below the runtime and pages that speak it; bench drives the services
# (and borrows the CLI's helpers: an app factory, the embedded Redis); only `passpro bench` imports bench.
LAYERS = (
    "shared.contracts", "shared.domain", "shared.fr", "shared.runtime", "shared.web", "services", "bench",
    "services.cli.bench",
)
ENTRY_POINTS = {"services.cli", "services.cli.__main__"}  # `passpro`'s dispatcher: above every room


def import_graph(files: dict[str, Path] | None = None, sources: dict[str, str] | None = None) -> dict[str, set[str]]:
    """module -> the modules of ours it imports (anywhere in the file, lazy imports included: a cycle broken
    only by a function-level import is still a cycle of meaning)."""
    if files is None:
        files = {module_name(p): p for part in GRAPH_PACKAGES for p in python_files(part)}
    sources = sources or {}

    def resolve(name: str) -> str | None:  # `shared.x.y.Name` -> the module `shared.x.y`
        parts = name.split(".")
        while parts and ".".join(parts) not in files:
            parts.pop()
        return ".".join(parts) or None

    def targets(module: str, path: Path) -> set[str]:
        by_line: dict[int, set[str]] = {}
        for line, name in imports(path, sources.get(module)):
            if (m := resolve(name)) and m != module:
                by_line.setdefault(line, set()).add(m)
        # `from services.cli import common` imports the module `common`, not the package's own code: a parent
        # package runs first on every import, so it is never an edge (else every package would be a cycle).
        return {m for found in by_line.values() for m in found if not any(o.startswith(m + ".") for o in found)}

    return {module: targets(module, path) for module, path in files.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component (Tarjan), each as a path `a -> b -> ... -> a`."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(component)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    found = []
    for component in components:  # the shortest way back to the component's first module, for the message
        start = min(component)
        paths = {start: [start]}
        queue = [start]
        while queue:
            v = queue.pop(0)
            for w in sorted(graph[v] & component):
                if w == start:
                    found.append(paths[v] + [start])
                    queue = []
                    break
                if w not in paths:
                    paths[w] = paths[v] + [w]
                    queue.append(w)
    return sorted(found)


def layer(module: str) -> int | None:
    if module in ENTRY_POINTS:
        return len(LAYERS)
    rooms = [room for room in LAYERS if _within(module, room)]
    return LAYERS.index(max(rooms, key=len)) if rooms else None


def test_the_cycle_finder_names_a_cycle_even_through_a_lazy_import():
    probe = {name: ROOT / (name.replace(".", "/") + ".py") for name in ("bench.a", "bench.b", "bench.c")}
    sources = {"bench.a": "from bench import b\n", "bench.b": "def f():\n    from bench.c import x\n", "bench.c": "import bench.a\n"}
    assert cycles(import_graph(probe, sources)) == [["bench.a", "bench.b", "bench.c", "bench.a"]]
    sources["bench.c"] = "import shared\n"
    assert cycles(import_graph(probe, sources)) == []
    sources["bench.c"] = "from bench import a\n"  # a submodule named in a from-import: an edge to it
    assert cycles(import_graph(probe, sources)) == [["bench.a", "bench.b", "bench.c", "bench.a"]]


def test_no_import_cycle_in_shared_services_nor_bench():
    found = [" -> ".join(cycle) for cycle in cycles(import_graph())]
    assert not found, found


def test_every_module_has_a_layer_and_never_imports_a_higher_one():
    graph = import_graph()
    homeless = sorted(m for m in graph if layer(m) is None and m not in GRAPH_PACKAGES and m != "shared")
    assert not homeless, f"modules in no room of LAYERS: {homeless}"
    upward = sorted(
        f"{module} imports {target}"
        for module, targets in graph.items()
        for target in targets
        if layer(module) is not None and layer(target) is not None and layer(target) > layer(module)
    )
    assert not upward, upward
