"""Lambda entry point of the escrow API: ``app.lambda_handler`` (the routes are in ``api.py``).

This file is imported two ways, and both must work:

- as ``functions.escrow_api.app`` (tests, the local stack): a package module, so the
  sibling modules' relative imports just work;
- as the top-level module ``app`` (Lambda, with ``CodeUri: functions/escrow_api/``: the
  folder's files sit at the task root and there is no parent package). Then this folder
  is loaded once as the package ``escrow_api``, so ``api.py``, ``service.py`` and the
  rest keep their relative imports.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

PACKAGE_IN_LAMBDA = "escrow_api"


def _api() -> ModuleType:
    if __package__:
        return importlib.import_module(".api", __package__)
    if PACKAGE_IN_LAMBDA not in sys.modules:
        here = Path(__file__).resolve().parent
        spec = importlib.util.spec_from_file_location(
            PACKAGE_IN_LAMBDA, here / "__init__.py", submodule_search_locations=[str(here)]
        )
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {here} as the package {PACKAGE_IN_LAMBDA}")
        package = importlib.util.module_from_spec(spec)
        sys.modules[PACKAGE_IN_LAMBDA] = package
        spec.loader.exec_module(package)
    return importlib.import_module(f"{PACKAGE_IN_LAMBDA}.api")


_module = _api()
app = _module.app
build_app = _module.build_app
get_service = _module.get_service
lambda_handler = _module.lambda_handler

__all__ = ["app", "build_app", "get_service", "lambda_handler"]
