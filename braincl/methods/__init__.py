"""Methods that live in the core: the bounds, plain replay and BrainCL. Baselines are in ``baselines/``."""
