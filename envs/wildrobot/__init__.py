"""WildRobot on MuJoCo MJX: model, constants, base env, tasks, rewards, randomization."""
