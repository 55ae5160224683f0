"""Hardware cost model: profiles (YAML), hardware-independent workload, memory plan, costs."""

from nnasim.cost.model import LayerCost, NetworkCost, evaluate, mac_cycles
from nnasim.cost.profile import HwProfile, MacArray, Memory, builtin_profiles, load_profile, profile_from_dict
from nnasim.cost.workload import LayerWork, Workload, build_workload
from nnasim.quant.widths import WIDTHS, Width, parse_width  # the widths the quantizer gives layers

__all__ = [
    "HwProfile",
    "LayerCost",
    "LayerWork",
    "MacArray",
    "Memory",
    "NetworkCost",
    "WIDTHS",
    "Width",
    "Workload",
    "build_workload",
    "builtin_profiles",
    "evaluate",
    "load_profile",
    "mac_cycles",
    "parse_width",
    "profile_from_dict",
]
