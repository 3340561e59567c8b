"""What the build check's fork server loads before it forks any check (``isolated_check``).

Importing this module imports the frameworks and the engine (``preload``), collector paused:
each check's child then starts with them loaded. Only the fork server imports it. It says so in
its log (``checks.log``) once ready: one line per fork server started.
"""

import os
import sys

from .preload import import_frameworks

import_frameworks(also=("experiments.pipeline.isolated_check",))
print(f"Gymnos build checker {os.getpid()} ready", file=sys.stderr, flush=True)
