"""AMP learns a style: on WildRobotStand, whose task reward only asks to stay up, an AMP policy
trained on one walking clip moves its joints measurably more like the clip than the PPO policy
trained with exactly the same settings and budget and no style reward (the session's
`trained_stand`, tests/trained_stand.py), and the discriminator stays out of saturation.

Both runs: the `stand-cpu` preset, 2.05M env steps. AMP adds the clip `walk_0.2`, weights 0.5 /
0.5 and AmpSpec's discriminator defaults except those in AMP_FIELDS. Pose-tracking distance
(workers/amp/evaluate.py): per control step of the deterministic policy (16 episodes x 300 steps,
while up), the RMS joint-angle distance to the clip's nearest frame, in rad. Figures measured
here are in docs/amp.md. About 8 minutes of a 2-core CPU (the AMP run; the PPO one is shared).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from tests.trained_stand import CurveHooks, TrainedStand, stand_spec_fields
from wildrobot.specs import AmpSpec
from wildrobot.workers.amp.evaluate import pose_tracking
from wildrobot.workers.amp.reference import load_library
from wildrobot.workers.amp.train import train_amp

pytestmark = pytest.mark.slow

CLIP = "walk_0.2"
AMP_FIELDS: dict = {}
# The bars: AMP's pose distance at most this fraction of PPO's; both stand (fall rate); the
# discriminator's accuracy (mean of both classes over the last quarter of training) in this band.
DISTANCE_RATIO = 0.85
MAX_FALL_RATE = 0.5
ACCURACY_BAND = (0.5, 0.99)


@pytest.mark.timeout(2400)
def test_amp_moves_more_like_the_clip_than_ppo(trained_stand: TrainedStand, tmp_path: Path):
    spec = AmpSpec(**{**stand_spec_fields(), "motions": (CLIP,), **AMP_FIELDS})
    motions = load_library(spec.motions).motions
    hooks = CurveHooks()
    start = time.perf_counter()
    result = train_amp(spec, tmp_path, hooks, motions)
    wall_s = time.perf_counter() - start
    metrics = [m for _, m in hooks.metrics]
    print(f"\n[amp] {len(metrics)} iterations in {wall_s:.0f} s")
    print(" iter style  task  acc_ref acc_pol logit_ref logit_pol  gp    pose_d  ep_len")
    for m in metrics[:: max(1, len(metrics) // 20)] + metrics[-1:]:
        print(
            f"{int(m['iteration']):>5} {m['amp/style_reward']:.3f} {m['amp/task_reward']:.3f} "
            f"{m['amp/accuracy_ref']:.3f}   {m['amp/accuracy_policy']:.3f}   "
            f"{m['amp/logit_ref']:+.3f}    {m['amp/logit_policy']:+.3f}  "
            f"{m['amp/grad_penalty']:.3f} {m['amp/pose_distance']:.3f} "
            f"{m.get('episode/length', 0.0):.0f}"
        )
    amp = pose_tracking(result.checkpoint_dir, motions)
    ppo = pose_tracking(trained_stand.checkpoint_dir, motions)
    print(f"[amp] pose tracking vs {CLIP}: AMP {amp}\n[amp]                       PPO {ppo}")

    last = metrics[-max(1, len(metrics) // 4) :]
    accuracy = float(
        np.mean([(m["amp/accuracy_ref"] + m["amp/accuracy_policy"]) / 2 for m in last])
    )
    print(f"[amp] discriminator accuracy, last quarter: {accuracy:.3f} (band {ACCURACY_BAND})")
    assert amp["pose_distance"] <= DISTANCE_RATIO * ppo["pose_distance"], (amp, ppo)
    assert amp["fall_rate"] <= MAX_FALL_RATE and ppo["fall_rate"] <= MAX_FALL_RATE, (amp, ppo)
    assert ACCURACY_BAND[0] <= accuracy <= ACCURACY_BAND[1], accuracy
