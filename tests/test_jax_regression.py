"""Regression guard: a jitted lax.scan over vmap(mjx.step) with 512 worlds must finish.

With jax/jaxlib 0.10.2 on a 2-core CPU this pattern was reported to hang forever at 0% CPU with
256 or more worlds, while 0.9.2 ran it; pyproject.toml keeps jax below 0.10 (the tested 0.9.2). The scan runs in a child
process so a hang fails the test at its timeout instead of stalling the suite.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

NUM_WORLDS = 512
TIMEOUT_S = 300

SCRIPT = textwrap.dedent(
    f"""
    import jax, jax.numpy as jnp
    from mujoco import mjx
    from wildrobot.envs.wildrobot import constants
    import mujoco

    model = mujoco.MjModel.from_xml_path(str(constants.XML_PATH))
    mx = mjx.put_model(model)
    data = mjx.make_data(mx)
    key = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_KEY, "home")
    data = data.replace(qpos=jnp.asarray(model.key_qpos[key]), ctrl=jnp.asarray(model.key_ctrl[key]))
    batch = jax.tree.map(lambda x: jnp.broadcast_to(x, ({NUM_WORLDS},) + x.shape), data)

    @jax.jit
    def rollout(d):
        def body(d, _):
            return jax.vmap(mjx.step, in_axes=(None, 0))(mx, d), None
        return jax.lax.scan(body, d, None, length=20)[0]

    out = jax.block_until_ready(rollout(batch))
    assert bool(jnp.all(jnp.isfinite(out.qpos))), "non-finite qpos"
    print("SCAN_OK", out.qpos.shape)
    """
)


@pytest.mark.slow
def test_scan_over_vmapped_mjx_step_with_512_worlds_finishes() -> None:
    try:
        result = subprocess.run(
            [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"scan over vmap(mjx.step) with {NUM_WORLDS} worlds hung past {TIMEOUT_S} s")
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"SCAN_OK ({NUM_WORLDS}," in result.stdout
