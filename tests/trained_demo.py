"""Trained models, each trained once per hash of the training code and its arguments into
the cache outside the checkout (like the runtimes): `make serve`'s demo model
(modelops.train's defaults: 50,000 rows, 15 epochs, seed 7; seconds on an idle machine the
first time, minutes under load), so the docs' outputs can be compared, and the suite's
small test model (seconds, but every run and both test targets start by waiting for it)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from layer_build.cache import built_once
from project_paths import PROJECT_DIR, user_cache_dir

#: What decides the demo model's weights.
TRAINING_SOURCES = ("modelops/train.py", "modelops/dataset.py", "modelops/demo_data.py",
                    "modelops/loan_schema.json", "modelops/loan_schema.py",
                    "requirements/dev.txt")  # fmt: skip


def training_key(args: tuple[str, ...] = ()) -> str:
    digest = hashlib.sha256()
    for name in TRAINING_SOURCES:
        digest.update(name.encode() + b"\0" + (PROJECT_DIR / name).read_bytes())
    for arg in args:
        digest.update(b"\0arg\0" + arg.encode())
    return digest.hexdigest()[:16]


def trained(name: str, args: tuple[str, ...] = ()) -> Path:
    """The folder `modelops.train ARGS` wrote (model.keras, labels.json, holdout.csv, ...)."""

    def train(staging: Path) -> None:
        env = {**os.environ, "TMPDIR": str(staging)}
        subprocess.run([sys.executable, "-m", "modelops.train", "--out", str(staging / "model"),
                        *args], check=True, stdout=subprocess.DEVNULL, cwd=PROJECT_DIR,
                       env=env)  # fmt: skip

    entry = user_cache_dir() / "trained-models" / f"{name}-{training_key(args)}"
    return built_once(entry, train) / "model"


def trained_demo() -> Path:
    """`make serve`'s demo model."""
    return trained("demo")


#: The suite's small loan-grade model (tests/conftest.py's `model_dir`).
TEST_MODEL_ARGS = ("--rows", "4000", "--epochs", "4", "--seed", "11")
