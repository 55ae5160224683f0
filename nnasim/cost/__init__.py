"""Hardware cost model: profiles (YAML), hardware-independent workload, memory plan, costs."""

from nnasim.cost.model import LayerCost, NetworkCost, evaluate, mac_cycles
from nnasim.cost.profile import HwProfile, MacArray, builtin_profiles, load_profile, profile_from_dict
from nnasim.cost.workload import LayerWork, Workload, build_workload

__all__ = [
    "HwProfile",
    "LayerCost",
    "LayerWork",
    "MacArray",
    "NetworkCost",
    "Workload",
    "build_workload",
    "builtin_profiles",
    "evaluate",
    "load_profile",
    "mac_cycles",
    "profile_from_dict",
]
