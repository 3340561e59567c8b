"""The README stays true: every environment variable the settings read is documented there."""

import re

from tests.helpers import ROOT


def settings_variables():
    source = (ROOT / "gymnos_web" / "settings.py").read_text()
    found = set(re.findall(r"""env\w*\(\s*["']([A-Z][A-Z0-9_]+)["']""", source))
    found |= set(re.findall(r"""os\.environ(?:\.get)?[\(\[]\s*["']([A-Z][A-Z0-9_]+)["']""", source))
    return found


def test_every_setting_variable_is_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    variables = settings_variables()
    assert {"DATABASE_URL", "SECRET_KEY", "GYMNOS_TRAININGS_ROOT"} <= variables
    assert sorted(name for name in variables if f"`{name}`" not in readme) == []


def test_the_readme_starts_with_the_two_set_up_commands():
    readme = (ROOT / "README.md").read_text()
    commands = [line.strip() for line in readme.splitlines() if line.startswith("    python3 -m venv")]
    assert "manage.py up --enqueue examples/" in commands[0]  # an example that trains long enough to watch
    assert commands[1].endswith("scripts/test")
    assert "scripts/test" in (ROOT / ".ci" / "run").read_text()
