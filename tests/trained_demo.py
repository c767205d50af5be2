"""`make serve`'s demo model (modelops.train's defaults: 50,000 rows, 15 epochs, seed 7),
trained once per hash of the training code into the cache outside the checkout (like the
runtimes; about three minutes the first time), so the docs' outputs can be compared."""

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


def demo_key() -> str:
    digest = hashlib.sha256()
    for name in TRAINING_SOURCES:
        digest.update(name.encode() + b"\0" + (PROJECT_DIR / name).read_bytes())
    return digest.hexdigest()[:16]


def trained_demo() -> Path:
    """The folder modelops.train wrote (model.keras, labels.json, holdout.csv, ...)."""

    def train(staging: Path) -> None:
        env = {**os.environ, "TMPDIR": str(staging)}
        subprocess.run([sys.executable, "-m", "modelops.train", "--out", str(staging / "model")],
                       check=True, stdout=subprocess.DEVNULL, cwd=PROJECT_DIR,
                       env=env)  # fmt: skip

    entry = user_cache_dir() / "trained-models" / f"demo-{demo_key()}"
    return built_once(entry, train) / "model"
