"""The engine: `stylize()` and everything it runs, from the top down.

stylize.py     `stylize()` and `StyleResult`: targets, pyramid, callbacks, interrupts
pyramid.py     the scales (coarse to fine) and their steps
objective.py   the feature extractor, targets (once per scale), initial image, loss function
run_state.py   progress records, per-scale history, checkpoints and resume within a call
runners.py     `RunnerCache`; the Keras-optimizer and L-BFGS loops around a runner
step/          the compiled step, one file per backend (tensorflow.py, jax.py)
optimizers.py  preconditioned SGD, schedules, Adam
lbfgs.py       SciPy's L-BFGS-B with pixel bounds
memory.py      the step's peak-memory estimate and XLA's own figures
checkpoint.py  `Checkpoint`: an interrupted run's state, as NumPy arrays
progress.py    `Progress`: the record every callback gets after each step
"""
