"""The physics backend setting (`impl`): validated like every setting; "warp" refuses to build
where it cannot run, saying why, and "jax" builds MJX's JAX model."""

from __future__ import annotations

import importlib.util

import jax
import pytest

from wildrobot.envs import registry
from wildrobot.envs.wildrobot import backend
from wildrobot.specs import PpoSpec


def test_jax_is_the_default_and_builds_a_jax_model() -> None:
    env = registry.make("WildRobotWalk")
    assert env.config.impl == "jax"
    assert env.sys.impl.value == "jax"


def test_an_unknown_impl_is_refused_naming_the_choices() -> None:
    with pytest.raises(ValueError, match=r"impl: must be one of \['jax', 'warp'\], got 'cuda'"):
        PpoSpec(task="WildRobotWalk", env_overrides={"impl": "cuda"})
    with pytest.raises(ValueError, match="impl: must be one of"):
        registry.make("WildRobotWalk", config_overrides={"impl": 1})


@pytest.mark.skipif(
    jax.default_backend() == "gpu" and importlib.util.find_spec("mujoco_warp") is not None,
    reason="warp can run here",
)
def test_warp_where_it_cannot_run_says_why() -> None:
    reason = backend.unavailable("warp")
    assert reason is not None and reason.startswith("impl: warp needs")
    assert PpoSpec(task="WildRobotWalk", env_overrides={"impl": "warp"})  # a valid setting
    with pytest.raises(ValueError) as raised:
        registry.make("WildRobotWalk", config_overrides={"impl": "warp"})
    assert str(raised.value) == reason
