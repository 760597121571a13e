"""End-to-end trainer tests on PointMass: exact resume, NaN guard, stop, load_policy, pmap."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.training.tiny_runs import (
    ENV_STEPS_PER_ITERATION_PER_ENV,
    STEPS_PER_ITERATION,
    RecordingHooks,
    point_mass_spec,
)
from wildrobot.workers.training import checkpoint as ckpt
from wildrobot.workers.training.api import NonFiniteError, checkpoint_path
from wildrobot.workers.training.ppo import load_policy, train_ppo
from wildrobot.workers.training.trainer import init_state, make_trainer

REPO_ROOT = Path(__file__).resolve().parents[2]


def _saved_state(checkpoint_dir: Path):
    spec = ckpt.read_spec(checkpoint_dir)
    return ckpt.load_state(checkpoint_dir, init_state(make_trainer(spec)))


def test_metrics_every_iteration_and_checkpoints(tmp_path: Path):
    hooks = RecordingHooks()
    result = train_ppo(point_mass_spec(5, checkpoint_every=2), tmp_path, hooks)

    assert (result.iterations, result.final_step, result.stopped) == (
        5,
        5 * STEPS_PER_ITERATION,
        False,
    )
    assert [step for step, _ in hooks.metrics] == [i * STEPS_PER_ITERATION for i in range(1, 6)]
    metrics = hooks.metrics[-1][1]
    for name in (
        "env_steps",
        "env_steps_per_s",
        "episode/reward",
        "episode/length",
        "reward/alive",
        "reward/distance",
        "reward/action",
        "loss/policy",
        "loss/value",
        "loss/entropy",
        "policy/approx_kl",
        "learning_rate",
    ):
        assert np.isfinite(metrics[name]), name
    # Checkpoints every 2 iterations and at the end; nothing half-written left behind.
    assert [step for step, _ in hooks.checkpoints] == [
        2 * STEPS_PER_ITERATION,
        4 * STEPS_PER_ITERATION,
        5 * STEPS_PER_ITERATION,
    ]
    assert result.checkpoint_dir == checkpoint_path(tmp_path, 5 * STEPS_PER_ITERATION)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        f"{step:012d}" for step, _ in hooks.checkpoints
    ]
    assert ckpt.read_meta(result.checkpoint_dir)["iteration"] == 5


def test_resume_continues_the_same_run_exactly(tmp_path: Path):
    # 2K iterations in one go vs K iterations in another process (as a new worker attempt would),
    # then a resume here for K more: the whole final state is bitwise equal.
    k = 3
    straight = train_ppo(
        point_mass_spec(2 * k, checkpoint_every=100), tmp_path / "a", RecordingHooks()
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from pathlib import Path\n"
            "from tests.training.tiny_runs import RecordingHooks, point_mass_spec\n"
            "from wildrobot.workers.training.ppo import train_ppo\n"
            f"r = train_ppo(point_mass_spec({k}, checkpoint_every=100), Path({str(tmp_path / 'b')!r}),"
            " RecordingHooks())\n"
            "print(r.checkpoint_dir)\n",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    first_checkpoint = Path(proc.stdout.strip().splitlines()[-1])
    resumed_hooks = RecordingHooks()
    resumed = train_ppo(
        point_mass_spec(2 * k, checkpoint_every=100),
        tmp_path / "b",
        resumed_hooks,
        resume_from=first_checkpoint,
    )

    assert resumed.iterations == straight.iterations == 2 * k
    assert resumed_hooks.metrics[0][0] == (k + 1) * STEPS_PER_ITERATION
    expected, actual = _saved_state(straight.checkpoint_dir), _saved_state(resumed.checkpoint_dir)
    # The whole state: params, optimizer, normalizer, env states, counters and RNG.
    jax.tree.map(np.testing.assert_array_equal, expected, actual)


def test_resume_refuses_a_different_spec(tmp_path: Path):
    first = train_ppo(point_mass_spec(1), tmp_path, RecordingHooks())
    with pytest.raises(ValueError, match="learning_rate"):
        train_ppo(
            point_mass_spec(2, learning_rate=1e-3),
            tmp_path,
            RecordingHooks(),
            resume_from=first.checkpoint_dir,
        )


def test_non_finite_reward_raises_and_keeps_last_checkpoint(tmp_path: Path):
    # Rewards turn NaN after 2 iterations' worth of steps per env: iteration 3 goes bad.
    spec = point_mass_spec(
        6,
        checkpoint_every=1,
        env_overrides={"nan_reward_after_steps": 2 * ENV_STEPS_PER_ITERATION_PER_ENV},
    )
    hooks = RecordingHooks()
    with pytest.raises(NonFiniteError) as caught:
        train_ppo(spec, tmp_path, hooks)

    assert caught.value.iteration == 3
    assert caught.value.quantity == "loss/total"
    assert "iteration 3" in str(caught.value)
    assert len(hooks.metrics) == 2  # the bad iteration's metrics are never reported
    last_good = checkpoint_path(tmp_path, 2 * STEPS_PER_ITERATION)
    assert [path for _, path in hooks.checkpoints] == [
        checkpoint_path(tmp_path, STEPS_PER_ITERATION),
        last_good,
    ]
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        f"{STEPS_PER_ITERATION:012d}",
        f"{2 * STEPS_PER_ITERATION:012d}",
    ]
    state = _saved_state(last_good)
    assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(state.params))
    actions = load_policy(last_good)(jnp.ones((4, 6)))
    assert np.all(np.isfinite(actions))


def test_should_stop_checkpoints_and_returns_stopped(tmp_path: Path):
    hooks = RecordingHooks(stop_after=2)
    result = train_ppo(point_mass_spec(10, checkpoint_every=100), tmp_path, hooks)

    assert result.stopped and result.iterations == 2
    assert result.checkpoint_dir == checkpoint_path(tmp_path, 2 * STEPS_PER_ITERATION)
    assert hooks.checkpoints == [(2 * STEPS_PER_ITERATION, result.checkpoint_dir)]


def test_a_relative_run_dir_checkpoints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # Orbax refuses relative paths; a library caller's relative run dir used to fail only at the
    # first checkpoint, after the training it had paid for.
    monkeypatch.chdir(tmp_path)
    result = train_ppo(point_mass_spec(2), Path("runs/relative"), RecordingHooks())

    expected = checkpoint_path(tmp_path / "runs" / "relative", 2 * STEPS_PER_ITERATION)
    assert result.checkpoint_dir == expected
    assert (result.checkpoint_dir / ckpt.STATE_DIR).is_dir()


def test_load_policy_matches_the_trained_policy(tmp_path: Path):
    result = train_ppo(point_mass_spec(2), tmp_path, RecordingHooks())
    policy = load_policy(result.checkpoint_dir)
    obs = jax.random.normal(jax.random.PRNGKey(1), (5, 6))

    actions = policy(obs)

    assert actions.shape == (5, 2)
    assert np.all(np.abs(actions) <= 1.0)
    # Reference: the deterministic policy rebuilt by hand from the saved training state.
    from brax.training.agents.ppo import networks as ppo_networks

    trainer = make_trainer(ckpt.read_spec(result.checkpoint_dir))
    state = jax.tree.map(lambda x: x[0], _saved_state(result.checkpoint_dir))
    reference = ppo_networks.make_inference_fn(trainer.networks)(
        (state.normalizer, state.params.policy, state.params.value), deterministic=True
    )(obs, jax.random.PRNGKey(0))[0]
    # Eager vs jitted evaluation of the same float32 MLP: rounding differs by ~1 ulp.
    np.testing.assert_allclose(actions, reference, atol=1e-6)


def _run_with_two_devices(code: str) -> subprocess.CompletedProcess[str]:
    env = dict(
        os.environ,
        XLA_FLAGS=f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=2",
        JAX_PLATFORMS="cpu",
    )
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_pmap_over_two_host_devices(tmp_path: Path):
    proc = _run_with_two_devices(
        f"""
        import json
        from pathlib import Path
        import jax, numpy as np
        from tests.training.tiny_runs import RecordingHooks, point_mass_spec
        from wildrobot.workers.training import checkpoint as ckpt
        from wildrobot.workers.training.ppo import train_ppo
        from wildrobot.workers.training.trainer import init_state, make_trainer

        assert jax.local_device_count() == 2
        hooks = RecordingHooks()
        result = train_ppo(point_mass_spec(3), Path({str(tmp_path)!r}), hooks)
        state = ckpt.load_state(result.checkpoint_dir, init_state(make_trainer(point_mass_spec(3))))
        replicated = all(np.array_equal(x[0], x[1]) for x in jax.tree.leaves(state.params))
        try:
            make_trainer(point_mass_spec(3, num_envs=3, batch_size=12, num_minibatches=1))
            error = ""
        except ValueError as exc:
            error = str(exc)
        print(json.dumps({{
            "iterations": result.iterations,
            "meta": ckpt.read_meta(result.checkpoint_dir),
            "params_replicated": replicated,
            "rng_per_device_differs": not np.array_equal(state.rng[0], state.rng[1]),
            "env_shape": list(state.env_state.obs.shape),
            "episode_length": hooks.metrics[-1][1]["episode/length"],
            "error": error,
        }}))
        """
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["iterations"] == 3
    assert report["meta"]["num_devices"] == 2
    assert report["params_replicated"] and report["rng_per_device_differs"]
    assert report["env_shape"] == [2, 16, 6]  # 32 envs split over 2 devices
    assert report["episode_length"] > 0
    assert "num_envs (3)" in report["error"] and "(2)" in report["error"]


def test_eval_every_adds_eval_metrics(tmp_path: Path):
    hooks = RecordingHooks()
    train_ppo(point_mass_spec(2, eval_every=2, num_eval_envs=8), tmp_path, hooks)

    assert not any(name.startswith("eval/") for name in hooks.metrics[0][1])
    report = hooks.metrics[1][1]
    # The evaluation that ran is the spec's: 8 envs, one episode each, of at most 50 steps.
    assert report["eval/num_envs"] == 8 and report["eval/episode_length_limit"] == 50
    length, fall_rate = report["eval/mean_episode_length"], report["eval/fall_rate"]
    # Per-env counts averaged over 8 envs: both are whole multiples of 1/8.
    assert length * 8 == round(length * 8) and fall_rate * 8 == round(fall_rate * 8)
    # An env that did not fall ran all 50 steps; one that fell ran 1..49 steps:
    #   50 (1 - f) + 1 f  <=  mean length  <=  50 (1 - f) + 49 f
    assert 50 * (1 - fall_rate) + fall_rate <= length <= 50 * (1 - fall_rate) + 49 * fall_rate


def test_checkpoint_round_trips_zero_size_leaves(tmp_path: Path):
    # MJX data holds zero-size arrays (e.g. `act`), which orbax alone refuses to save.
    spec = point_mass_spec(1)
    trainer = make_trainer(spec)
    state = init_state(trainer)
    info = {**state.env_state.info, "empty": np.zeros((1, 32, 0), np.float32)}
    state = state.replace(env_state=state.env_state.replace(info=info))

    path = ckpt.save_checkpoint(tmp_path, state, spec, trainer.network_config)

    restored = ckpt.load_state(path, state)
    assert restored.env_state.info["empty"].shape == (1, 32, 0)
    jax.tree.map(np.testing.assert_array_equal, jax.device_get(state), restored)
