"""A web process compiles its pages before it says it is ready (``gymnos_web.warm``), so that the first visitors
after ``manage.py up`` do not wait behind the imports and template compiles of the first request."""

import json
import os
import subprocess
import sys

from tests.helpers import ROOT


def test_a_fresh_process_warmed_has_every_view_imported_and_every_template_compiled():
    templates = sorted(path.relative_to(ROOT / "templates").as_posix() for path in (ROOT / "templates").rglob("*.html"))
    script = (
        "import django, json, sys; django.setup();"
        "from gymnos_web.warm import warm_pages; print(warm_pages());"
        "from django.template import engines;"
        "loader = engines['django'].engine.template_loaders[0];"  # the cached loader
        "print(json.dumps(sorted({key.split(':')[0] for key in loader.get_template_cache})));"
        "print('experiments.views.executions' in sys.modules, 'experiments.api' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "gymnos_web.settings"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert int(out[0]) == len(templates)
    assert set(templates) <= set(json.loads(out[1]))
    assert out[2] == "True True"
