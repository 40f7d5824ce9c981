"""What may import what (STYLE.md), and nothing built at import time: checked on the source with `ast`."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OUR_PACKAGES = ("shared", "services")
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
                # `from services import registration` imports the subpackage, too.
                found += [(node.lineno, f"{node.module}.{a.name}") for a in node.names if node.module in OUR_PACKAGES]
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


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_a_domain_imports_only_the_contracts_and_a_little_standard_library(service):
    path = ROOT / "services" / service / "domain.py"
    assert path.exists(), f"{service} has no domain.py"
    bad = [
        where(path, line) + f" imports {name}"
        for line, name in imports(path)
        if not (name in DOMAIN_STDLIB or _within(name, "shared.contracts", "shared.domain"))
    ]
    assert not bad, bad


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_services_never_import_each_other(service):
    bad = []
    for path in python_files("services", service):
        for line, name in imports(path):
            parts = name.split(".")
            if parts[0] == "services" and len(parts) > 1 and parts[1] != service:
                bad.append(where(path, line) + f" imports {name}")
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
