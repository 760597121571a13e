"""Job specs: one frozen pydantic model per job kind, shared by client, server and worker.

A spec carries typed, bounded parameters of a whitelisted job kind and nothing else (no paths to
execute, no code). The client builds it, the server validates it before anything is queued, the
worker consumes it. On the queue it travels as JSON (`spec.model_dump_json()`), never pickle.
"""

from __future__ import annotations

import enum
import json
import math
import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from wildrobot import dynamics_inputs, task_settings


class JobKind(enum.StrEnum):
    PPO = "ppo"
    AMP = "amp"
    INVERSE_DYNAMICS = "inverse_dynamics"
    TTA_EVAL = "tta_eval"
    MAML = "maml"


class JobState(enum.StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    RECOVERING = "RECOVERING"
    CANCELLING = "CANCELLING"


TERMINAL_STATES = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})

# Task names as registered in wildrobot.envs; the short forms are what people type.
TASKS = ("WildRobotStand", "WildRobotWalk", "PointMass")
TASK_ALIASES = {"stand": "WildRobotStand", "walk": "WildRobotWalk", "point_mass": "PointMass"}

MAX_NUM_ENVS = 65_536
MAX_TIMESTEPS = 20_000_000_000
MAX_ENV_OVERRIDES = 64
MAX_VIDEO_SECONDS = 30.0
_OVERRIDE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")

MAX_SSM_LAYERS = 4
MAX_SSM_STATE_SIZE = 256
MAX_SSM_WIDTH = 512
HiddenSizes = Annotated[
    tuple[Annotated[int, Field(ge=1, le=4096)], ...], Field(min_length=1, max_length=8)
]
# A range setting ((min, max), wildrobot.task_settings) is overridden by a pair.
OverrideValue = bool | int | float | str | tuple[int, int] | tuple[float, float]


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


MAX_HOSTS = 64


class PpoSpec(_Spec):
    """PPO training on a registered task (Brax PPO semantics).

    One training iteration collects batch_size * num_minibatches * unroll_length env steps:
    (batch_size * num_minibatches / num_envs) unrolls of unroll_length steps in each env.
    Defaults follow the WildRobot project's standing-recovery settings (shared/WILDROBOT.md).
    """

    kind: Literal[JobKind.PPO] = JobKind.PPO
    task: Literal["WildRobotStand", "WildRobotWalk", "PointMass"] = "WildRobotWalk"
    num_envs: int = Field(1024, ge=1, le=MAX_NUM_ENVS)
    num_timesteps: int = Field(100_000_000, ge=1, le=MAX_TIMESTEPS)
    episode_length: int = Field(1000, ge=1, le=100_000)
    unroll_length: int = Field(20, ge=1, le=1000)
    batch_size: int = Field(256, ge=1, le=MAX_NUM_ENVS)
    num_minibatches: int = Field(32, ge=1, le=1024)
    num_updates_per_batch: int = Field(4, ge=1, le=64)
    learning_rate: float = Field(3e-4, gt=0.0, le=1.0)
    # Decay of the learning rate over the run's optimizer updates (num_iterations x
    # num_minibatches x num_updates_per_batch): constant, or linear / cosine from learning_rate
    # to 0 at the last update (README.md, "Training engine").
    learning_rate_schedule: Literal["constant", "linear", "cosine"] = "constant"
    entropy_cost: float = Field(5e-4, ge=0.0, le=1.0)
    discounting: float = Field(0.99, gt=0.0, le=1.0)
    gae_lambda: float = Field(0.95, ge=0.0, le=1.0)
    clipping_epsilon: float = Field(0.2, gt=0.0, le=1.0)
    max_grad_norm: float = Field(0.5, gt=0.0, le=1000.0)
    reward_scaling: float = Field(1.0, gt=0.0, le=1000.0)
    normalize_observations: bool = True
    policy_hidden_sizes: HiddenSizes = (256, 256, 128)
    value_hidden_sizes: HiddenSizes = (256, 256, 128)
    # LayerNorm after each hidden layer of the policy: what TTA's `tent` adapts (docs/tta.md).
    policy_layer_norm: bool = False
    # The policy network (docs/ssm.md): `mlp` (feed-forward, policy_hidden_sizes) or `ssm`, a
    # diagonal linear state-space model (encoder Dense(ssm_width), ssm_layers SSM layers of
    # ssm_state_size states each, decoder) with a recurrent state per env, trained by recurrent
    # PPO over unroll_length segments. The value network stays an MLP (value_hidden_sizes).
    policy_arch: Literal["mlp", "ssm"] = "mlp"
    ssm_layers: int = Field(2, ge=1, le=MAX_SSM_LAYERS)
    ssm_state_size: int = Field(64, ge=1, le=MAX_SSM_STATE_SIZE)
    ssm_width: int = Field(128, ge=8, le=MAX_SSM_WIDTH)
    seed: int = Field(0, ge=0, le=2**31 - 1)
    checkpoint_every: int = Field(50, ge=1, le=1_000_000, description="iterations")
    num_eval_envs: int = Field(128, ge=1, le=MAX_NUM_ENVS)
    eval_every: int = Field(0, ge=0, le=1_000_000, description="iterations; 0 disables")
    env_overrides: dict[str, OverrideValue] = Field(default_factory=dict)
    # Hosts (processes) one run spans with jax.distributed; num_envs and batch_size are global
    # and must split evenly over all hosts' devices. >1 runs as a Kubernetes Indexed Job.
    num_hosts: int = Field(1, ge=1, le=MAX_HOSTS)
    # At the end of the job, next to the final checkpoint (docs/export.md): the policy as ONNX,
    # and an MP4 of it on its task (WildRobot tasks only: PointMass has nothing to render).
    export_onnx: bool = True
    video_seconds: float = Field(
        4.0, ge=0.0, le=MAX_VIDEO_SECONDS, description="rollout video length; 0 disables"
    )

    @field_validator("task", mode="before")
    @classmethod
    def _expand_alias(cls, value: Any) -> Any:
        return TASK_ALIASES.get(value, value) if isinstance(value, str) else value

    @field_validator("env_overrides", mode="before")
    @classmethod
    def _check_overrides(cls, value: Any, info: ValidationInfo) -> Any:
        """Known settings of the task only, in their types and bounds (task_settings)."""
        if not isinstance(value, dict):
            return value
        if len(value) > MAX_ENV_OVERRIDES:
            raise ValueError(f"at most {MAX_ENV_OVERRIDES} overrides, got {len(value)}")
        for key in value:
            if not isinstance(key, str) or not _OVERRIDE_KEY.match(key) or len(key) > 128:
                raise ValueError(f"key {str(key)[:128]!r} is not a dotted config name")
        task = info.data.get("task")
        if task is None:  # the task itself was invalid; that error is reported
            return value
        return task_settings.validate_overrides(task, value)

    @model_validator(mode="after")
    def _check_batch_shape(self) -> PpoSpec:
        if (self.batch_size * self.num_minibatches) % self.num_envs != 0:
            raise ValueError(
                f"batch_size * num_minibatches ({self.batch_size} * {self.num_minibatches} = "
                f"{self.batch_size * self.num_minibatches}) must be divisible by num_envs "
                f"({self.num_envs})"
            )
        for name in ("num_envs", "batch_size"):  # every host feeds at least one device
            if getattr(self, name) % self.num_hosts != 0:
                raise ValueError(
                    f"{name} ({getattr(self, name)}) must be divisible by num_hosts "
                    f"({self.num_hosts})"
                )
        return self

    @property
    def env_steps_per_iteration(self) -> int:
        return self.batch_size * self.num_minibatches * self.unroll_length

    @property
    def num_iterations(self) -> int:
        """Whole iterations the run does: num_timesteps rounded up to whole iterations."""
        return math.ceil(self.num_timesteps / self.env_steps_per_iteration)

    @property
    def planned_timesteps(self) -> int:
        """Env steps the run will actually do (num_timesteps rounded up to whole iterations)."""
        return self.num_iterations * self.env_steps_per_iteration


# AMP training (docs/amp.md): PPO plus a discriminator's style reward from reference motions.
MAX_AMP_MOTIONS = 16
MAX_AMP_REPLAY = 1_000_000
# A shipped clip's name (envs/motions/clips, e.g. walk_0.3) or one of the tenant's uploaded
# motion files (a safe relative path ending in .npz, docs/motions.md).
_MOTION_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*$")


class AmpSpec(PpoSpec):
    """PPO with Adversarial Motion Priors (Peng et al. 2021; docs/amp.md).

    Every PPO field keeps its meaning and bounds. The reward PPO optimizes is
    task_weight * task reward + style_weight * style reward, the style reward coming from a
    discriminator (MLP over `window` consecutive frames of features) trained each iteration on
    reference windows (label real) against policy windows (label fake; half from this iteration,
    half from a replay buffer of past iterations), with a gradient penalty on both and an L2
    penalty on its logits. An accuracy controller adds Gaussian noise to what the discriminator
    sees, its std moved each iteration towards holding the accuracy at disc_noise_target.
    """

    kind: Literal[JobKind.AMP] = JobKind.AMP  # type: ignore[assignment]
    task: Literal["WildRobotStand", "WildRobotWalk"] = "WildRobotStand"  # type: ignore[assignment]
    motions: tuple[Annotated[str, Field(min_length=1, max_length=200)], ...] = Field(
        ("walk_0.2",), min_length=1, max_length=MAX_AMP_MOTIONS
    )
    task_weight: float = Field(0.5, ge=0.0, le=10.0)
    style_weight: float = Field(0.5, ge=0.0, le=10.0)
    disc_loss: Literal["lsgan", "bce"] = "lsgan"
    disc_hidden_sizes: HiddenSizes = (256, 256)
    disc_learning_rate: float = Field(1e-4, gt=0.0, le=1.0)
    disc_updates_per_iteration: int = Field(4, ge=1, le=256, description="minibatch steps")
    disc_batch_size: int = Field(512, ge=2, le=MAX_NUM_ENVS, description="windows per class")
    grad_penalty: float = Field(5.0, ge=0.0, le=1000.0)
    logit_reg: float = Field(0.01, ge=0.0, le=100.0)
    disc_noise_target: float = Field(
        0.7, ge=0.5, le=1.0, description="accuracy the input-noise controller holds; 1: no noise"
    )
    disc_noise_step: float = Field(0.15, ge=0.0, le=1.0, description="noise std change/iteration")
    replay_size: int = Field(100_000, ge=16, le=MAX_AMP_REPLAY, description="policy windows")
    window: int = Field(2, ge=2, le=10, description="frames the discriminator sees")

    @field_validator("motions")
    @classmethod
    def _check_motions(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if not _MOTION_NAME.match(name) or ".." in name.split("/"):
                raise ValueError(f"motions: {name[:200]!r} is not a clip name or a safe .npz path")
        return _unique("motions", value)

    @model_validator(mode="after")
    def _check_weights(self) -> AmpSpec:
        if self.task_weight + self.style_weight <= 0:
            raise ValueError("task_weight + style_weight must be > 0")
        if self.policy_arch != "mlp":
            raise ValueError("policy_arch: AMP trains mlp policies only (ssm is PPO's)")
        return self


# Inverse dynamics jobs: inputs uploaded with the request are bounded; larger inputs are uploaded
# first (UploadTrial, at most MAX_ID_UPLOAD_BYTES each) into the tenant's inputs and named by a
# safe relative path.
MAX_ID_UPLOAD_BYTES = 16 * 1024 * 1024
MAX_ID_TRIALS = 256
_TRIAL_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*\.(npz|csv)$")


def check_trial_name(name: str) -> str:
    """Raises ValueError unless `name` is a safe relative .npz/.csv name (no '..', not absolute)."""
    if len(name) > 256 or not _TRIAL_NAME.match(name) or ".." in name.split("/"):
        raise ValueError(f"{name[:256]!r} is not a safe relative .npz/.csv name")
    return name


class InverseDynamicsSpec(_Spec):
    """Inverse dynamics of many or long trials (wildrobot.envs.dynamics); one .npz per trial.

    Exactly one input: `trials_npz` (trial files uploaded with the request, at most
    MAX_ID_UPLOAD_BYTES in all) or `trial_names` (relative names of .npz/.csv trial files under
    the tenant's inputs, `<artifact_dir>/tenants/<tenant>/inputs/`; no '..', no absolute paths).
    The server stores `trials_npz` there too (uploads/sha256-<digest>.npz) and queues the job
    with their names, so the job record never carries the bytes.
    """

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        allow_inf_nan=False,
        ser_json_bytes="base64",
        val_json_bytes="base64",
    )

    kind: Literal[JobKind.INVERSE_DYNAMICS] = JobKind.INVERSE_DYNAMICS
    trials_npz: tuple[bytes, ...] = Field((), max_length=MAX_ID_TRIALS)
    trial_names: tuple[Annotated[str, Field(max_length=256)], ...] = Field(
        (), max_length=MAX_ID_TRIALS
    )
    smooth_window: int = 1
    smooth_forces: bool = True
    cop_threshold: float = 5.0
    float64: bool = False

    @field_validator("smooth_window")
    @classmethod
    def _window(cls, value: int) -> int:
        dynamics_inputs.validate_options(smooth_window=value)  # the rule every entry point uses
        return value

    @field_validator("cop_threshold")
    @classmethod
    def _threshold(cls, value: float) -> float:
        dynamics_inputs.validate_options(cop_threshold=value)
        return value

    @field_validator("trials_npz")
    @classmethod
    def _bounded_upload(cls, value: tuple[bytes, ...]) -> tuple[bytes, ...]:
        total = sum(len(v) for v in value)
        if total > MAX_ID_UPLOAD_BYTES:
            raise ValueError(
                f"{total} bytes uploaded, limit {MAX_ID_UPLOAD_BYTES}: use trial_names instead"
            )
        return value

    @field_validator("trial_names")
    @classmethod
    def _safe_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            check_trial_name(name)
        return value

    @model_validator(mode="after")
    def _one_input(self) -> InverseDynamicsSpec:
        if bool(self.trials_npz) == bool(self.trial_names):
            raise ValueError("give exactly one of trials_npz or trial_names (non-empty)")
        return self


# Test-time adaptation evaluation (docs/tta.md). The names are the shift suite's and the adapter
# registry's (wildrobot.workers.tta; a test keeps them equal).
TTA_SHIFTS = ("gravity", "friction", "mass", "kp", "latency", "push", "imu")
TTA_METHODS = (
    "none",
    "obs_norm",
    "tent",
    "sysid",
    "best_of_n",
    "best_of_n_oracle",
    "sysid_best_of_n",
    "maml",
)
MAX_TTA_EPISODES = 1024
MAX_TTA_EPISODE_LENGTH = 5000
MAX_TTA_SEEDS = 8
MAX_TTA_ADAPT_EPISODES = 8
MAX_MAML_INNER_STEPS = 10
MAX_TTA_ENV_STEPS = 2_000_000_000  # simulated control steps in all, lookahead included
_JOB_ID = re.compile(r"^[0-9a-f]{32}$")

TtaShift = Literal["gravity", "friction", "mass", "kp", "latency", "push", "imu"]
TtaMethod = Literal[
    "none", "obs_norm", "tent", "sysid", "best_of_n", "best_of_n_oracle", "sysid_best_of_n", "maml"
]


def _unique(field: str, values: tuple) -> tuple:
    seen = [v for i, v in enumerate(values) if v in values[:i]]
    if seen:
        raise ValueError(f"{field}: {seen[0]!r} given twice")
    return values


class TtaEvalSpec(_Spec):
    """A trained PPO checkpoint under the shift suite, per method (docs/tta.md).

    Every cell (shift x severity, plus the clean env) runs `episodes` episodes of at most
    `episode_length` control steps per seed and method. The checkpoint is one of the tenant's own
    ppo, amp or maml jobs on a WildRobot task (`tta_source_problem`): `checkpoint_job_id` at
    `checkpoint_step` (its latest when unset).
    """

    kind: Literal[JobKind.TTA_EVAL] = JobKind.TTA_EVAL
    checkpoint_job_id: str = Field(
        pattern=_JOB_ID.pattern, description="a ppo, amp or maml job of yours (WildRobot task)"
    )
    checkpoint_step: int | None = Field(None, ge=0, description="default: the latest")
    shifts: tuple[TtaShift, ...] = Field(TTA_SHIFTS, min_length=1, max_length=len(TTA_SHIFTS))
    severities: tuple[Annotated[int, Field(ge=1, le=5)], ...] = Field(
        (1, 2, 3, 4, 5), min_length=1, max_length=5
    )
    methods: tuple[TtaMethod, ...] = Field(
        ("none", "obs_norm", "best_of_n"), min_length=1, max_length=len(TTA_METHODS)
    )
    episodes: int = Field(32, ge=1, le=MAX_TTA_EPISODES, description="per cell and seed")
    episode_length: int = Field(500, ge=1, le=MAX_TTA_EPISODE_LENGTH, description="steps")
    # Several seeds by default: the paired comparisons pool their episodes.
    seeds: tuple[Annotated[int, Field(ge=0, le=2**31 - 1)], ...] = Field(
        (0, 1, 2), min_length=1, max_length=MAX_TTA_SEEDS
    )
    mode: Literal["episodic", "continual"] = "episodic"
    best_of_n_samples: int = Field(8, ge=2, le=64, description="candidates per control step")
    lookahead_steps: int = Field(8, ge=1, le=50, description="control steps per candidate")
    obs_norm_rate: float = Field(0.01, ge=0.0, le=1.0)
    sysid_rate: float = Field(0.3, ge=0.0, le=1.0, description="Gauss-Newton step fraction")
    tent_learning_rate: float = Field(1e-3, ge=0.0, le=1.0)
    tent_kl_weight: float = Field(1.0, ge=0.0, le=100.0)
    adapt_steps: int = Field(
        1, ge=1, le=MAX_MAML_INNER_STEPS, description="maml: inner steps before each episode"
    )
    adapt_episodes: int = Field(
        1, ge=1, le=MAX_TTA_ADAPT_EPISODES, description="maml: own episodes before each one"
    )
    maml_rate: float = Field(0.05, ge=0.0, le=1.0, description="maml: inner learning rate")

    @field_validator("shifts", "severities", "methods", "seeds")
    @classmethod
    def _no_repeats(cls, value: tuple, info: ValidationInfo) -> tuple:
        return _unique(info.field_name, value)

    @model_validator(mode="after")
    def _check(self) -> TtaEvalSpec:
        if "none" not in self.methods:
            raise ValueError("methods: must include 'none' (the report compares against it)")
        if self.planned_env_steps > MAX_TTA_ENV_STEPS:
            raise ValueError(
                f"{self.planned_env_steps} simulated control steps, limit {MAX_TTA_ENV_STEPS}: "
                "fewer episodes, seeds, cells or best_of_n samples"
            )
        return self

    @property
    def num_cells(self) -> int:
        """Cells per method and seed: clean, every shift x severity, and clean again (continual)."""
        return 1 + len(self.shifts) * len(self.severities) + (self.mode == "continual")

    def sim_steps_per_control_step(self, method: str) -> int:
        """Control steps simulated per acted step: the step itself, best-of-N's lookahead, and
        sysid's replay of the transition (a primal and two forward-mode tangents), and maml's
        adaptation episodes before each evaluated one (as long as it)."""
        return (
            1
            + (self.best_of_n_samples * self.lookahead_steps if "best_of_n" in method else 0)
            + (3 if method.startswith("sysid") else 0)
            + (self.adapt_episodes if method == "maml" else 0)
        )

    @property
    def planned_env_steps(self) -> int:
        per_step = sum(self.sim_steps_per_control_step(m) for m in self.methods)
        return self.num_cells * len(self.seeds) * self.episodes * self.episode_length * per_step

    @property
    def planned_timesteps(self) -> int:
        """The job's progress total (Job.progress): simulated control steps, as planned_env_steps."""
        return self.planned_env_steps


# Meta-learning (docs/maml.md): MAML for policy gradients over a task family.
MAML_TASKS = ("WildRobotStand", "WildRobotWalk", "PointNav")
MAML_TASK_ALIASES = {**TASK_ALIASES, "point_nav": "PointNav"}
MAX_MAML_TASKS = 256
MAX_MAML_ENV_STEPS_PER_ITERATION = 50_000_000


class MamlSpec(_Spec):
    """MAML (Finn et al. 2017) for policy gradients; a task is a goal (PointNav) or a WildRobot
    dynamics draw held for `episodes_per_task` envs.

    Per outer iteration, for each of `tasks_per_batch` tasks: `episodes_per_task` episodes of
    `episode_length` steps with the meta-parameters; `inner_steps` steps of plain SGD with
    `inner_lr` on the policy-gradient loss (GAE from the value network); as many fresh episodes
    with the adapted parameters; then `outer_updates` Adam steps of the meta-parameters on the
    post-adaptation clipped surrogate (vanilla PG on the first). `inner_steps` 0 is joint training
    on all tasks (the baseline MAML is compared with). `first_order` drops the second derivative;
    otherwise it is taken through the inner step with ProMP's low-variance curvature estimator.
    """

    kind: Literal[JobKind.MAML] = JobKind.MAML
    task: Literal["WildRobotStand", "WildRobotWalk", "PointNav"] = "WildRobotStand"
    policy_arch: Literal["mlp"] = "mlp"
    num_iterations: int = Field(500, ge=1, le=1_000_000, description="outer iterations")
    tasks_per_batch: int = Field(8, ge=1, le=MAX_MAML_TASKS)
    episodes_per_task: int = Field(16, ge=1, le=4096, description="envs per task")
    episode_length: int = Field(100, ge=1, le=5000, description="control steps")
    inner_steps: int = Field(1, ge=0, le=MAX_MAML_INNER_STEPS)
    inner_lr: float = Field(0.1, gt=0.0, le=10.0)
    first_order: bool = True
    outer_learning_rate: float = Field(1e-3, gt=0.0, le=1.0)
    outer_updates: int = Field(1, ge=1, le=64, description="Adam steps per outer iteration")
    clipping_epsilon: float = Field(0.2, gt=0.0, le=1.0)
    entropy_cost: float = Field(0.0, ge=0.0, le=1.0)
    discounting: float = Field(0.99, gt=0.0, le=1.0)
    gae_lambda: float = Field(0.95, ge=0.0, le=1.0)
    max_grad_norm: float = Field(1.0, gt=0.0, le=1000.0)
    reward_scaling: float = Field(1.0, gt=0.0, le=1000.0)
    normalize_observations: bool = True
    policy_hidden_sizes: HiddenSizes = (64, 64)
    value_hidden_sizes: HiddenSizes = (64, 64)
    seed: int = Field(0, ge=0, le=2**31 - 1)
    checkpoint_every: int = Field(50, ge=1, le=1_000_000, description="iterations")

    @field_validator("task", mode="before")
    @classmethod
    def _expand_alias(cls, value: Any) -> Any:
        return MAML_TASK_ALIASES.get(value, value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _check_size(self) -> MamlSpec:
        if self.env_steps_per_iteration > MAX_MAML_ENV_STEPS_PER_ITERATION:
            raise ValueError(
                f"2 * tasks_per_batch * episodes_per_task * episode_length = "
                f"{self.env_steps_per_iteration} env steps per iteration, limit "
                f"{MAX_MAML_ENV_STEPS_PER_ITERATION}"
            )
        return self

    @property
    def env_steps_per_iteration(self) -> int:
        """Pre- and post-adaptation episodes of every task."""
        return 2 * self.tasks_per_batch * self.episodes_per_task * self.episode_length

    @property
    def planned_timesteps(self) -> int:
        return self.num_iterations * self.env_steps_per_iteration


JobSpec = PpoSpec | AmpSpec | InverseDynamicsSpec | TtaEvalSpec | MamlSpec

SPEC_BY_KIND: dict[JobKind, type[_Spec]] = {
    JobKind.PPO: PpoSpec,
    JobKind.AMP: AmpSpec,
    JobKind.INVERSE_DYNAMICS: InverseDynamicsSpec,
    JobKind.TTA_EVAL: TtaEvalSpec,
    JobKind.MAML: MamlSpec,
}


def spec_from_json(kind: JobKind | str, payload: str) -> _Spec:
    """Parses a spec of `kind` from its queue JSON; raises pydantic.ValidationError."""
    return SPEC_BY_KIND[JobKind(kind)].model_validate_json(payload)


TTA_SOURCE_KINDS = (JobKind.PPO, JobKind.AMP, JobKind.MAML)  # their policy/ trees are PPO's
TTA_SOURCE_TASKS = ("WildRobotStand", "WildRobotWalk")  # the shift suite changes WildRobot


def tta_source_problem(job_id: str, kind: JobKind | str, spec_json: str) -> str | None:
    """Why job `job_id` cannot be a tta_eval source (None when it can): the server checks at
    submit, the worker again before it evaluates. PPO and AMP jobs train a policy on a WildRobot
    task; a maml job's checkpoint is its meta-initialization (the same policy/ layout), which
    tta_eval evaluates as it stands (`none`) or adapts (`maml`)."""
    if kind not in TTA_SOURCE_KINDS:  # a StrEnum: the kind's string compares equal
        *first, last = TTA_SOURCE_KINDS
        return f"job {job_id} is a {JobKind(kind).value} job, not {', '.join(first)} or {last}"
    task = json.loads(spec_json).get("task")
    if task not in TTA_SOURCE_TASKS:
        tasks = ", ".join(TTA_SOURCE_TASKS)
        return f"job {job_id} trained on {task}; the shift suite is WildRobot's ({tasks})"
    return None
