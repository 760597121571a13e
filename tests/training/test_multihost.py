"""Multi-host training on one machine: N local CPU processes joined by jax.distributed (gloo
collectives), started exactly as the pods of a Kubernetes Indexed Job start `wildrobot-host`.

Equivalence: 2 processes with 1 CPU device each train the same parameters, bit for bit, as 1
process with 2 local devices (the same global batch split over the same 2 devices). Every
per-device row (env keys, RNG) is drawn globally and each host keeps its own, and the cross-device
reductions (pmean/psum of 2 operands) are order-independent, so no tolerance is needed.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import orbax.checkpoint as ocp
import pytest

from tests.training.tiny_runs import point_mass_spec
from wildrobot.workers.training import checkpoint as ckpt
from wildrobot.workers.training.ppo import load_policy

pytestmark = [pytest.mark.slow]
REPO_ROOT = Path(__file__).resolve().parents[2]
ITERATIONS = 3


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch(
    run_dir: Path,
    spec_file: Path,
    devices: int,
    process: tuple[str, int, int] | None,
    resume_from: Path | None = None,
):
    env = dict(
        os.environ,
        JAX_PLATFORMS="cpu",
        XLA_FLAGS=f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={devices}",
        PYTHONUNBUFFERED="1",
    )
    for name in ("WILDROBOT_COORDINATOR", "WILDROBOT_NUM_PROCESSES", "WILDROBOT_PROCESS_ID"):
        env.pop(name, None)
    if process is not None:
        coordinator, num, index = process
        # The process id reaches it the Kubernetes way: JOB_COMPLETION_INDEX.
        env.update(
            WILDROBOT_COORDINATOR=coordinator,
            WILDROBOT_NUM_PROCESSES=str(num),
            JOB_COMPLETION_INDEX=str(index),
        )
    index = 0 if process is None else process[2]
    log = (run_dir.parent / f"{run_dir.name}-{spec_file.stem}-{index}.log").open("w")
    resume = ["--resume-from", str(resume_from)] if resume_from else []
    return subprocess.Popen(
        [sys.executable, "-m", "wildrobot.workers.host", "--spec-file", str(spec_file),
         "--run-dir", str(run_dir), *resume],
        cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip


def wait_all(procs, logs: list[Path]) -> None:
    try:
        for proc in procs:
            proc.wait(600)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    text = "\n".join(p.read_text()[-3000:] for p in logs)
    assert [p.returncode for p in procs] == [0] * len(procs), text


def final_state(run_dir: Path) -> tuple[dict[str, np.ndarray], dict]:
    final = sorted((run_dir / "checkpoints").iterdir())[-1]
    with ocp.StandardCheckpointer() as checkpointer:
        state = checkpointer.restore(final.absolute() / ckpt.STATE_DIR)
    return state, ckpt.read_meta(final)


def test_two_processes_train_what_one_process_with_two_devices_trains(tmp_path: Path) -> None:
    """...including across a resume: the 2-host run stops after 2 iterations and a new 2-host
    run continues from process 0's checkpoint (each host restores its own rows)."""
    spec = point_mass_spec(ITERATIONS, checkpoint_every=1, num_hosts=2)
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(spec.model_dump_json())
    first_part = tmp_path / "first.json"
    first_part.write_text(
        spec.model_copy(
            update={"num_timesteps": 2 * spec.env_steps_per_iteration}
        ).model_dump_json()
    )

    coordinator = f"127.0.0.1:{free_port()}"
    multi = [launch(tmp_path / "multi", first_part, 1, (coordinator, 2, i)) for i in range(2)]
    single = [launch(tmp_path / "single", spec_file, 2, None)]
    wait_all(multi + single, sorted(tmp_path.glob("*.log")))
    resume_from = sorted((tmp_path / "multi" / "checkpoints").iterdir())[-1]
    coordinator = f"127.0.0.1:{free_port()}"
    multi = [
        launch(tmp_path / "multi", spec_file, 1, (coordinator, 2, i), resume_from) for i in range(2)
    ]
    wait_all(multi, sorted(tmp_path.glob("multi-spec-*.log")))

    # Only process 0 wrote: one directory per iteration, each with both hosts' rows in it.
    assert len(list((tmp_path / "multi" / "checkpoints").iterdir())) == ITERATIONS
    multi_state, multi_meta = final_state(tmp_path / "multi")
    single_state, single_meta = final_state(tmp_path / "single")
    assert multi_meta == single_meta == {
        "iteration": ITERATIONS, "env_steps": ITERATIONS * spec.env_steps_per_iteration,
        "num_devices": 2,
    }  # fmt: skip
    assert multi_state.keys() == single_state.keys()
    params = [name for name in single_state if "params" in name]
    assert params
    for name in single_state:
        np.testing.assert_array_equal(multi_state[name], single_state[name], err_msg=name)
    # The policy written by process 0 loads like any other and acts like the 1-process one.
    final = sorted((tmp_path / "multi" / "checkpoints").iterdir())[-1]
    reference = sorted((tmp_path / "single" / "checkpoints").iterdir())[-1]
    obs = np.linspace(-1, 1, 4 * 6, dtype=np.float32).reshape(4, 6)  # PointMass: 6 obs
    np.testing.assert_array_equal(load_policy(final)(obs), load_policy(reference)(obs))
    # The hosts really ran different halves of the batch (not one host's half twice).
    rng = single_state[next(n for n in single_state if n.endswith("rng"))]
    assert not np.array_equal(rng[0], rng[1])
