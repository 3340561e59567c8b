"""What the build check's fork server loads before it forks any check (``isolated_check``).

Importing this module imports the frameworks and the engine (``preload``), collector paused:
each check's child then starts with them loaded. Only the fork server imports it.
"""

from .preload import import_frameworks

import_frameworks(also=("experiments.pipeline.isolated_check",))
