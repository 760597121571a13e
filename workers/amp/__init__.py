"""AMP (adversarial motion prior) discriminator features, reference data and env wrapper.

One feature function (`features.make_feature_fn`) is used on both sides of the
discriminator -- replayed reference clips and policy rollouts -- so the two
never disagree on a column's definition.
"""
