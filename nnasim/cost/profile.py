"""Hardware profiles: YAML files in ``hwprofiles/`` loaded into a plain, frozen dataclass.

A profile is the only place hardware is described. Loading checks every key (type, unit
range, unknown keys) and names the file and the key in any error. ``inherits: NAME``
deep-merges the profile over another one (by name or relative path).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nnasim.errors import ProfileError
from nnasim.io.guarded import read_yaml


def _profile_dir() -> Path:
    """``nnasim/hwprofiles`` when installed, ``<repo>/hwprofiles`` in a checkout."""
    here = Path(__file__).resolve()
    installed = here.parents[1] / "hwprofiles"
    return installed if installed.is_dir() else here.parents[2] / "hwprofiles"


PROFILE_DIR = _profile_dir()

SUPPORTED_BITS = (8, 16)
COMPRESSION_MODES = ("none", "ratio", "estimate")
FUSION_MODES = ("none", "elementwise", "layers")
ROUNDING_MODES = ("half_away_from_zero", "half_to_even")


@dataclass(frozen=True)
class MacArray:
    """The MAC array for one operand width: lanes along input channels, output channels, pixels."""

    in_channels: int
    out_channels: int
    pixels: int

    @property
    def macs_per_clock(self) -> int:
        return self.in_channels * self.out_channels * self.pixels


@dataclass(frozen=True)
class HwProfile:
    """One NPU design; every field is documented in ``hwprofiles/README.md``."""

    name: str
    description: str
    clock_mhz: float
    mac_array: dict[int, MacArray]
    accumulator_bits: dict[int, int]
    rounding: str
    eltwise_per_clock: dict[int, int]
    ocm_kib: float
    weight_buffer_kib: float
    line_buffer_kib: float
    dram_gbps: float
    dram_burst_bytes: int
    pass_overhead_cycles: int
    fusion: str
    max_fused_layers: int
    weight_compression: str
    weight_compression_ratio: dict[int, float]
    source: str = ""
    weight_dram_gbps: float | None = None
    line_buffer_extra_rows: int = 1

    @property
    def bytes_per_cycle(self) -> float:
        """DRAM bytes transferred per NPU clock cycle."""
        return self.dram_gbps * 1e9 / (self.clock_mhz * 1e6)

    @property
    def weight_bytes_per_cycle(self) -> float:
        """Weight bytes read per NPU clock: from ``weight_dram_gbps`` when weights live in a memory
        of their own (e.g. flash), else the same memory as the feature maps."""
        gbps = self.weight_dram_gbps if self.weight_dram_gbps is not None else self.dram_gbps
        return gbps * 1e9 / (self.clock_mhz * 1e6)

    def macs_per_clock(self, bits: int) -> int:
        return self.mac_array[bits].macs_per_clock

    def replace(self, **changes: Any) -> HwProfile:
        return dataclasses.replace(self, **changes)


# key -> (checker, unit/description used in messages); every key is required after inheritance.
# Every number must be finite and below an upper bound far beyond any real NPU, so that a typo
# (1e308, .inf, 65-bit accumulators) is refused instead of overflowing the cost model to 0 or inf.
def _number_in(low: float, high: float, low_open: bool = True):
    def check(value: Any) -> bool:
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            return False
        return (value > low if low_open else value >= low) and value <= high

    return check


def _int_in(low: int, high: int):
    def check(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high

    return check


MAX_MHZ = 100_000.0  # 100 GHz
MAX_KIB = float(2**30)  # 1 TiB of on-chip memory
MAX_GBPS = 100_000.0  # 100 TB/s
MAX_LANES = 2**16

_SCALARS: dict[str, tuple[Any, str]] = {
    "description": (lambda v: isinstance(v, str), "a string"),
    "clock_mhz": (_number_in(0, MAX_MHZ), f"a positive number (MHz) up to {MAX_MHZ:g}"),
    "ocm_kib": (_number_in(0, MAX_KIB, low_open=False), f"a non-negative number (KiB) up to {MAX_KIB:g}"),
    "weight_buffer_kib": (_number_in(0, MAX_KIB), f"a positive number (KiB) up to {MAX_KIB:g}"),
    "line_buffer_kib": (_number_in(0, MAX_KIB), f"a positive number (KiB) up to {MAX_KIB:g}"),
    "dram_gbps": (
        _number_in(0, MAX_GBPS),
        f"a positive number (GB/s, 10^9 bytes per second) up to {MAX_GBPS:g}",
    ),
    "dram_burst_bytes": (_int_in(1, 2**20), "a positive integer (bytes) up to 2^20"),
    "pass_overhead_cycles": (_int_in(0, 10**9), "a non-negative integer (cycles) up to 10^9"),
    "max_fused_layers": (_int_in(1, 10_000), "a positive integer (MAC layers per fused group) up to 10000"),
    "fusion": (lambda v: v in FUSION_MODES, f"one of {', '.join(FUSION_MODES)}"),
    "rounding": (lambda v: v in ROUNDING_MODES, f"one of {', '.join(ROUNDING_MODES)}"),
    "weight_compression": (lambda v: v in COMPRESSION_MODES, f"one of {', '.join(COMPRESSION_MODES)}"),
}
_PER_BITS: dict[str, tuple[Any, str]] = {
    "accumulator_bits": (_int_in(16, 64), "an integer from 16 to 64 (bits; the engine computes in 64)"),
    "eltwise_per_clock": (_int_in(1, 2**20), "a positive integer (elements per clock) up to 2^20"),
    "weight_compression_ratio": (_number_in(0, 1), "a number in (0, 1] (compressed / raw bytes)"),
}
_MAC_KEYS = ("in_channels", "out_channels", "pixels")
# Optional keys: absent means the behaviour described in hwprofiles/README.md.
_OPTIONAL: dict[str, tuple[Any, str]] = {
    "weight_dram_gbps": (
        _number_in(0, MAX_GBPS),
        f"a positive number (GB/s, 10^9 bytes per second) up to {MAX_GBPS:g}",
    ),
    "line_buffer_extra_rows": (
        _int_in(0, 1024),
        "a non-negative integer (rows beyond kernel height - 1) up to 1024",
    ),
}
_ALL_KEYS = {"inherits", "mac_array", *_SCALARS, *_PER_BITS, *_OPTIONAL}


def builtin_profiles() -> dict[str, Path]:
    """Profile name -> YAML path for every profile shipped in ``hwprofiles/``."""
    return {path.stem: path for path in sorted(PROFILE_DIR.glob("*.yaml"))}


def load_profile(spec: str | Path) -> HwProfile:
    """Load a profile by built-in name (``2nx``) or by path to a YAML file."""
    path = _resolve(spec, base=None)
    data = _merged(path, chain=())
    return _build(data, path)


def profile_from_dict(data: dict[str, Any], label: str = "<dict>") -> HwProfile:
    """Validate a complete profile given as a dict (e.g. a sweep point); no inheritance."""
    return _build(dict(data), Path(label))


def _resolve(spec: str | Path, base: Path | None) -> Path:
    text = str(spec)
    if text in builtin_profiles() and not text.endswith((".yaml", ".yml")):
        return builtin_profiles()[text]
    path = Path(text)
    if base is not None and not path.is_absolute():
        path = base.parent / path
    if path.suffix not in (".yaml", ".yml") and not path.exists():
        known = ", ".join(builtin_profiles()) or "none"
        raise ProfileError(f"unknown hardware profile {text!r} (built-in: {known}; or give a .yaml path)")
    if not path.exists():
        raise ProfileError(f"{path}: profile file not found")
    return path.resolve()


def _read_yaml(path: Path) -> dict[str, Any]:
    data = read_yaml(path, "profile", ProfileError)
    if not isinstance(data, dict):
        raise ProfileError(f"{path}: a profile must be a mapping of keys to values")
    return data


def _merged(path: Path, chain: tuple[Path, ...]) -> dict[str, Any]:
    """The profile at ``path`` deep-merged over its ``inherits`` ancestors."""
    if path in chain:
        cycle = " -> ".join(p.name for p in (*chain, path))
        raise ProfileError(f"{path}: key 'inherits': inheritance cycle {cycle}")
    data = _read_yaml(path)
    parent = data.pop("inherits", None)
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise ProfileError(f"{path}: key 'inherits': must be a profile name or path, got {parent!r}")
    try:
        parent_path = _resolve(parent, base=path)
    except ProfileError as error:
        raise ProfileError(f"{path}: key 'inherits': {error}") from None
    return _deep_merge(_merged(parent_path, (*chain, path)), data)


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _build(data: dict[str, Any], path: Path) -> HwProfile:
    data.pop("inherits", None)
    for key in data:
        if key not in _ALL_KEYS:
            raise ProfileError(f"{path}: unknown key {key!r} (allowed: {', '.join(sorted(_ALL_KEYS))})")
    for key in sorted(_ALL_KEYS - {"inherits", *_OPTIONAL}):
        if key not in data:
            raise ProfileError(f"{path}: missing key {key!r}")
    for key, (check, expected) in (*_SCALARS.items(), *_OPTIONAL.items()):
        if key in data and not check(data[key]):
            raise ProfileError(f"{path}: key {key!r}: must be {expected}, got {data[key]!r}")
    per_bits = {
        key: _per_bits(data[key], path, key, check, expected) for key, (check, expected) in _PER_BITS.items()
    }
    mac_array = _per_bits(data["mac_array"], path, "mac_array", lambda v: True, "")
    return HwProfile(
        name=path.stem,
        mac_array={bits: _mac_array(spec, path, f"mac_array.{bits}") for bits, spec in mac_array.items()},
        source=str(path),
        **{key: data[key] for key in _SCALARS},
        **{key: data[key] for key in _OPTIONAL if key in data},
        **per_bits,
    )


def _per_bits(value: Any, path: Path, key: str, check, expected: str) -> dict[int, Any]:
    """A mapping with one entry per supported bit width (keys 8 and 16)."""
    if not isinstance(value, dict) or set(value) != set(SUPPORTED_BITS):
        raise ProfileError(f"{path}: key {key!r}: must map each bit width {list(SUPPORTED_BITS)} to a value")
    for bits, item in value.items():
        if not check(item):
            raise ProfileError(f"{path}: key '{key}.{bits}': must be {expected}, got {item!r}")
    return dict(value)


def _mac_array(spec: Any, path: Path, key: str) -> MacArray:
    if not isinstance(spec, dict):
        raise ProfileError(f"{path}: key {key!r}: must map {', '.join(_MAC_KEYS)} to lane counts")
    for name in spec:
        if name not in _MAC_KEYS:
            raise ProfileError(f"{path}: unknown key '{key}.{name}' (allowed: {', '.join(_MAC_KEYS)})")
    for name in _MAC_KEYS:
        if name not in spec:
            raise ProfileError(f"{path}: missing key '{key}.{name}'")
        if not _int_in(1, MAX_LANES)(spec[name]):
            raise ProfileError(
                f"{path}: key '{key}.{name}': must be a positive integer up to {MAX_LANES}, "
                f"got {spec[name]!r}"
            )
    return MacArray(**spec)
