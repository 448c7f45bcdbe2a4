"""One construct per concern; `infra/app.py` composes them into the stack.

Imported as `infra.constructs`, never as a top-level `constructs` (that name belongs to the CDK library).
"""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
