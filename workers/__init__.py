"""WildRobot Train: workers role."""
