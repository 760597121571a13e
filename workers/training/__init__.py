"""PPO training engine (jitted Brax-based loop) that workers run for `ppo` jobs."""
