"""The engine must stay usable without Django: workers, the CLI and notebooks import it alone."""

import ast
import subprocess
import sys
from pathlib import Path

PIPELINE = Path(__file__).resolve().parent.parent / "experiments" / "pipeline"
FORBIDDEN = (
    "django",
    "ninja",
    "django_rq",
    "experiments.models",
    "experiments.views",
    "experiments.jobs.tasks",
    "experiments.index.sync",
    "experiments.api",
)


def imported_modules(source):
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def test_no_pipeline_module_imports_django_or_the_web_app():
    offenders = [
        f"{path.name} imports {module}"
        for path in sorted(PIPELINE.rglob("*.py"))
        for module in imported_modules(path.read_text())
        if module.split(".")[0] in FORBIDDEN
        or module in FORBIDDEN
        or any(module.startswith(f + ".") for f in FORBIDDEN)
    ]
    assert offenders == []


def test_importing_every_pipeline_module_loads_no_django():
    modules = [f"experiments.pipeline.{path.stem}" for path in sorted(PIPELINE.glob("*.py")) if path.stem != "__init__"]
    code = "import sys, importlib\n" + "".join(f"importlib.import_module({m!r})\n" for m in modules)
    code += (
        "bad = sorted(m for m in sys.modules if m == 'django' or m.startswith('django.'))\n"
        "print(bad)\nsys.exit(1 if bad else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=PIPELINE.parent.parent, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
