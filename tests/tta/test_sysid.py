"""sysid recovers a known mass or servo-gain change from 150 control steps (3 s) of data.

The trained LayerNorm-free stand policy stands under the shift (pushes included: the spike guard
skips the transitions they corrupt) while sysid fits the log mass and kp scales by damped
Gauss-Newton (rate 0.3) through forward-mode derivatives of the MJX step. Stated tolerance,
over 8 episodes: median absolute error under 0.02 and every episode within 0.05 of the truth,
for mass x1.4 (severity 3, with the torso's centre of mass moved 2 cm, which it does not model)
and kp x0.6 (severity 3); on the clean env likewise around 1. Measured here (docs/tta.md): mass
errors 0.001-0.021, kp and clean errors at most 0.007. ~2 minutes (the forward-mode step
compiles slowly on a CPU).
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

from tests.trained_stand import TrainedStand
from wildrobot.workers.training.trainer import make_base_env
from wildrobot.workers.tta import shifts
from wildrobot.workers.tta.adapters import make_adapter
from wildrobot.workers.tta.evaluate import _fresh, load_source
from wildrobot.workers.tta.rollout import make_rollout

pytestmark = pytest.mark.slow
EPISODES, STEPS = 8, 150


@pytest.mark.xfail(
    reason="issue 24: sysid now replays at the nominal latency (5 substeps) instead of reading the "
    "episode's true one (4-6); the 0.02/0.05 tolerance was measured with the true latency and "
    "has not been re-measured",
    strict=False,
)
@pytest.mark.timeout(1800)
def test_sysid_recovers_mass_and_kp(trained_stand: TrainedStand) -> None:
    source, spec = load_source(trained_stand.checkpoint_dir)
    env = make_base_env(spec.task, spec.env_overrides)
    sysid = make_adapter("sysid", source, env=env)
    run = make_rollout(env, source, sysid, EPISODES, STEPS)
    keys = jax.random.split(jax.random.PRNGKey(1), EPISODES)
    for name, truth in (("mass", (1.4, 1.0)), ("kp", (1.0, 0.6)), ("clean", (1.0, 1.0))):
        params = shifts.shift_params(name, env.config, 3, keys)
        values, state = run(
            source.params, params, _fresh(sysid, source, EPISODES), jax.random.PRNGKey(2)
        )
        assert not np.asarray(values["fell"]).any(), name  # it stood while it measured
        assert np.asarray(state.updates).min() >= 0.7 * STEPS, name  # most transitions used
        for key, true in zip(("estimate/mass_scale", "estimate/kp_scale"), truth, strict=True):
            error = np.abs(np.asarray(values[key]) - true)
            print(f"{name}: {key} {np.round(np.asarray(values[key]), 3)} truth {true}")
            assert np.median(error) < 0.02 and error.max() < 0.05, (name, key, error)
