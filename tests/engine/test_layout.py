"""The import boundary of the layout in docs/engine.md ("Where things live").

- Below ``engine/api.py`` nothing imports ``dsl/`` beyond the rule tree, the errors and
  the schema: compiling is ``dsl/``'s job, and the engine prices what it was given.
- No module imports another module's private (``_``-prefixed) names.
- Every module sits in one of the packages the layout names.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("dsl", "engine", "server")
ENGINE_MAY_IMPORT_FROM_DSL = {"dsl.tree", "dsl.errors", "dsl.schema"}
ENGINE_PACKAGES = {"core", "plan", "pricing", "results", "ledger", "orders", "batch"}


def modules() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, module, names) of every import in a file, nested ones included."""
    out: list[tuple[int, str, list[str]]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            out.append((node.lineno, node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            out.extend((node.lineno, a.name, []) for a in node.names)
    return out


def dsl_module(module: str, names: list[str]) -> list[str]:
    """The dsl modules an import reaches (``from dsl import tree`` reaches ``dsl.tree``)."""
    if module == "dsl":
        return [f"dsl.{n}" for n in names]
    return [module] if module.startswith("dsl.") else []


def test_below_the_api_the_engine_reads_only_the_tree_errors_and_schema_of_dsl() -> None:
    crossings = []
    for path in modules():
        rel = path.relative_to(ROOT)
        if rel.parts[0] != "engine" or rel == Path("engine/api.py"):
            continue
        for line, module, names in imports(path):
            for reached in dsl_module(module, names):
                if reached not in ENGINE_MAY_IMPORT_FROM_DSL:
                    crossings.append(f"{rel}:{line} imports {reached}")
    assert crossings == []


def test_no_module_imports_another_modules_private_names() -> None:
    private = []
    for path in [
        *modules(),
        *sorted((ROOT / "tests").rglob("*.py")),
        *sorted((ROOT / "bench").rglob("*.py")),
    ]:
        rel = path.relative_to(ROOT)
        for line, module, names in imports(path):
            if module.split(".")[0] not in PACKAGES:
                continue
            private += [
                f"{rel}:{line} imports {module}.{n}"
                for n in names
                if n.startswith("_") and not n.startswith("__")
            ]
    assert private == []


def test_every_engine_module_sits_in_a_package_of_the_layout() -> None:
    stray = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "engine").rglob("*.py")
        if p.parent != ROOT / "engine" and p.parent.name not in ENGINE_PACKAGES
    ]
    top = sorted(p.name for p in (ROOT / "engine").glob("*.py"))
    assert stray == []
    assert top == ["__init__.py", "api.py"]


@pytest.mark.parametrize("package", sorted(ENGINE_PACKAGES))
def test_each_package_says_what_it_holds(package: str) -> None:
    init = ROOT / "engine" / package / "__init__.py"
    doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
    assert doc is not None and len(doc) > 20


def test_the_boundary_check_sees_a_crossing(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from dsl.check import check\nfrom dsl import tree as t, parser\nfrom engine.ledger.store import _quoted\n"
    )
    found = imports(probe)
    assert [r for line, m, n in found for r in dsl_module(m, n)] == [
        "dsl.check",
        "dsl.tree",
        "dsl.parser",
    ]
    assert [n for _, m, names in found if m == "engine.ledger.store" for n in names] == ["_quoted"]
