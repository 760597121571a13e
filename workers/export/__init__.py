"""Policies that leave the service: ONNX export (onnx_policy), its check against JAX (check),
and rollout videos (video)."""
