"""The simulator: the paper's speedup model and the target cost model."""
