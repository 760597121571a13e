"""Reference motions for AMP (adversarial motion priors) training.

Modules:
    format   -- the clip file format (.npz) with a validating loader/saver.
    library  -- a set of clips; samples interpolated windows of qpos/qvel.
    gait     -- a simple walking pattern generator plus foot/pelvis IK.
    realize  -- plays an IK trajectory in MuJoCo with a pelvis "help" wrench
                and records what the robot physically did.
    generate -- writes the shipped clips and their manifest.
"""
