"""Named recipes build valid specs within the default cost limits; explicit fields win."""

from __future__ import annotations

import pytest

from wildrobot import costs, presets
from wildrobot.specs import PpoSpec


@pytest.mark.parametrize("name", sorted(presets.PRESETS))
def test_every_preset_is_a_valid_affordable_spec(name: str) -> None:
    spec = PpoSpec(**presets.PRESETS[name])
    costs.check_cost(spec, costs.CostLimits())
    assert spec.task == ("WildRobotWalk" if name.startswith("walk") else "WildRobotStand")


def test_walk_gpu_is_the_4096_env_recipe() -> None:
    spec = PpoSpec(**presets.PRESETS["walk-gpu"])
    assert spec.num_envs == 4096 and spec.episode_length == 1000


def test_explicit_fields_win_and_overrides_merge_by_key() -> None:
    fields = presets.apply_preset(
        "walk-cpu", {"num_envs": 128, "env_overrides": {"command.vx": (0.1, 0.2), "sim_dt": 0.002}}
    )
    assert fields["num_envs"] == 128 and fields["batch_size"] == 256
    overrides = fields["env_overrides"]
    assert overrides["command.vx"] == (0.1, 0.2) and overrides["sim_dt"] == 0.002
    assert overrides["command.vy"] == presets.PRESETS["walk-cpu"]["env_overrides"]["command.vy"]
    # The preset itself is not changed by a merge.
    assert presets.PRESETS["walk-cpu"]["env_overrides"]["command.vx"] == (0.0, 0.5)


def test_unknown_preset_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"preset: unknown 'run' \(known: walk-gpu, walk-cpu"):
        presets.apply_preset("run", {})


def test_walk_cpu_ssm_is_walk_cpu_with_an_ssm_policy() -> None:
    ssm, mlp = PpoSpec(**presets.PRESETS["walk-cpu-ssm"]), PpoSpec(**presets.PRESETS["walk-cpu"])
    assert (ssm.policy_arch, mlp.policy_arch) == ("ssm", "mlp")
    differing = {f for f in PpoSpec.model_fields if getattr(ssm, f) != getattr(mlp, f)}
    assert differing == {"policy_arch"}  # the SSM settings are the spec defaults
