"""Importing Lambda function modules (functions/<name>.py) by path, once per process."""

from __future__ import annotations

import importlib.util
import sys
import threading
from pathlib import Path
from types import ModuleType

_lock = threading.RLock()


def import_function_module(directory: Path, name: str) -> ModuleType:
    module_name = f"lambda_function_{name}"
    with _lock:
        module = sys.modules.get(module_name)
        if module is not None and Path(module.__file__ or "").parent == directory:
            return module
        path = directory / f"{name}.py"
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None or not path.exists():
            raise FileNotFoundError(path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
        return module
