"""WildRobot Train: envs role."""

from wildrobot.quiet_imports import import_mjx

import_mjx()
