"""Named PPO recipes: spec fields for a task at a scale (`submit ppo --preset walk-gpu`).

A preset fills spec fields; what the user sets explicitly wins, field by field (env_overrides
merge key by key). The `-cpu` recipes are what bench/learning.py and the slow learning tests
train with on a 2-core CPU; the `-gpu` recipes follow MuJoCo Playground's biped joystick
settings (thousands of envs, 1000-step episodes, bigger networks) and are the starting point on
one GPU; they were not run on a GPU in this project's CI (no GPU there).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_WALK_CPU_COMMANDS = {
    # Mostly forward walking, some turning and standing: what a CPU budget can learn.
    "command.vx": (0.0, 0.5),
    "command.vy": (-0.1, 0.1),
    "command.yaw_rate": (-0.5, 0.5),
    "command.zero_probability": 0.1,
    "command.resample_steps": 200,
}

# One GPU: 4096 envs, 256 x 32 = 8192 sequences of 20 steps (two unrolls per env) per iteration.
_GPU_BATCH = {
    "num_envs": 4096,
    "batch_size": 256,
    "num_minibatches": 32,
    "unroll_length": 20,
    "num_updates_per_batch": 4,
    "episode_length": 1000,
}

WALK_CPU: dict[str, Any] = {
    "task": "WildRobotWalk",
    "num_envs": 256,
    "batch_size": 256,
    "num_minibatches": 8,
    "unroll_length": 20,
    "num_updates_per_batch": 4,
    "episode_length": 500,
    "num_timesteps": 20_000_000,
    "learning_rate": 1e-3,
    "entropy_cost": 1e-3,
    "discounting": 0.97,
    "policy_hidden_sizes": (128, 128),
    "value_hidden_sizes": (128, 128),
    "checkpoint_every": 50,
    "env_overrides": _WALK_CPU_COMMANDS,
}

PRESETS: dict[str, dict[str, Any]] = {
    "walk-gpu": {
        "task": "WildRobotWalk",
        **_GPU_BATCH,
        "num_timesteps": 200_000_000,
        "learning_rate": 3e-4,
        "entropy_cost": 5e-3,
        "discounting": 0.97,
        "policy_hidden_sizes": (512, 256, 128),
        "value_hidden_sizes": (512, 256, 128),
        "checkpoint_every": 50,
    },
    "walk-cpu": WALK_CPU,
    # walk-cpu with an SSM policy (docs/ssm.md): 2 layers of 64 states, width 128; the value
    # network stays walk-cpu's MLP. unroll_length (20) is the truncated-BPTT window.
    "walk-cpu-ssm": {
        **WALK_CPU,
        "policy_arch": "ssm",
        "ssm_layers": 2,
        "ssm_state_size": 64,
        "ssm_width": 128,
    },
    "stand-gpu": {
        "task": "WildRobotStand",
        **_GPU_BATCH,
        "num_timesteps": 50_000_000,
        "learning_rate": 3e-4,
        "entropy_cost": 1e-3,
        "policy_hidden_sizes": (256, 256, 128),
        "value_hidden_sizes": (256, 256, 128),
    },
    # 4.1M steps with the learning rate decaying linearly to 0 (docs/learning: the final and the
    # best checkpoint fall in 3% of the evaluation's episodes; at a constant 1e-3 the periodic
    # evaluation wandered between 5% and 62% past 2M steps).
    "stand-cpu": {
        "task": "WildRobotStand",
        "num_envs": 128,
        "batch_size": 128,
        "num_minibatches": 4,
        "unroll_length": 20,
        "num_updates_per_batch": 4,
        "episode_length": 500,
        "num_timesteps": 4_096_000,
        "learning_rate": 1e-3,
        "learning_rate_schedule": "linear",
        "entropy_cost": 0.0,
        "policy_hidden_sizes": (128, 128),
        "value_hidden_sizes": (128, 128),
        "checkpoint_every": 1000,
    },
}


def apply_preset(name: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    """The preset's fields under `fields` (explicit fields win; env_overrides merge by key).

    Raises ValueError naming the known presets for an unknown name.
    """
    if name not in PRESETS:
        raise ValueError(f"preset: unknown {name!r} (known: {', '.join(PRESETS)})")
    merged = {**PRESETS[name], **fields}
    if "env_overrides" in PRESETS[name] or "env_overrides" in fields:
        merged["env_overrides"] = {
            **PRESETS[name].get("env_overrides", {}),
            **fields.get("env_overrides", {}),
        }
    return merged
