"""WildRobotEnv: the shared MJX machinery of the WildRobot tasks, as a Brax `Env`.

A task subclass supplies its config, its reward term names, how it samples and updates the
command, and its reward terms; everything else (model, observation, action filter, pushes,
termination, foot bookkeeping) lives here.

Brax compatibility: the MJX model is the public attribute `sys`, read afresh by `reset` and
`step`, so `DomainRandomizationVmapWrapper` can swap in a randomized model per world;
`brax.envs.base.State` is the state; `observation_size`, `action_size`, `backend` are provided.
The time limit is left to Brax's `EpisodeWrapper`.

Episode boundaries: Brax's `AutoResetWrapper` swaps `pipeline_state` and `obs` back to the
world's first state when an episode ends, but leaves `info` alone. So `step` marks a fall with
`info["reset_pending"]` (and reads a time limit from the wrappers' step count, which the
auto-reset zeroes), and the next `step` starts every per-episode field afresh
(`_episode_info`: action filter and delay line, IMU history, foot bookkeeping, push schedule,
latencies, backlash, gait clock and command), exactly as `reset` builds them. The command of
the new episode is the one `reset` drew (`reset_command`), since that is what the swapped-in
first observation shows the policy.

A world whose physics goes non-finite keeps its last finite state, ends its episode with the
termination penalty, and reports finite observation and reward, so one diverging world never
poisons a training batch.

The robot as it is (shared/WILDROBOT.md), each drawn per episode from a configured range, lives
in realism.py: the action delay line (one control step = `ctrl_dt / sim_dt` substeps), IMU
latency, servo backlash and pushes. The physics backend (`impl`) is backend.py's.

Observation [64], all computable on the robot: gravity in the IMU frame (3), gyro (3), joint
positions relative to home as the encoders read them (17), joint velocities (17), previous
action (17), command (vx, vy, yaw rate) (3), gait clock (cos and sin of each foot's phase) (4).
Action [17] in [-1, 1]: offsets from the home servo targets, scaled by `action_scale` and
low-pass filtered.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import mujoco
from brax.envs.base import Env, State
from flax import struct
from mujoco import mjx

from wildrobot import task_settings

from . import backend, constants, estimation, model_edits, randomization, realism, rewards

OBS_SIZE = 3 + 3 + 3 * constants.NUM_ACTUATORS + 3 + 4
# (name, size) of each observation part, in the order `_observation` concatenates them.
OBSERVATION_LAYOUT = (
    ("gravity", 3),
    ("gyro", 3),
    ("joint_pos", constants.NUM_ACTUATORS),
    ("joint_vel", constants.NUM_ACTUATORS),
    ("last_action", constants.NUM_ACTUATORS),
    ("command", 3),
    ("gait_clock", 4),
)


def observation_slice(name: str) -> slice:
    """Where part `name` of OBSERVATION_LAYOUT sits in the observation vector."""
    start = 0
    for part, size in OBSERVATION_LAYOUT:
        if part == name:
            return slice(start, start + size)
        start += size
    raise KeyError(f"no {name!r} in the observation layout {[n for n, _ in OBSERVATION_LAYOUT]}")


@struct.dataclass
class Signals:
    """Quantities reward terms and termination read after a control step."""

    gravity: jax.Array  # [3] in the IMU frame
    gyro: jax.Array  # [3] IMU frame
    local_linvel: jax.Array  # [3] pelvis frame (simulation-only sensor)
    yaw_rate: jax.Array  # [] pelvis angular velocity about world z
    height: jax.Array  # [] pelvis height
    joint_pos_rel: jax.Array  # [17] true joint positions minus home
    joint_vel: jax.Array  # [17]
    actuator_force: jax.Array  # [17]
    action: jax.Array  # [17] raw policy action
    last_action: jax.Array  # [17]
    command: jax.Array  # [3]
    foot_contact: jax.Array  # [2] bool
    first_contact: jax.Array  # [2] bool, touchdown this step
    air_time: jax.Array  # [2] s in the air before this step's touchdown
    foot_vel_xy: jax.Array  # [2, 2]
    foot_height: jax.Array  # [2] lowest pad clearance of each foot (m)
    phase: jax.Array  # [2] gait phase of each foot (rad)
    done: jax.Array  # []


class WildRobotEnv(Env, abc.ABC):
    """Base of the WildRobot tasks. Subclasses define the class attributes and hooks below."""

    NAME: str = ""  # the registered task name; its settings are task_settings.SETTINGS[NAME]
    REWARD_TERMS: tuple[str, ...] = ()
    # Tasks with a gait advance a phase per foot and show it in the observation (gait clock).
    HAS_GAIT: bool = False

    def __init__(
        self,
        config: ml_collections.ConfigDict | None = None,
        config_overrides: Mapping[str, Any] | None = None,
    ) -> None:
        cfg = self.default_config() if config is None else config.copy_and_resolve_references()
        if config_overrides:
            cfg.update_from_flattened_dict(
                task_settings.validate_overrides(self.NAME, config_overrides)
            )
        # The same rules a job spec's env_overrides meet, over the whole config.
        task_settings.validate_overrides(self.NAME, flatten_config(cfg))
        if set(cfg.reward_weights) != set(self.REWARD_TERMS):
            raise ValueError(
                f"reward_weights keys {sorted(cfg.reward_weights)} != terms {sorted(self.REWARD_TERMS)}"
            )
        num_substeps = task_settings.num_substeps(self.NAME, flatten_config(cfg))
        self._config = cfg
        self._num_substeps = num_substeps

        mj_model = mujoco.MjModel.from_xml_path(str(constants.XML_PATH))
        mj_model.opt.timestep = cfg.sim_dt
        # The env reads the IMU from body velocities (`imu_gyro`, `local_linvel`: the same values
        # the MJCF's sensors give). With sensors on, MJX would run rne_postconstraint for the
        # accelerometer on every substep and compile the sensor stages.
        mj_model.opt.disableflags |= mujoco.mjtDisableBit.mjDSBL_SENSOR
        self._mj_model = mj_model
        self.sys, self._data_template = backend.put(mj_model, cfg.impl)
        self._init_ids(mj_model)

    # ---- static set-up ------------------------------------------------------------------------

    def _init_ids(self, m: mujoco.MjModel) -> None:
        def name2id(kind: mujoco.mjtObj, name: str) -> int:
            index = mujoco.mj_name2id(m, kind, name)
            if index < 0:
                raise ValueError(f"{name!r} not found in {constants.XML_PATH.name}")
            return index

        act_ids = [name2id(mujoco.mjtObj.mjOBJ_ACTUATOR, n) for n in constants.ACTUATOR_NAMES]
        joint_ids = [int(m.actuator_trnid[a, 0]) for a in act_ids]
        if act_ids != list(range(m.nu)):
            raise ValueError("actuators in the MJCF are not in constants.ACTUATOR_NAMES order")
        self._qpos_adr = jnp.asarray([m.jnt_qposadr[j] for j in joint_ids])
        self._qvel_adr = jnp.asarray([m.jnt_dofadr[j] for j in joint_ids])
        key = name2id(mujoco.mjtObj.mjOBJ_KEY, constants.HOME_KEYFRAME)
        self._home_qpos = jnp.asarray(m.key_qpos[key])
        self._home_ctrl = jnp.asarray(m.key_ctrl[key])
        self._home_joint_pos = self._home_qpos[self._qpos_adr]
        self._ctrl_lower = jnp.asarray(m.actuator_ctrlrange[:, 0])
        self._ctrl_upper = jnp.asarray(m.actuator_ctrlrange[:, 1])
        self._pelvis_id = name2id(mujoco.mjtObj.mjOBJ_BODY, constants.ROOT_BODY)
        self._torso_id = name2id(mujoco.mjtObj.mjOBJ_BODY, constants.TORSO_BODY)
        self._imu_site = name2id(mujoco.mjtObj.mjOBJ_SITE, constants.IMU_SITE)
        self._foot_sites = jnp.asarray(
            [name2id(mujoco.mjtObj.mjOBJ_SITE, n) for n in constants.FEET_SITES]
        )
        pad_ids = [
            [name2id(mujoco.mjtObj.mjOBJ_GEOM, n) for n in pads]
            for pads in constants.FOOT_PAD_GEOMS
        ]
        self._pad_geoms = jnp.asarray(pad_ids)
        self._pad_radius = float(m.geom_size[pad_ids[0][0], 0])
        self._floor_geom = name2id(mujoco.mjtObj.mjOBJ_GEOM, constants.FLOOR_GEOM)
        self._pelvis_site = name2id(mujoco.mjtObj.mjOBJ_SITE, constants.PELVIS_SITE)
        self._pelvis_root = int(m.body_rootid[self._pelvis_id])

    # ---- task hooks ---------------------------------------------------------------------------

    @classmethod
    def default_config(cls) -> ml_collections.ConfigDict:
        """A fresh config for the task: its defaults in wildrobot.task_settings."""
        return ml_collections.ConfigDict(task_settings.defaults(cls.NAME))

    @abc.abstractmethod
    def _sample_command(self, rng: jax.Array) -> jax.Array:
        """A command [3] (vx, vy, yaw rate) for a new episode."""

    def _task_info(self) -> dict[str, jax.Array]:
        """Task-specific per-episode info entries, as at the start of an episode."""
        return {}

    def _update_command(self, info: dict[str, Any], rng: jax.Array) -> dict[str, jax.Array]:
        """The command and task info entries after one control step (default: unchanged)."""
        del rng
        return {"command": info["command"], **{k: info[k] for k in self._task_info()}}

    def _phase_dt(self, rng: jax.Array) -> jax.Array:
        """Gait phase advance per control step [] for a new episode (0: no gait)."""
        del rng
        return jnp.zeros(())

    @abc.abstractmethod
    def _reward_terms(self, s: Signals) -> dict[str, jax.Array]:
        """Unweighted reward terms, one per name in REWARD_TERMS."""

    def _shared_reward_terms(self, s: Signals) -> dict[str, jax.Array]:
        """The unweighted terms every WildRobot task scores: tracking, posture, effort, falls."""
        cfg = self._config
        return {
            "tracking_lin_vel": rewards.tracking_lin_vel(
                s.command, s.local_linvel, cfg.tracking_sigma
            ),
            "tracking_ang_vel": rewards.tracking_ang_vel(
                s.command, s.yaw_rate, cfg.ang_tracking_sigma
            ),
            "lin_vel_z": rewards.lin_vel_z(s.local_linvel),
            "ang_vel_xy": rewards.ang_vel_xy(s.gyro),
            "orientation": rewards.orientation(s.gravity),
            "base_height": rewards.base_height(s.height, cfg.base_height_target),
            "torques": rewards.torques(s.actuator_force),
            "action_rate": rewards.action_rate(s.action, s.last_action),
            "termination": rewards.termination(s.done),
        }

    # ---- Brax Env API -------------------------------------------------------------------------

    @property
    def config(self) -> ml_collections.ConfigDict:
        return self._config

    @property
    def observation_size(self) -> int:
        return OBS_SIZE

    @property
    def action_size(self) -> int:
        return constants.NUM_ACTUATORS

    @property
    def backend(self) -> str:
        return "mjx"

    @property
    def dt(self) -> float:
        return self._config.ctrl_dt

    @property
    def floor_geom_id(self) -> int:
        """The floor geom's id in `sys` (its friction is what a friction shift edits)."""
        return self._floor_geom

    @property
    def torso_body_id(self) -> int:
        """The torso body's id in `sys` (pushes act on it; the IMU rides on it)."""
        return self._torso_id

    @property
    def joint_qpos_addresses(self) -> jax.Array:
        """[num_joints] addresses of the actuated joints in qpos, in actuator order."""
        return self._qpos_adr

    @property
    def home_ctrl(self) -> jax.Array:
        """[num_actuators] servo targets of the home pose (the zero action's targets)."""
        return self._home_ctrl

    def shifted_model(self, model: mjx.Model | None = None, **shift: Any) -> mjx.Model:
        """`model` (default: this env's) under a dynamics shift; keywords as in
        `model_edits.shifted_model` (floor_friction, mass_scale, kp_scale, com_offset,
        gravity_scale). Traceable, unbatched."""
        return model_edits.shifted_model(
            self.sys if model is None else model,
            floor_geom=self._floor_geom,
            torso_body=self._torso_id,
            **shift,
        )

    @contextlib.contextmanager
    def using_model(self, model: mjx.Model) -> Iterator[None]:
        """Steps and resets traced inside the block use `model` (Brax's
        DomainRandomizationVmapWrapper swaps `sys` the same way while tracing)."""
        saved = self.sys
        self.sys = model
        try:
            yield
        finally:
            self.sys = saved

    @property
    def mj_model(self) -> mujoco.MjModel:
        return self._mj_model

    def randomization_fn(self):
        """Brax `randomization_fn` for this env's config: (model, rng [N, 2]) -> (model, in_axes)."""
        return randomization.make_randomization_fn(self._config.randomization, self._floor_geom)

    def reset(self, rng: jax.Array) -> State:
        cfg = self._config
        rng, key_joint, key_vel, key_yaw, key_episode, key_command, key_noise = jax.random.split(
            rng, 7
        )
        qpos = self._home_qpos
        joint_noise = (
            jax.random.uniform(key_joint, (constants.NUM_ACTUATORS,), minval=-1.0, maxval=1.0)
            * cfg.init.joint_noise
        )
        qpos = qpos.at[self._qpos_adr].add(joint_noise)
        if cfg.init.random_yaw:
            yaw = jax.random.uniform(key_yaw, (), minval=-jnp.pi, maxval=jnp.pi)
            quat = jnp.array([jnp.cos(yaw / 2), 0.0, 0.0, jnp.sin(yaw / 2)])
            qpos = qpos.at[3:7].set(_quat_mul(quat, qpos[3:7]))
        qvel = (
            jnp.zeros(self.sys.nv)
            .at[:6]
            .set(
                jax.random.uniform(key_vel, (6,), minval=-1.0, maxval=1.0) * cfg.init.base_vel_noise
            )
        )
        data = self._data_template.replace(qpos=qpos, qvel=qvel, ctrl=self._home_ctrl)
        data = backend.first_kinematics(self.sys, data, cfg.impl)

        command = self._sample_command(key_command)
        info = {
            "rng": rng,
            "reset_pending": jnp.zeros((), bool),
            "reset_command": command,
            **self._episode_info(data, key_episode, command),
        }
        obs = self._observation(data, info, self._imu(data), key_noise)
        metrics = {f"reward/{name}": jnp.zeros(()) for name in self.REWARD_TERMS}
        return State(data, obs, jnp.zeros(()), jnp.zeros(()), metrics, info)

    def step(self, state: State, action: jax.Array) -> State:
        cfg = self._config
        rng, key_episode, key_push, key_command, key_noise = jax.random.split(state.info["rng"], 5)
        info = self._start_pending_episode(state, key_episode)

        action = jnp.clip(action, -1.0, 1.0)
        alpha = cfg.action_filter_alpha
        filtered = alpha * action + (1.0 - alpha) * info["filtered_action"]
        target = jnp.clip(
            self._home_ctrl + cfg.action_scale * filtered, self._ctrl_lower, self._ctrl_upper
        )
        # [3, 17]: the targets of two control steps ago, of the last one, and the new ones.
        targets = realism.push_targets(info["targets"], target)

        push_force, push_info = realism.push_step(cfg.push, info, key_push)
        xfrc = state.pipeline_state.xfrc_applied.at[self._torso_id, :3].set(push_force)
        before = state.pipeline_state.replace(xfrc_applied=xfrc)
        data = self._physics(before, targets, info["action_substeps"], info["backlash"])
        # A diverged world keeps its last finite state and ends its episode (see the docstring).
        finite = jnp.all(jnp.isfinite(data.qpos)) & jnp.all(jnp.isfinite(data.qvel))
        data = jax.tree.map(lambda new, old: jnp.where(finite, new, old), data, before)

        foot = self._foot_state(data, info)
        signals = self._signals(data, info, action, foot)
        done = self._fallen(signals) | ~finite
        signals = signals.replace(done=done)
        # A diverged step scores only its termination: the rest would read blown-up velocities.
        terms = {
            name: jnp.where(finite | (name == "termination"), value, 0.0)
            for name, value in self._reward_terms(signals).items()
        }
        weighted = {name: cfg.reward_weights[name] * terms[name] for name in self.REWARD_TERMS}
        reward = sum(weighted.values())

        imu = self._imu(data)
        info.update(
            rng=rng,
            reset_pending=done,
            last_action=action,
            filtered_action=filtered,
            targets=targets[1:],
            feet_air_time=foot["air_time_next"],
            last_contact=foot["contact"],
            last_foot_pos=foot["pos"],
            phase=_wrap_angle(info["phase"] + info["phase_dt"]),
            **push_info,
            **self._update_command(info, key_command),
        )
        obs = self._observation(data, info, imu, key_noise)
        info["imu_prev"] = imu
        # Update rather than replace: wrappers add their own entries (EvalWrapper's "reward").
        metrics = {**state.metrics, **{f"reward/{n}": value for n, value in weighted.items()}}
        return state.replace(
            pipeline_state=data,
            obs=obs,
            reward=reward,
            done=done.astype(jnp.float32),
            metrics=metrics,
            info=info,
        )

    def state_from_measurement(self, obs: jax.Array, info: Mapping[str, Any]) -> State:
        """The State a state estimator on the robot would give from one observation [OBS_SIZE]
        and the robot's own bookkeeping `info` (its past actions and targets, command, gait
        clock, calibrated latency and backlash, noise stream); unbatched, traceable. It reads no
        simulator state.

        Measured: joint positions from the encoders (less this model's calibration offset) and
        joint velocities; the base's tilt from the gravity reading (the smallest rotation from
        upright that gives it, so yaw 0: a gravity reading cannot show yaw); the base's angular
        velocity from the gyro. Assumed: the base at the origin in x and y, at the height where
        its lower foot sits as in the home pose (standing on flat ground), with zero linear
        velocity (the robot measures none); both feet in contact and no time in the air; no push;
        the waist's yaw rate does not add to the torso's rate. The sensor noise in the reading
        is taken as is (IMU lag included). `info["imu_prev"]` becomes the reading, so the next
        observation's lag interpolates from what was measured.
        """
        return estimation.state_from_measurement(self, obs, info)

    def set_command(self, state: State, command: jax.Array) -> State:
        """`state` with `command` [3] as its episode's command, in the observation too.

        For evaluation on fixed commands (from a config that never resamples them).
        """
        obs = state.obs.at[observation_slice("command")].set(command)
        info = {**state.info, "command": command, "reset_command": command}
        return state.replace(obs=obs, info=info)

    # ---- episodes -----------------------------------------------------------------------------

    def _episode_info(
        self, data: mjx.Data, rng: jax.Array, command: jax.Array
    ) -> dict[str, jax.Array]:
        """Every per-episode info entry, the task's too, for an episode that starts in `data`
        with `command` [3]."""
        cfg = self._config
        key_push, key_delay, key_imu, key_backlash, key_phase = jax.random.split(rng, 5)
        zeros = jnp.zeros(constants.NUM_ACTUATORS)
        return {
            "last_action": zeros,
            "filtered_action": zeros,
            "targets": realism.initial_targets(self._home_ctrl),
            "imu_prev": self._imu(data),
            "feet_air_time": jnp.zeros(2),
            "last_contact": jnp.zeros(2, dtype=bool),
            "last_foot_pos": data.site_xpos[self._foot_sites],
            **realism.episode_draws(cfg, key_push, key_delay, key_imu, key_backlash),
            "phase": jnp.array([0.0, jnp.pi]),
            "phase_dt": self._phase_dt(key_phase),
            "command": command,
            **self._task_info(),
        }

    def _start_pending_episode(self, state: State, rng: jax.Array) -> dict[str, Any]:
        """state.info, with every per-episode entry renewed if the last step ended an episode.

        By then Brax's auto-reset has put the world's first state back in `pipeline_state`, so
        the renewed entries start from where the robot respawned.
        """
        info = dict(state.info)
        fresh = self._episode_info(state.pipeline_state, rng, info["reset_command"])
        pending = info["reset_pending"]
        if "steps" in info:
            # Brax's EpisodeWrapper counts steps and its auto-reset zeroes the count when an
            # episode ends, time limits (which this env never sees) included.
            pending = pending | (info["steps"] == 0)
        info.update({name: jnp.where(pending, value, info[name]) for name, value in fresh.items()})
        return info

    # ---- pieces -------------------------------------------------------------------------------

    def _physics(
        self, data: mjx.Data, targets: jax.Array, delay: jax.Array, backlash: jax.Array
    ) -> mjx.Data:
        """One control step of physics substeps with the action delay and servo backlash.

        targets [3, 17]: servo targets of two control steps ago, the last one and this one;
        delay []: substeps before this step's targets act; backlash [17]: dead-band half-width.
        """
        num_substeps = self._num_substeps

        def substep(i, d):
            target = realism.delayed_target(targets, i, delay, num_substeps)
            ctrl = realism.backlash_ctrl(target, self._joint_pos_measured(d), backlash)
            return mjx.step(self.sys, d.replace(ctrl=ctrl))

        return jax.lax.fori_loop(0, num_substeps, substep, data)

    def _joint_pos_measured(self, data: mjx.Data) -> jax.Array:
        """Encoder reading [17]: true position plus the calibration offset in the actuator bias."""
        gainprm = self.sys.actuator_gainprm
        offset = -self.sys.actuator_biasprm[:, 0] / gainprm[:, 0]
        return data.qpos[self._qpos_adr] + offset

    def _imu_gyro(self, data: mjx.Data) -> jax.Array:
        return imu_gyro(data.site_xmat[self._imu_site], data.cvel[self._torso_id])

    def _local_linvel(self, data: mjx.Data) -> jax.Array:
        return local_linvel(
            data.site_xmat[self._pelvis_site],
            data.site_xpos[self._pelvis_site],
            data.cvel[self._pelvis_id],
            data.subtree_com[self._pelvis_root],
        )

    def _gravity(self, data: mjx.Data) -> jax.Array:
        # World gravity direction (0, 0, -1) in the IMU frame: minus the third row of R_imu.
        return -data.site_xmat[self._imu_site][2]

    def _imu(self, data: mjx.Data) -> jax.Array:
        """True IMU reading [6]: gravity direction and gyro in the IMU frame."""
        return jnp.concatenate([self._gravity(data), self._imu_gyro(data)])

    def _observation(
        self, data: mjx.Data, info: dict[str, Any], imu: jax.Array, rng: jax.Array
    ) -> jax.Array:
        """imu [6]: this control step's true reading; the observed one lags it by info's
        `imu_lag` control steps (interpolated towards `imu_prev`)."""
        noise = self._config.noise
        lagged = realism.lagged_imu(imu, info["imu_prev"], info["imu_lag"])
        parts = [
            (lagged[:3], noise.gravity),
            (lagged[3:], noise.gyro),
            (self._joint_pos_measured(data) - self._home_joint_pos, noise.joint_pos),
            (data.qvel[self._qvel_adr], noise.joint_vel),
        ]
        keys = jax.random.split(rng, len(parts))
        noisy = [
            value
            + noise.level * scale * jax.random.uniform(key, value.shape, minval=-1.0, maxval=1.0)
            for (value, scale), key in zip(parts, keys, strict=True)
        ]
        clock = jnp.concatenate([jnp.cos(info["phase"]), jnp.sin(info["phase"])])
        clock = clock if self.HAS_GAIT else jnp.zeros_like(clock)
        return jnp.concatenate([*noisy, info["last_action"], info["command"], clock])

    def _foot_state(self, data: mjx.Data, info: dict[str, Any]) -> dict[str, jax.Array]:
        pad_bottom = data.geom_xpos[self._pad_geoms][..., 2] - self._pad_radius  # [2 feet, 2 pads]
        contact = jnp.any(pad_bottom < self._config.foot_contact_height, axis=-1)
        contact_filtered = contact | info["last_contact"]
        air_time = info["feet_air_time"] + self._config.ctrl_dt
        first_contact = (info["feet_air_time"] > 0.0) & contact_filtered
        pos = data.site_xpos[self._foot_sites]
        return {
            "contact": contact,
            "first_contact": first_contact,
            "air_time": air_time,
            "air_time_next": air_time * ~contact_filtered,
            "pos": pos,
            "vel_xy": (pos - info["last_foot_pos"])[:, :2] / self._config.ctrl_dt,
            "height": jnp.min(pad_bottom, axis=-1),
        }

    def _signals(
        self, data: mjx.Data, info: dict[str, Any], action: jax.Array, foot: dict[str, jax.Array]
    ) -> Signals:
        return Signals(
            gravity=self._gravity(data),
            gyro=self._imu_gyro(data),
            local_linvel=self._local_linvel(data),
            yaw_rate=data.cvel[self._pelvis_id, 2],
            height=data.xpos[self._pelvis_id, 2],
            joint_pos_rel=data.qpos[self._qpos_adr] - self._home_joint_pos,
            joint_vel=data.qvel[self._qvel_adr],
            actuator_force=data.actuator_force,
            action=action,
            last_action=info["last_action"],
            command=info["command"],
            foot_contact=foot["contact"],
            first_contact=foot["first_contact"],
            air_time=foot["air_time"],
            foot_vel_xy=foot["vel_xy"],
            foot_height=foot["height"],
            phase=info["phase"],
            done=jnp.zeros((), bool),
        )

    def _fallen(self, s: Signals) -> jax.Array:
        term = self._config.termination
        # The IMU's z axis against world up: cos(tilt) is R_imu[2, 2] = -gravity_z.
        too_tilted = -s.gravity[2] < jnp.cos(term.max_tilt)
        out_of_height = (s.height < term.min_height) | (s.height > term.max_height)
        return too_tilted | out_of_height


def imu_gyro(site_xmat: jax.Array, body_cvel: jax.Array) -> jax.Array:
    """What a gyro sensor at the site reads [3]: site_xmat [3, 3], cvel of its body [6]."""
    return site_xmat.T @ body_cvel[:3]


def local_linvel(
    site_xmat: jax.Array, site_xpos: jax.Array, body_cvel: jax.Array, root_com: jax.Array
) -> jax.Array:
    """What a velocimeter at the site reads [3].

    cvel's translational part is the velocity of the point at the root's subtree COM
    (root_com [3]); move it to the site with v + w x (p - c), then rotate into the site frame.
    """
    velocity = body_cvel[3:] + jnp.cross(body_cvel[:3], site_xpos - root_com)
    return site_xmat.T @ velocity


def flatten_config(config: ml_collections.ConfigDict) -> dict[str, Any]:
    """{"push.enable": True, ...}: a config as dotted keys, the form overrides take."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, ml_collections.ConfigDict):
            flat.update({f"{key}.{k}": v for k, v in flatten_config(value).items()})
        else:
            flat[key] = value
    return flat


def _wrap_angle(angle: jax.Array) -> jax.Array:
    """angle wrapped into [-pi, pi)."""
    return jnp.mod(angle + jnp.pi, 2.0 * jnp.pi) - jnp.pi


def _quat_mul(a: jax.Array, b: jax.Array) -> jax.Array:
    """Hamilton product of quaternions (w, x, y, z) [4]."""
    w1, x1, y1, z1 = a
    w2, x2, y2, z2 = b
    return jnp.array(
        [
            w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
            w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
            w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
            w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
        ]
    )
