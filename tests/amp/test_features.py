"""AMP features: one definition on both sides of the discriminator, and the env wrapper.

The rollout tests share one compiled wrapped env (module fixture); its first compile takes about
a minute on a 2-core CPU, later runs read JAX's compilation cache.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
import pytest
from mujoco import mjx

from wildrobot.envs import registry
from wildrobot.envs.wildrobot import constants
from wildrobot.workers.amp import features, reference, wrapper

# MJX compiles (the rollout fixture ~1-3 minutes on a 2-core CPU): the slow set.
pytestmark = pytest.mark.slow

CLIP = "walk_0.2"
WINDOW = 3
NUM_WORLDS = 4
EPISODE_LENGTH = 100
ATOL = 1e-5


@pytest.fixture(scope="module")
def env():
    return registry.make("WildRobotStand")


@pytest.fixture(scope="module")
def names(env):
    return features.feature_names(env)


@pytest.fixture(scope="module")
def feature_fn(env):
    return jax.jit(features.make_feature_fn(env))


@pytest.fixture(scope="module")
def library():
    return reference.load_library([CLIP])


def assert_columns_close(actual, expected, names, what):
    """allclose column by column; the message names every failing column."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shapes {actual.shape} != {expected.shape}"
    actual = actual.reshape(-1, len(names))
    expected = expected.reshape(-1, len(names))
    bad = [
        f"{name} (max |diff| {np.max(np.abs(actual[:, i] - expected[:, i])):.3g})"
        for i, name in enumerate(names)
        if not np.allclose(actual[:, i], expected[:, i], atol=ATOL, rtol=ATOL)
    ]
    assert not bad, f"{what}: columns differ: {', '.join(bad)}"


_REPLAY = {}


def replay_frame(env, feature_fn, qpos, qvel):
    """Features of one frame, the way a kinematic replay would do it: mjx Data, kinematics."""
    if env not in _REPLAY:
        template = mjx.make_data(env.sys)

        def replay(q, v):
            return feature_fn(mjx.kinematics(env.sys, template.replace(qpos=q, qvel=v)))

        _REPLAY[env] = jax.jit(replay)
    q, v = jnp.asarray(qpos, jnp.float32), jnp.asarray(qvel, jnp.float32)
    return np.asarray(_REPLAY[env](q, v))


# ---- definitions ----------------------------------------------------------------------------


def test_names_count_and_finite(env, names, feature_fn):
    data = mjx.make_data(env.sys).replace(qpos=jnp.asarray(env.mj_model.key_qpos[0], jnp.float32))
    frame = feature_fn(data)
    assert frame.shape == (len(names),) == (features.num_features(env),)
    assert len(set(names)) == len(names)
    assert np.all(np.isfinite(np.asarray(frame)))


def test_heading_frame_by_hand(env, names, feature_fn):
    """Home pose turned 90 deg left, moving +1 m/s along world x: in the heading frame that is
    (0, -1, 0) (the robot moves to its right). Body-frame yaw rate 0.5 stays 0.5 about z."""
    col = {n: i for i, n in enumerate(names)}
    qpos = np.array(env.mj_model.key_qpos[0])
    turn = np.array([np.cos(np.pi / 4), 0.0, 0.0, np.sin(np.pi / 4)])
    quat = np.empty(4)
    mujoco.mju_mulQuat(quat, turn, qpos[3:7])
    qpos[3:7] = quat
    qvel = np.zeros(env.sys.nv)
    qvel[0], qvel[5] = 1.0, 0.5
    frame = replay_frame(env, feature_fn, qpos, qvel)
    home = replay_frame(env, feature_fn, env.mj_model.key_qpos[0], np.zeros(env.sys.nv))
    linvel = [frame[col[f"root_linvel_{a}"]] for a in "xyz"]
    np.testing.assert_allclose(linvel, [0.0, -1.0, 0.0], atol=1e-5)
    assert abs(frame[col["root_angvel_z"]] - 0.5) < 0.02  # home pelvis is nearly level
    # Turning the whole robot about z changes nothing that is expressed in the heading frame.
    same = [i for n, i in col.items() if not n.startswith(("root_linvel", "root_angvel"))]
    np.testing.assert_allclose(frame[same], home[same], atol=1e-5)
    assert home[col["left_foot_y"]] > 0.02 > -0.02 > home[col["right_foot_y"]]
    assert home[col["left_contact"]] == home[col["right_contact"]] == 1.0
    assert np.all(home[[col[f"jpos_{j}"] for j in constants.JOINT_NAMES]] == 0.0)


def test_features_match_native_mujoco(env, names, feature_fn, library):
    """An independent reading of the definitions: native mj_kinematics and numpy, on clip frames."""
    col = {n: i for i, n in enumerate(names)}
    m = env.mj_model
    d = mujoco.MjData(m)
    motion = library.motions[0]
    pelvis = m.body(constants.ROOT_BODY).id
    sites = [m.site(s).id for s in constants.FEET_SITES]
    qadr = [m.jnt_qposadr[m.joint(j).id] for j in constants.JOINT_NAMES]
    for i in range(0, motion.num_frames, 25):
        d.qpos[:] = motion.qpos[i]
        mujoco.mj_kinematics(m, d)
        rot = d.xmat[pelvis].reshape(3, 3)
        yaw = np.arctan2(rot[1, 0], rot[0, 0])
        heading = np.array(
            [[np.cos(yaw), -np.sin(yaw), 0], [np.sin(yaw), np.cos(yaw), 0], [0, 0, 1]]
        )
        lowest = []
        for pads in constants.FOOT_PAD_GEOMS:
            ends = []
            for pad in pads:
                g = m.geom(pad).id
                axis = d.geom_xmat[g].reshape(3, 3)[:, 2]
                for sign in (-1.0, 1.0):  # the capsule's two end-sphere centres
                    ends.append(d.geom_xpos[g][2] + sign * m.geom_size[g, 1] * axis[2])
            lowest.append(min(ends) - m.geom_size[m.geom(pads[0]).id, 0])
        expected = {
            "root_height": [d.xpos[pelvis][2]],
            "gravity_": -rot[2],
            "jpos_": motion.qpos[i, qadr] - m.key_qpos[0, qadr],
            "left_foot_": heading.T @ (d.site_xpos[sites[0]] - d.xpos[pelvis]),
            "right_foot_": heading.T @ (d.site_xpos[sites[1]] - d.xpos[pelvis]),
            "left_contact": [float(lowest[0] < features.CONTACT_HEIGHT)],
            "right_contact": [float(lowest[1] < features.CONTACT_HEIGHT)],
        }
        frame = replay_frame(env, feature_fn, motion.qpos[i], np.zeros(m.nv))
        for prefix, values in expected.items():
            got = frame[[j for n, j in col.items() if n.startswith(prefix)]]
            np.testing.assert_allclose(got, values, atol=2e-5, err_msg=f"frame {i}: {prefix}*")


# ---- parity: reference.py vs a frame-by-frame replay ------------------------------------------


def test_reference_frames_match_replay(env, names, feature_fn, library):
    """Clip frames (times on frames) featurized in batch == one by one, column by column."""
    motion = library.motions[0]
    # The last frame of a wrap clip plays as frame 0 carried one cycle on: leave it out.
    frames = np.arange(0, motion.num_frames - 1, 10)
    times = frames / motion.fps
    qpos = library.qpos_at(0, times)
    np.testing.assert_allclose(qpos, motion.qpos[frames], atol=1e-9)  # on frames: no interpolation
    qvel = library.qvel_at(0, times)
    batch = reference.frame_features(env, qpos, qvel)
    replay = np.stack(
        [replay_frame(env, feature_fn, q, v) for q, v in zip(qpos, qvel, strict=True)]
    )
    assert_columns_close(batch, replay, names, f"{CLIP} frames {frames.tolist()}")


def test_reference_windows_match_replay(env, names, feature_fn, library):
    """reference_windows == the replay of the same sampled times, frames in time order."""
    num, dt = 3, env.dt
    sampled = library.sample_windows(np.random.default_rng(5), num, WINDOW, dt)
    windows = reference.reference_windows(env, library, num, WINDOW, dt, np.random.default_rng(5))
    assert windows.shape == (num, WINDOW * len(names))
    for w in range(num):
        times = sampled.start_time[w] + np.arange(WINDOW) * dt
        qpos = library.qpos_at(int(sampled.clip[w]), times)
        qvel = library.qvel_at(int(sampled.clip[w]), times)
        replay = np.concatenate(
            [replay_frame(env, feature_fn, q, v) for q, v in zip(qpos, qvel, strict=True)]
        )
        assert_columns_close(windows[w], replay, names, f"window {w} (start {times[0]:.4f} s)")


def test_load_library_names_and_paths():
    by_name = reference.load_library(["stand", CLIP])
    by_path = reference.load_library([reference.CLIPS_DIR / f"{CLIP}.npz"])
    assert [m.name for m in by_name.motions][1] == by_path.motions[0].name
    with pytest.raises(FileNotFoundError, match="shipped clips"):
        reference.load_library(["no_such_clip"])


# ---- policy side --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wrapped(env):
    """The training stack with the AMP wrapper, and its jitted reset and step."""
    stack = wrapper.wrap_for_training(env, WINDOW, EPISODE_LENGTH)
    return stack, jax.jit(stack.reset), jax.jit(stack.step)


@pytest.fixture(scope="module")
def rollout(wrapped):
    """States of a random-action rollout: NUM_WORLDS worlds, 100 steps, actions in [-1, 1]
    held for 10 steps each. Held actions move the joints far enough to make the robot stumble,
    lift each foot and fall (falls auto-reset); per-step white noise is filtered away by the env's
    action filter and leaves one foot planted throughout."""
    _, reset, step = wrapped
    state = reset(jax.random.split(jax.random.PRNGKey(0), NUM_WORLDS))
    keys = jax.random.split(jax.random.PRNGKey(1), 10)
    states = []
    for i in range(100):
        shape = (NUM_WORLDS, constants.NUM_ACTUATORS)
        action = jax.random.uniform(keys[i // 10], shape, minval=-1, maxval=1)
        state = step(state, action)
        states.append(state)
    return states


def test_no_column_constant_on_one_side_only(env, names, library, rollout):
    policy = np.stack([np.asarray(s.info["amp_window"]) for s in rollout]).reshape(-1, len(names))
    ref = reference.reference_windows(env, library, 2000, WINDOW, env.dt, np.random.default_rng(0))
    ref = ref.reshape(-1, len(names))
    assert np.all(np.isfinite(policy)) and np.all(np.isfinite(ref))
    constant_policy = policy.std(axis=0) < 1e-6
    constant_ref = ref.std(axis=0) < 1e-6
    one_sided = [
        f"{n} (constant on the {'policy' if p else 'reference'} side)"
        for n, p, r in zip(names, constant_policy, constant_ref, strict=True)
        if p != r
    ]
    assert not one_sided, "columns constant on one side only: " + ", ".join(one_sided)
    # The check must be able to fire: contacts must actually change on both sides here.
    for side in ("left", "right"):
        c = names.index(f"{side}_contact")
        assert 0.0 < policy[:, c].mean() < 1.0 and 0.0 < ref[:, c].mean() < 1.0, side


def test_window_follows_states(env, names, feature_fn, rollout):
    """amp_window is the last WINDOW states' features, oldest first, within an episode."""
    num_features = len(names)
    frames = [np.asarray(jax.vmap(feature_fn)(s.pipeline_state)) for s in rollout[: WINDOW + 1]]
    last = np.asarray(rollout[WINDOW].info["amp_window"]).reshape(NUM_WORLDS, WINDOW, num_features)
    live = np.asarray(
        [not any(s.done[w] for s in rollout[: WINDOW + 1]) for w in range(NUM_WORLDS)]
    )
    assert live.any()
    expected = np.stack(frames[1:], axis=1)
    assert_columns_close(last[live], expected[live], names, "window of states 1..WINDOW")


def test_window_across_auto_reset(env, names, feature_fn, wrapped):
    """At the step that ends an episode, amp_window ends at the real last state (not the reset
    state the auto-reset swaps in); the next episode's history starts from its first state."""
    _, reset, step = wrapped
    num_features = len(names)
    state = reset(jax.random.split(jax.random.PRNGKey(2), NUM_WORLDS))
    first = np.asarray(jax.vmap(feature_fn)(state.pipeline_state))
    action = jnp.zeros((NUM_WORLDS, constants.NUM_ACTUATORS))
    for _ in range(WINDOW):
        state = step(state, action)
    before_end = state
    # EpisodeWrapper's counter one short of the limit: the next step is the episode's last.
    last_step = before_end.replace(
        info={**before_end.info, "steps": before_end.info["steps"] * 0 + EPISODE_LENGTH - 1}
    )
    terminal = step(last_step, action)
    assert np.all(np.asarray(terminal.done) == 1.0)
    # The same step, not at the limit: no auto-reset, so its pipeline_state is the real one.
    real = step(before_end, action)
    assert np.all(np.asarray(real.done) == 0.0)
    real_frame = np.asarray(jax.vmap(feature_fn)(real.pipeline_state))
    window = np.asarray(terminal.info["amp_window"]).reshape(NUM_WORLDS, WINDOW, num_features)
    assert_columns_close(window[:, -1], real_frame, names, "terminal frame vs the real state")
    assert_columns_close(
        terminal.info["amp_window"], real.info["amp_window"], names, "terminal window"
    )
    # The auto-reset swapped the first state back in ...
    swapped = np.asarray(jax.vmap(feature_fn)(terminal.pipeline_state))
    assert_columns_close(swapped, first, names, "pipeline_state after the auto-reset")
    # ... and the next step's history is that first state repeated, then the new state.
    after = step(terminal, action)
    history = np.asarray(after.info["amp_history"])
    new_frame = np.asarray(jax.vmap(feature_fn)(after.pipeline_state))
    for k in range(WINDOW - 1):
        assert_columns_close(history[:, k], first, names, f"fresh history frame {k}")
    assert_columns_close(history[:, -1], new_frame, names, "first step of the new episode")
    assert not np.allclose(history[:, :-1], window[:, 1:], atol=1e-3), "old episode frames kept"


def test_fall_starts_fresh_history(env, names, feature_fn, wrapped):
    """A termination by the env itself (done from the inner env, not the time limit) also starts
    a fresh history: the wrapper's own amp_episode_done flag, set as the inner env reported."""
    _, reset, step = wrapped
    state = reset(jax.random.split(jax.random.PRNGKey(3), NUM_WORLDS))
    action = jnp.zeros((NUM_WORLDS, constants.NUM_ACTUATORS))
    state = step(step(state, action), action)
    flagged = state.replace(info={**state.info, "amp_episode_done": jnp.ones(NUM_WORLDS)})
    after = step(flagged, action)
    here = np.asarray(jax.vmap(feature_fn)(state.pipeline_state))
    history = np.asarray(after.info["amp_history"])
    for k in range(WINDOW - 1):
        assert_columns_close(history[:, k], here, names, f"fresh history frame {k}")
