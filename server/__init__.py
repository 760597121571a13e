"""WildRobot Train: server role."""
