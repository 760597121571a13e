"""WildRobot Train: clients role."""
