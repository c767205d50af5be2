"""The architecture, checked: chalicelib never imports Chalice, the core never imports
its surfaces, and no framework is imported before an engine is chosen."""

from __future__ import annotations

import ast
import importlib
import importlib.abc
import pkgutil
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType

import pytest

import chalicelib
from chalicelib.engines.registry import ENGINES
from layer_build.flavors import FLAVORS

CHALICELIB = Path(chalicelib.__file__).resolve().parent
SOURCES = sorted(CHALICELIB.rglob("*.py"))
FRAMEWORKS = ("tensorflow", "keras", "ai_edge_litert", "onnxruntime", "tf2onnx", "onnx")
#: The users' Keras code (custom layers): it imports Keras at the top by nature, so it
#: may be imported only inside the Keras engine's functions (and by modelops).
USER_KERAS_CODE = "chalicelib.custom_objects"
CORE_SOURCES = [p for p in SOURCES if p != CHALICELIB / "custom_objects.py"]


def module_name(path: Path) -> str:
    parts = path.relative_to(CHALICELIB.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(tree: ast.AST, package: str) -> Iterator[tuple[str, ast.stmt]]:
    """Every module an import statement in `tree` names (relative ones resolved)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from ((alias.name, node) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            yield base, node
            yield from ((f"{base}.{alias.name}", node) for alias in node.names)


def within(name: str, roots: Sequence[str]) -> bool:
    return any(name == root or name.startswith(f"{root}.") for root in roots)


def imports_of(path: Path) -> list[tuple[str, ast.stmt]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    return list(imported_names(tree, package))


def test_the_sources_were_found() -> None:
    names = {module_name(p) for p in SOURCES}
    assert {"chalicelib.store", "chalicelib.surfaces.rest", "chalicelib.engines.registry"} <= names


@pytest.mark.parametrize("path", SOURCES, ids=module_name)
def test_no_chalicelib_module_imports_chalice(path: Path) -> None:
    assert [name for name, _ in imports_of(path) if within(name, ["chalice"])] == []


@pytest.mark.parametrize(
    "path", [p for p in SOURCES if "surfaces" not in p.relative_to(CHALICELIB).parts],
    ids=module_name,
)  # fmt: skip
def test_the_core_does_not_import_its_surfaces(path: Path) -> None:
    assert [n for n, _ in imports_of(path) if within(n, ["chalicelib.surfaces"])] == []


@pytest.mark.parametrize("path", CORE_SOURCES, ids=module_name)
def test_frameworks_are_imported_only_inside_functions(path: Path) -> None:
    tree = ast.parse(path.read_text())
    top_level: list[ast.stmt] = [
        node for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)
    ]
    names = list(imported_names(ast.Module(body=top_level, type_ignores=[]), ""))
    assert [name for name, _ in names if within(name, FRAMEWORKS)] == []


class _Refuse(importlib.abc.MetaPathFinder):
    """Fails any import of the named top-level packages, recording the attempt."""

    def __init__(self, roots: Sequence[str]) -> None:
        self.roots = roots
        self.attempts: list[str] = []

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> None:
        if within(fullname, self.roots):
            self.attempts.append(fullname)
            raise ImportError(f"{fullname} is refused by the architecture test")


def test_every_chalicelib_module_imports_without_chalice_or_a_framework() -> None:
    """Imports each module afresh, in this process, with chalice and the frameworks
    made unimportable; sys.modules is restored afterwards."""
    refused = ("chalice", *FRAMEWORKS)
    saved = dict(sys.modules)
    refuse = _Refuse(refused)
    for name in [n for n in sys.modules if within(n, ["chalicelib", *refused])]:
        del sys.modules[name]
    sys.meta_path.insert(0, refuse)
    try:
        fresh: list[ModuleType] = [importlib.import_module("chalicelib")]
        for info in pkgutil.walk_packages(fresh[0].__path__, "chalicelib."):
            if info.name != USER_KERAS_CODE:
                fresh.append(importlib.import_module(info.name))
    finally:
        sys.meta_path.remove(refuse)
        for name in set(sys.modules) - set(saved):
            del sys.modules[name]
        sys.modules.update(saved)
    assert {m.__name__ for m in fresh} == {module_name(p) for p in CORE_SOURCES}
    assert refuse.attempts == []


def test_custom_objects_are_imported_only_inside_the_keras_engines_functions() -> None:
    importers = {
        module_name(path): node
        for path in CORE_SOURCES
        for name, node in imports_of(path)
        if within(name, [USER_KERAS_CODE])
    }
    assert list(importers) == ["chalicelib.engines.keras_engine"]
    assert importers["chalicelib.engines.keras_engine"].col_offset > 0  # inside a function


def test_every_registered_engine_has_a_loader_and_a_proof_fixture() -> None:
    fixtures = CHALICELIB.parent / "layer_build" / "fixtures"
    for spec in ENGINES.values():
        module, _, cls = spec.factory.partition(":")
        assert callable(getattr(importlib.import_module(module), cls).from_file)
        assert (fixtures / f"tiny{spec.suffixes[0]}").is_file(), spec.kind


def test_every_flavor_runs_only_registered_engines() -> None:
    for flavor in FLAVORS.values():
        assert set(flavor.engines) <= set(ENGINES), flavor.name
