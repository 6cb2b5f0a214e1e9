"""Tools for developing and demonstrating churnops: simulated days of data with known drift.

- :mod:`~churnops.devtools.simulate`: days of batches and labels drawn from the training data,
  stable or drifting by a named scenario (used by the demo, the tests and the benchmarks).
- :mod:`~churnops.devtools.generator`: how a day's rows are drawn (the scenarios' rules, label
  noise) and written as Arrow tables.
"""

from churnops.devtools.simulate import CHUNK_ROWS, SCENARIOS, drift_intensity, population, simulate_day, write_days

__all__ = ["CHUNK_ROWS", "SCENARIOS", "drift_intensity", "population", "simulate_day", "write_days"]
