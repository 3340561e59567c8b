"""Every read of a run folder's file goes through the one bounded reader, experiments/files.py.

A second reader would have to copy its rules (inside the folder, a regular file, at most the bytes
its caller states), and a copy is a hole waiting to be found. So outside files.py no module of the
web side, sync or the jobs opens a file for reading (``open``, ``os.open``, ``Path.read_bytes``...)
unless it is listed here with the reason it is not a run folder's file. Writes (a mode with w, a or x)
are another module's business (the no-follow module of destructive operations).

The engine (``experiments/pipeline``) is left out: it writes the run folder and reads back only what it
wrote itself (a checkpoint to resume from), and it imports nothing from Django, so not files.py either.
"""

import ast

from tests.helpers import ROOT

PACKAGES = ("experiments", "gymnos_web", "sweeps", "audit")
THE_READER = "experiments/files.py"
# Calls that open a file by its name or path, whatever module they come from.
OPENERS = {"open", "fdopen", "read_bytes", "read_text", "add_path"}
# (module, what it calls) -> why that file is not a run folder's.
ALLOWED = {
    (
        "gymnos_web/localstate.py",
        "(var / SECRET_KEY_FILE).read_text",
    ): "the secret key under var/, written by Gymnos itself",
    ("experiments/jobs/deaths.py", "open"): "the kernel's /proc/vmstat, to tell an out-of-memory kill",
    ("experiments/management/console.py", "open"): "up's own web.log, to echo the web server's errors",
    ("experiments/staticfiles.py", "stamp.read_text"): "the stamp collectstatic's wrapper writes under STATIC_ROOT",
    ("experiments/management/commands/up.py", "open"): "up's own web.log, to see the web processes start",
    ("experiments/management/commands/up.py", "Path(config_file).read_text"): "a config named on the command line",
    ("experiments/views/runs.py", "EXAMPLE.read_text"): "the example config that ships with the code",
    ("sweeps/management/commands/sweep.py", "Path(path).read_bytes"): "a sweep document named on the command line",
    ("experiments/index/stamps.py", "os.open"): (
        "an experiment's executions directory (O_DIRECTORY), opened only to stat its run folders relative to it"
    ),
    ("experiments/curation/trash.py", "_manifest(folder).read_text"): (
        "the trash's own manifest, which Gymnos writes when it moves a run there (the fileops helper's no-follow "
        "module owns the trash)"
    ),
}


def _is_write(call):
    """Whether a call's mode (second argument or ``mode=``) is a literal that writes."""
    mode = call.args[1] if len(call.args) > 1 else next((k.value for k in call.keywords if k.arg == "mode"), None)
    return isinstance(mode, ast.Constant) and isinstance(mode.value, str) and any(c in mode.value for c in "wax")


def _readers():
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = str(path.relative_to(ROOT))
            if "migrations" in path.parts or relative.startswith("experiments/pipeline/") or relative == THE_READER:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.Call):
                    continue
                function = node.func
                name = function.id if isinstance(function, ast.Name) else getattr(function, "attr", None)
                if name in OPENERS and not _is_write(node):
                    found.append((relative, node.lineno, ast.unparse(function)))
    return found


def test_no_module_but_files_py_opens_a_file_for_reading_unless_listed_with_its_reason():
    unlisted = [f"{module}:{line} {call}(...)" for module, line, call in _readers() if (module, call) not in ALLOWED]
    assert unlisted == [], "read a run folder's file through experiments.files (or list why this is not one)"


def test_every_listed_reason_still_has_its_reader():
    found = {(module, call) for module, _, call in _readers()}
    assert [entry for entry in ALLOWED if entry not in found] == []


def test_the_rule_sees_the_readers_it_is_meant_to_catch(tmp_path):
    """The ways a copied reader would open a file, as the rule parses them."""
    source = """
open(path, "rb").read()
open(path)
Path(path).read_bytes()
folder.joinpath("metrics.json").read_text()
os.fdopen(descriptor)
stream.add_path(real, name)
open(path, "a")
open(path, mode="wb")
"""
    calls = [node for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Call)]
    opened = sorted(
        ast.unparse(call.func)
        for call in calls
        if getattr(call.func, "id", getattr(call.func, "attr", None)) in OPENERS and not _is_write(call)
    )
    assert opened == sorted(
        [
            "open",
            "open",
            "Path(path).read_bytes",
            "folder.joinpath('metrics.json').read_text",
            "os.fdopen",
            "stream.add_path",
        ]
    )
