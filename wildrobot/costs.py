"""What one job may cost: bounds a deployment can raise, checked where jobs are admitted.

A spec's fields each have a sane range (wildrobot.specs); these bound their products, which is
where cost hides: env steps per training iteration (the rollout and SGD buffers), the evaluation
buffer, physics substeps per control step, and the hosts (processes, one GPU each on Kubernetes)
a job starts at once. The front end checks every submitted job (dry-runs
too) against its configured limits (`wildrobot-server --max-env-steps-per-iteration ...`, or
WILDROBOT_MAX_* variables) and refuses the rest with INVALID_ARGUMENT naming the rule.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from wildrobot import task_settings
from wildrobot.specs import MAX_HOSTS, MamlSpec, PpoSpec

# 2^24: e.g. 8192 envs x 32 minibatches x 64-step unrolls; 4096 eval envs x 4096 steps.
DEFAULT_MAX_ENV_STEPS_PER_ITERATION = 16_777_216
DEFAULT_MAX_EVAL_ENV_STEPS = 16_777_216
DEFAULT_MAX_SUBSTEPS = 20  # 1 ms physics at 50 Hz control
# Hosts one job may start at once (spec.num_hosts): one unless the deployment has the pool for
# more (deploy/README "Sizing the pool for multi-host jobs").
DEFAULT_MAX_HOSTS = 1


class CostLimits(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    max_env_steps_per_iteration: int = Field(DEFAULT_MAX_ENV_STEPS_PER_ITERATION, ge=1)
    max_eval_env_steps: int = Field(DEFAULT_MAX_EVAL_ENV_STEPS, ge=1)
    max_substeps: int = Field(DEFAULT_MAX_SUBSTEPS, ge=1)
    max_hosts: int = Field(DEFAULT_MAX_HOSTS, ge=1, le=MAX_HOSTS)


class CostLimitExceeded(ValueError):
    """A spec asks for more than a limit allows; `field` names the spec field to change."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def check_cost(spec: PpoSpec, limits: CostLimits) -> None:
    """Raises CostLimitExceeded for the first limit the spec exceeds."""
    if spec.num_hosts > limits.max_hosts:
        raise CostLimitExceeded(
            "num_hosts",
            f"num_hosts {spec.num_hosts} is above the limit {limits.max_hosts} hosts per job "
            "on this deployment (max_hosts)",
        )
    per_iteration = spec.env_steps_per_iteration
    if per_iteration > limits.max_env_steps_per_iteration:
        raise CostLimitExceeded(
            "batch_size",
            f"batch_size * num_minibatches * unroll_length = {per_iteration} env steps per "
            f"iteration is above the limit {limits.max_env_steps_per_iteration} "
            "(max_env_steps_per_iteration)",
        )
    eval_steps = spec.num_eval_envs * spec.episode_length
    if spec.eval_every and eval_steps > limits.max_eval_env_steps:
        raise CostLimitExceeded(
            "num_eval_envs",
            f"num_eval_envs * episode_length = {eval_steps} env steps per evaluation is above "
            f"the limit {limits.max_eval_env_steps} (max_eval_env_steps)",
        )
    substeps = task_settings.num_substeps(spec.task, spec.env_overrides)
    if substeps > limits.max_substeps:
        raise CostLimitExceeded(
            "env_overrides",
            f"ctrl_dt / sim_dt = {substeps} physics substeps per control step is above the "
            f"limit {limits.max_substeps} (max_substeps)",
        )


def check_maml_cost(spec: MamlSpec, limits: CostLimits) -> None:
    """A maml job's env steps per outer iteration (pre- and post-adaptation episodes of every
    task) against the same limit as a PPO iteration's."""
    per_iteration = spec.env_steps_per_iteration
    if per_iteration > limits.max_env_steps_per_iteration:
        raise CostLimitExceeded(
            "episodes_per_task",
            f"2 * tasks_per_batch * episodes_per_task * episode_length = {per_iteration} env "
            f"steps per iteration is above the limit {limits.max_env_steps_per_iteration} "
            "(max_env_steps_per_iteration)",
        )
