"""Trial: randomization, surveys and analysis of the program's randomized evaluation.

`tertulia.trials.analysis` turns survey data into the results table (pure functions over data
frames); `tertulia.trials.cli` exposes it as `tertulia trial analyze | power | demo`.
"""
