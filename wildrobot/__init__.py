"""WildRobot Train: shared core (job specs, wire types) imported by every role."""

__version__ = "0.1.0"
