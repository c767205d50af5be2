"""What the Lambda runtime can do without: pruning rules as data, each with its reason.

Globs are relative to the installed tree (site-packages layout). Every rule is
proven by importing and predicting in an isolated interpreter after it is applied.
"""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.engines.registry import ENGINES


@dataclass(frozen=True)
class PruneRule:
    name: str
    globs: tuple[str, ...]
    why: str
    flavors: tuple[str, ...] = ("lite", "tensorflow")


RULES: tuple[PruneRule, ...] = (
    PruneRule("console scripts", ("bin",),
              "entry-point scripts (f2py, tqdm, tensorboard...) are never imported"),
    PruneRule("stale bytecode", ("**/__pycache__",),
              "pip's bytecode is recompiled below, reproducibly",
              ("lite", "tensorflow", "unpacker")),
    PruneRule("installer metadata",
              ("*.dist-info/RECORD", "*.dist-info/INSTALLER", "*.dist-info/REQUESTED",
               "*.dist-info/direct_url.json", "*.dist-info/entry_points.txt"),
              "records of the pip install; METADATA and licences are kept"),
    PruneRule("tests", ("**/tests", "**/testing/_private", "**/*_test.py", "**/conftest.py"),
              "test suites are not imported by inference"),
    PruneRule("headers and static libraries", ("**/include", "**/*.h", "**/*.hpp", "**/*.a"),
              "C/C++ headers and static libs only matter when compiling extensions"),
    PruneRule("type stubs", ("**/*.pyi", "**/py.typed"), "type checkers only"),
    PruneRule("numpy build and typing tools",
              ("numpy/f2py", "numpy/typing/tests", "numpy/_pyinstaller", "numpy/doc",
               "numpy/distutils"),
              "Fortran wrapper generator, PyInstaller hooks, docs: never imported at run time"),
    PruneRule("LiteRT accelerators and plugins",
              ("ai_edge_litert/libLiteRtWebGpuAccelerator.so", "ai_edge_litert/vendors",
               "ai_edge_litert/aot", "ai_edge_litert/tools"),
              "GPU/NPU accelerators, vendor compiler plugins, AOT compiler and CLI tools: "
              "Lambda has CPUs only and the Interpreter API runs the built-in CPU kernels",
              ("lite",)),
    PruneRule("LiteRT tooling wrappers",
              tuple(f"ai_edge_litert/{name}.so" for name in (
                  "_pywrap_litert_converter", "_pywrap_analyzer_wrapper", "_pywrap_tfl_calibration",
                  "pywrap_genai_ops", "_pywrap_tensorflow_lite_calibration_wrapper",
                  "_pywrap_modify_model_interface")),
              "converter, analyzer, calibration and GenAI bindings; the interpreter needs none",
              ("lite",)),
    PruneRule("protobuf and flatbuffers",
              ("google/protobuf", "google/_upb", "protobuf-*.dist-info", "flatbuffers",
               "flatbuffers-*.dist-info"),
              "declared by LiteRT's and ONNX Runtime's wheels for their model tooling; "
              "neither interpreter imports them", ("lite",)),
    PruneRule("tqdm", ("tqdm", "tqdm-*.dist-info"),
              "progress bars for LiteRT's AOT tooling, which is pruned above", ("lite",)),
    PruneRule("TensorFlow C++ tooling",
              ("tensorflow/xla_aot_runtime_src", "tensorflow/include"),
              "sources and headers for AOT compilation and custom ops", ("tensorflow",)),
    PruneRule("libclang", ("clang", "libclang-*.dist-info"),
              "clang bindings TensorFlow uses to generate code at build time", ("tensorflow",)),
    PruneRule("packaging tools", ("setuptools", "setuptools-*.dist-info", "_distutils_hack",
                                  "distutils-precedence.pth", "wheel", "wheel-*.dist-info"),
              "installers; nothing installs at run time", ("tensorflow",)),
    PruneRule("zstandard CFFI backend",
              ("zstandard/_cffi*.so", "zstandard/backend_cffi.py", "zstandard/*.pyi",
               "zstandard/py.typed", "bin"),
              "the unpacker imports its C extension backend; CFFI is only a fallback",
              ("unpacker",)),
)  # fmt: skip


def engine_rules() -> list[PruneRule]:
    """Each engine's own pruning (the registry's `prune`), for the flavors carrying it."""
    return [
        PruneRule(prune.name, prune.globs, prune.why, spec.flavors)
        for spec in ENGINES.values()
        for prune in spec.prune
    ]


def rules_for(flavor: str) -> list[PruneRule]:
    return [rule for rule in (*RULES, *engine_rules()) if flavor in rule.flavors]
