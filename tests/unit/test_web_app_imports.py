"""The web app imports nothing from backend_services: it talks to the services only through
the wire protocol (letschat_protocol), so its image carries none of their code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Every module of letschat_app, imported with backend_services made unimportable.
SCRIPT = """
import importlib, importlib.abc, pkgutil, sys

class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "backend_services" or name.startswith("backend_services."):
            raise ImportError(f"the web app imported {name}")
        return None

sys.meta_path.insert(0, Refuse())
import letschat_app
names = [m.name for m in pkgutil.walk_packages(letschat_app.__path__, "letschat_app.")]
for name in names:
    importlib.import_module(name)
print(len(names))
"""


def test_every_web_app_module_imports_without_backend_services() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.split()[-1]) > 10, result.stdout  # It did find the modules.
