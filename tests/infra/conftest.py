import os

import pytest

# Read by the jsii kernel (node) when it starts, i.e. at the first aws_cdk import during collection: node 20
# is past its end of life for jsii, which says so in a banner on every run.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from tests.infra.synthesis import Synthesis


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synthesis:
    """NutrimatchStack synthesized once for every infra test (about 10 s), bundling skipped (no pip, no Docker)."""
    return Synthesis.run(tmp_path_factory.mktemp("cdk.out"))
