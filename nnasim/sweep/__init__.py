"""Design-space exploration: evaluate the cost model over a grid of hardware parameters,
resumably, on local processes or a Dask cluster; results, Pareto front and plots."""

from nnasim.sweep.pareto import pareto_mask
from nnasim.sweep.run import SweepRun, run_sweep, write_outputs
from nnasim.sweep.spec import SweepSpec, load_spec

__all__ = ["SweepRun", "SweepSpec", "load_spec", "pareto_mask", "run_sweep", "write_outputs"]
