"""The two Lambda layers: the nutrimatch core package, and its third-party dependencies.

The dependency layer is built by pip on this machine, never in Docker: pip downloads the manylinux wheels
for the Lambda runtime's Python and CPU, whatever Python and OS run the synth.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.constructs import PROJECT_ROOT

# The layer's wheels are chosen for this runtime and CPU, so every function uses exactly these two.
RUNTIME = lambda_.Runtime.PYTHON_3_12
ARCHITECTURE = lambda_.Architecture.X86_64
PIP_PLATFORM = "manylinux2014_x86_64"
PIP_PYTHON_VERSION = RUNTIME.name.removeprefix("python")

CORE_LAYER_DIR = PROJECT_ROOT / "layers" / "core"
PYPROJECT = PROJECT_ROOT / "pyproject.toml"
ASSET_EXCLUDES = ["__pycache__", "*.pyc", "*.egg-info"]


def runtime_requirements(pyproject: Path = PYPROJECT) -> list[str]:
    """The `[project.dependencies]` of pyproject.toml: what the handlers and the core import at run time."""
    with pyproject.open("rb") as file:
        requirements: list[str] = tomllib.load(file)["project"]["dependencies"]
    return requirements


@jsii.implements(ILocalBundling)
class PipInstallLocally:
    """Bundles the layer with this interpreter's pip; it never declines, so CDK never falls back to Docker."""

    def __init__(self, requirements: list[str]) -> None:
        self.requirements = requirements
        # Everything that decides what pip installs (the interpreter running pip and the output directory do
        # not), hence also what the asset hash is made of.
        self.arguments = [
            "--platform", PIP_PLATFORM,
            "--only-binary=:all:",
            "--python-version", PIP_PYTHON_VERSION,
            *requirements,
        ]  # fmt: skip

    def pip_command(self, output_dir: str) -> list[str]:
        return [
            sys.executable, "-m", "pip", "install",
            "--target", str(Path(output_dir) / "python"),  # the directory Lambda puts on sys.path
            "--no-compile",  # .pyc files made by this interpreter would not match the runtime's
            "--disable-pip-version-check",
            "--quiet",
            *self.arguments,
        ]  # fmt: skip

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.arguments).encode()).hexdigest()

    # jsii hands over the BundlingOptions struct as one positional argument, while the Python protocol spells
    # its fields out as keywords; none of them matter here.
    def try_bundle(self, output_dir: str, *_options: Any, **_keywords: Any) -> bool:
        subprocess.run(self.pip_command(output_dir), check=True)
        return True


class Layers(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)

        # layers/core/python/nutrimatch is already the layer layout: Lambda adds /opt/python to sys.path.
        self.core = lambda_.LayerVersion(
            self,
            "Core",
            description="nutrimatch core package",
            code=lambda_.Code.from_asset(str(CORE_LAYER_DIR), exclude=ASSET_EXCLUDES),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
        )

        bundler = PipInstallLocally(runtime_requirements())
        self.dependencies = lambda_.LayerVersion(
            self,
            "Dependencies",
            description="nutrimatch third-party dependencies (pyproject [project.dependencies])",
            code=lambda_.Code.from_asset(
                # pip reads nothing from the source directory; the hash below stands for the whole input,
                # so the project is never fingerprinted and, when bundling is skipped, never copied.
                str(PROJECT_ROOT),
                asset_hash_type=AssetHashType.CUSTOM,
                asset_hash=bundler.fingerprint(),
                bundling=BundlingOptions(
                    # Required by the API but never pulled: PipInstallLocally always bundles.
                    image=DockerImage.from_registry("nutrimatch/docker-bundling-is-not-used"),
                    local=bundler,
                ),
            ),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
        )

    @property
    def all(self) -> list[lambda_.ILayerVersion]:
        return [self.dependencies, self.core]
