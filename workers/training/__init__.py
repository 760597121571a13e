"""PPO training engine (jitted Brax-based loop) that workers run for `ppo` jobs."""

from wildrobot.quiet_imports import import_mjx

import_mjx()
