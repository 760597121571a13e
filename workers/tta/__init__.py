"""Test-time adaptation evaluation: shifts, adapters, test-time compute and the report."""
