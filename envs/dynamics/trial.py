"""The trial file format and input validation (kept in wildrobot.dynamics_inputs, which imports
no JAX, so the client and the spec validate with the same function as the library)."""

from wildrobot.dynamics_inputs import (  # noqa: F401 - re-exported
    ARRAYS,
    AXES,
    MAX_RATE_HZ,
    MIN_RATE_HZ,
    OPTIONAL,
    QUAT_TOLERANCE,
    Limits,
    TrialData,
    TrialError,
    csv_columns,
    from_arrays,
    load_csv,
    load_npz,
    save_csv,
    save_npz,
    validate,
    validate_options,
)
