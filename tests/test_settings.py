"""gymnos_web.settings: reading the settings writes no file; the entry points make var/ and share one secret key."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def environment(var):
    """A fresh clone's environment, its var/ at ``var``: no SECRET_KEY, the default SQLite database."""
    env = {key: value for key, value in os.environ.items() if key not in {"SECRET_KEY", "DATABASE_URL"}}
    return {**env, "GYMNOS_VAR_DIR": str(var), "DJANGO_SETTINGS_MODULE": "gymnos_web.settings"}


def python(code, var):
    result = subprocess.run(
        [sys.executable, "-c", code], env=environment(var), cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def manage(var, *arguments):
    command = [sys.executable, str(ROOT / "manage.py"), *arguments]
    result = subprocess.run(command, env=environment(var), cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_importing_the_settings_and_setting_up_django_write_no_file(tmp_path):
    var = tmp_path / "var"
    key = python("import django; from django.conf import settings; django.setup(); print(settings.SECRET_KEY)", var)
    assert len(key.strip()) >= 50  # a key of its own, good for this process
    assert not var.exists()


def test_the_log_folder_is_made_by_the_first_line_logged(tmp_path):
    var = tmp_path / "var"
    python("import django, logging; django.setup(); logging.getLogger('experiments').warning('first line')", var)
    assert "first line" in (var / "log" / "gymnos.log").read_text()


def test_manage_py_saves_one_key_that_every_command_then_uses(tmp_path):
    var = tmp_path / "var"
    show_key = ["shell", "--verbosity", "0", "-c", "from django.conf import settings; print(settings.SECRET_KEY)"]
    first, second = manage(var, *show_key), manage(var, *show_key)
    saved = var / "secret_key"
    assert first == second == saved.read_text().strip() + "\n"
    assert saved.stat().st_mode & 0o777 == 0o600
    assert (var / "log").is_dir()
    assert (var / "static").is_dir()


def test_a_fresh_clone_checks_clean_without_a_secret_key(tmp_path):
    assert "no issues" in manage(tmp_path / "var", "check")
