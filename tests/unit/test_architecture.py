"""The architecture, checked: chalicelib never imports Chalice, the core never imports
its surfaces, no framework is imported before an engine is chosen, and chalicelib has
no import cycle."""

from __future__ import annotations

import ast
import fnmatch
import importlib
import importlib.abc
import json
import pkgutil
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType

import pytest

import chalicelib
from chalicelib.engines.registry import ENGINES
from chalicelib.tasks import TASKS
from layer_build.flavors import FLAVORS
from tests.unit.import_graph import cycles, graph

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
    """A committed fixture, or a converter the layer proof makes one with (layer_build.proof)."""
    fixtures = CHALICELIB.parent / "layer_build" / "fixtures"
    for spec in ENGINES.values():
        module, _, cls = spec.factory.partition(":")
        assert callable(getattr(importlib.import_module(module), cls).from_file)
        committed = (fixtures / f"tiny{spec.suffixes[0]}").is_file()
        assert committed or spec.converter is not None, spec.kind
        if spec.converter is not None:
            module, _, function = spec.converter.partition(":")
            assert callable(getattr(importlib.import_module(module), function)), spec.kind


def test_every_flavor_runs_only_registered_engines() -> None:
    for flavor in FLAVORS.values():
        assert set(flavor.engines) <= set(ENGINES), flavor.name


def test_chalicelib_has_no_import_cycle() -> None:
    """Lazy imports inside functions count: they only postpone the cycle to a call."""
    assert cycles(graph(CHALICELIB.parent, "chalicelib")) == []


def test_the_cycle_check_finds_a_cycle_through_a_lazy_import(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("from pkg.sub import b\n")
    (package / "a.py").write_text("from pkg.sub.b import X\n")
    (package / "sub" / "b.py").write_text("X = 1\ndef f():\n    from pkg import a\n")
    (package / "c.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import a\n"
    )
    assert cycles(graph(tmp_path, "pkg")) == [["pkg.a", "pkg.sub", "pkg.sub.b"]]


# --- docs/architecture.md's "to add X, touch these files", checked against the code ---

PROJECT = CHALICELIB.parent
PRODUCT_DIRS = ("chalicelib", "modelops", "localdev", "deployment", "layer_build", "benchmarks")
#: Files that name an engine kind without having to change when one is added.
NAMES_AN_ENGINE_BUT_STAYS = {
    "chalicelib/config.py": "the default engine",
    "modelops/publish_inputs.py": "Keras files are what publish takes in",
    "modelops/publish.py": "the Keras file is every bundle's artifact; lite engines: the registry",
    "localdev/stack.py": "a Keras-only bundle is served locally with the Keras engine",
}
#: Files that name a task without having to change when one is added.
NAMES_A_TASK_BUT_STAYS = {
    "chalicelib/manifest.py": "the task of manifests written before tasks; the `heads` key",
    "localdev/stack.py": "`heads` is also the name of a make serve option",
}


def extension_rows() -> dict[str, tuple[list[str], int]]:
    """{"an engine": (files, count), ...} from the table under "To add X"."""
    text = (PROJECT / "docs" / "architecture.md").read_text()
    section = text.split("## To add X, touch these files", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, tuple[list[str], int]] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].startswith("a"):
            rows[cells[0]] = (re.findall(r"`([^`]+)`", cells[1]), int(cells[2]))
    return rows


def matches(listed: str, path: str) -> bool:
    return fnmatch.fnmatchcase(path, re.sub(r"<[^>]+>", "*", listed))


def product_files() -> list[Path]:
    return [p for d in PRODUCT_DIRS for p in (PROJECT / d).rglob("*.py")] + [PROJECT / "app.py"]


def files_naming(words: set[str]) -> set[str]:
    """Product files with a string literal equal to one of `words`."""
    found = set()
    for path in product_files():
        tree = ast.parse(path.read_text(), filename=str(path))
        if any(isinstance(n, ast.Constant) and n.value in words for n in ast.walk(tree)
               if isinstance(n, ast.Constant) and type(n.value) is str):  # fmt: skip
            found.add(str(path.relative_to(PROJECT)))
    return found


def test_the_extension_table_has_every_row_and_counts_its_files() -> None:
    rows = extension_rows()
    assert set(rows) == {"an engine", "a task", "a surface", "a metric", "a route"}
    for name, (files, count) in rows.items():
        assert len(files) == count == len(set(files)), name


@pytest.mark.parametrize("row", ["an engine", "a task", "a surface", "a metric", "a route"])
def test_every_file_the_extension_table_lists_exists(row: str) -> None:
    for listed in extension_rows()[row][0]:
        pattern = re.sub(r"<[^>]+>", "*", listed)
        assert list(PROJECT.glob(pattern)), listed


def _unlisted(row: str, words: set[str], staying: dict[str, str]) -> list[str]:
    listed = extension_rows()[row][0]
    return sorted(path for path in files_naming(words) - set(staying)
                  if not any(matches(entry, path) for entry in listed))  # fmt: skip


def test_every_file_naming_an_engine_kind_is_on_the_engine_row() -> None:
    words = {w for spec in ENGINES.values() for w in (spec.kind, spec.artifact, *spec.suffixes)}
    assert _unlisted("an engine", words, NAMES_AN_ENGINE_BUT_STAYS) == []


def test_every_file_naming_a_task_is_on_the_task_row() -> None:
    assert _unlisted("a task", set(TASKS), NAMES_A_TASK_BUT_STAYS) == []


#: Files declaring a `Surface` value off the surface row, and why.
DECLARES_A_SURFACE_BUT_STAYS = {
    "chalicelib/batch.py": "the batch worker counts each chunk it scores (`batch_chunk`)",
}


def test_every_file_declaring_a_surface_is_on_the_surface_row() -> None:
    listed = extension_rows()["a surface"][0]
    declaring = {
        str(path.relative_to(PROJECT)) for path in product_files()
        if "declare_surface(" in path.read_text() and path.name != "telemetry.py"
    }  # fmt: skip
    unlisted = {path for path in declaring - set(DECLARES_A_SURFACE_BUT_STAYS)
                if not any(matches(entry, path) for entry in listed)}  # fmt: skip
    assert declaring and unlisted == set()


def test_every_route_is_in_the_openapi_document_and_no_other() -> None:
    import app

    document = json.loads((CHALICELIB / "openapi.json").read_text())
    verbs = {"get", "post", "put", "patch", "delete"}
    documented = {(method.upper(), path) for path, methods in document["paths"].items()
                  for method in methods if method in verbs}  # fmt: skip
    routes = {(method, path) for path, methods in app.app.routes.items() for method in methods}
    assert routes == documented


# --- one answer per question: LATEST's reader and writer, missing-or-forbidden -------------


def _s3_calls_on_latest(path: Path) -> list[str]:
    """The S3 calls in `path` whose Key= is a `.pointer_key()`: reads or writes of LATEST."""
    calls = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        for keyword in node.keywords:
            if keyword.arg == "Key" and any(
                isinstance(n, ast.Attribute) and n.attr == "pointer_key"
                for n in ast.walk(keyword.value)
            ):
                calls.append(node.func.attr)
    return calls


def test_latest_has_one_reader_and_one_writer() -> None:
    found = {str(p.relative_to(PROJECT)): sorted(calls) for p in product_files()
             if (calls := _s3_calls_on_latest(p))}  # fmt: skip
    assert found == {"chalicelib/version_pointer.py": ["get_object", "put_object"]}


#: S3's error codes for a missing or forbidden object, and its statuses as codes.
_ABSENCE_CODES = {"NoSuchKey", "NotFound", "AccessDenied", "Forbidden", "404", "403"}
#: Tools that turn a bucket-level error into a user's one-line mistake (not an object's).
_BUCKET_LEVEL = {"modelops/cli_errors.py", "deployment/preflight.py"}


def test_one_function_decides_missing_or_forbidden() -> None:
    deciding = files_naming(_ABSENCE_CODES) - _BUCKET_LEVEL
    assert deciding == {"chalicelib/s3_errors.py"}


#: Modules that may touch os.environ besides chalicelib.config, and why.
_ENVIRONMENT_EXCEPTIONS = {
    "chalicelib.bundled_runtime": "runs before numpy can be imported: where to unpack it",
    "chalicelib.engines": "caps numpy's OpenBLAS threads before numpy is first imported",
    "chalicelib.engines.keras_engine": "sets TensorFlow's own variables before importing it",
    "chalicelib.engines.onnx_engine": "switches ONNX Runtime's telemetry off before importing it",
}


def test_configuration_is_read_from_the_environment_in_config_only() -> None:
    readers = set()
    for path in SOURCES:
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and node.attr in {"environ", "getenv"}
                    and isinstance(node.value, ast.Name) and node.value.id == "os"):  # fmt: skip
                readers.add(module_name(path))
    assert readers - set(_ENVIRONMENT_EXCEPTIONS) == {"chalicelib.config"}
