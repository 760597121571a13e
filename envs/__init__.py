"""WildRobot Train: envs role."""
