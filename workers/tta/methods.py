"""The TTA methods and what each is allowed to know.

A method is an adapter (workers/tta/adapters.py), optionally with best-of-N test-time compute,
and a declaration of its inputs:

- `observation`: what the policy sees, the shift's sensor corruption included, and the robot's
  own bookkeeping (its past actions, the command, the gait clock, its calibrated latency range
  and servo backlash, its sensor-noise stream);
- `nominal_model`: the env's MJX model as trained, with the training latency and no push;
- `noise_free_state`: the simulator's joint and base positions and velocities before and after
  each transition, without sensor noise (sysid's replay; not the model, not the shift, not the
  episode's latency or push);
- `own_episodes`: episodes the method ran itself in the shifted env before the evaluated one: the
  observations it measured there, the actions it took and their task reward (maml's inner loop);
- `privileged_state`: the whole simulator state (only methods named `*_oracle`): what a method
  that knew the truth could do, so the report shows what privilege buys.

`truth_fields` says, per declaration, which parts of the env state a method must not read; the
structural test (tests/tta/test_privilege.py) replaces them with garbage and asserts identical
results.
"""

from __future__ import annotations

from dataclasses import dataclass

INPUTS = ("observation", "nominal_model", "noise_free_state", "own_episodes", "privileged_state")


@dataclass(frozen=True)
class Method:
    name: str
    adapter: str  # the adapter's registry name
    best_of_n: bool  # test-time compute: candidates scored by an MJX lookahead
    inputs: tuple[str, ...]

    def __post_init__(self) -> None:
        unknown = [i for i in self.inputs if i not in INPUTS]
        if unknown:
            raise ValueError(f"{self.name}: unknown inputs {unknown}; known: {INPUTS}")
        if ("privileged_state" in self.inputs) != self.name.endswith("_oracle"):
            raise ValueError(
                f"{self.name}: privileged_state is for methods named *_oracle, and only them"
            )

    @property
    def privileged(self) -> bool:
        return "privileged_state" in self.inputs


REGISTRY: dict[str, Method] = {
    m.name: m
    for m in (
        Method("none", "none", False, ("observation",)),
        Method("obs_norm", "obs_norm", False, ("observation",)),
        Method("tent", "tent", False, ("observation",)),
        Method("sysid", "sysid", False, ("observation", "nominal_model", "noise_free_state")),
        Method("best_of_n", "none", True, ("observation", "nominal_model")),
        Method(
            "best_of_n_oracle",
            "none",
            True,
            ("observation", "nominal_model", "privileged_state"),
        ),
        Method(
            "sysid_best_of_n",
            "sysid",
            True,
            ("observation", "nominal_model", "noise_free_state"),
        ),
        Method("maml", "maml", False, ("observation", "own_episodes")),
    )
}
METHODS = tuple(REGISTRY)

# env-state info entries that carry a shift's true value (latency, push) or the true IMU reading
# (which, beside the measured one, gives the IMU shift away).
TRUTH_INFO = ("action_substeps", "push_force", "imu_prev")


def truth_fields(method: Method) -> dict[str, bool]:
    """What of an env State the method must not read: the clean observation (`obs`, the reading
    without the IMU shift), the info entries in TRUTH_INFO, and the simulator state
    (`pipeline_state`) unless it declares noise_free_state or privileged_state."""
    state_declared = {"noise_free_state", "privileged_state"} & set(method.inputs)
    return {
        "obs": not method.privileged,
        "info": not method.privileged,
        "pipeline_state": not state_declared,
    }
