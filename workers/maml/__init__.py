"""MAML for policy gradients (docs/maml.md): task families, the policy interface, the jitted
meta-iteration and its host loop."""
