"""Hardware profiles: YAML files in ``hwprofiles/`` loaded into a plain, frozen dataclass.

A profile is the only place hardware is described. Loading checks every key (type, unit
range, unknown keys) and names the file and the key in any error. ``inherits: NAME``
deep-merges the profile over another one (by name or relative path).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from nnasim.errors import ProfileError


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
def _positive_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def _non_negative_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _non_negative_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _ratio(value: Any) -> bool:
    return _positive_number(value) and value <= 1


_SCALARS: dict[str, tuple[Any, str]] = {
    "description": (lambda v: isinstance(v, str), "a string"),
    "clock_mhz": (_positive_number, "a positive number (MHz)"),
    "ocm_kib": (_non_negative_number, "a non-negative number (KiB)"),
    "weight_buffer_kib": (_positive_number, "a positive number (KiB)"),
    "line_buffer_kib": (_positive_number, "a positive number (KiB)"),
    "dram_gbps": (_positive_number, "a positive number (GB/s, 10^9 bytes per second)"),
    "dram_burst_bytes": (_positive_int, "a positive integer (bytes)"),
    "pass_overhead_cycles": (_non_negative_int, "a non-negative integer (cycles)"),
    "max_fused_layers": (_positive_int, "a positive integer (MAC layers per fused group)"),
    "fusion": (lambda v: v in FUSION_MODES, f"one of {', '.join(FUSION_MODES)}"),
    "rounding": (lambda v: v in ROUNDING_MODES, f"one of {', '.join(ROUNDING_MODES)}"),
    "weight_compression": (lambda v: v in COMPRESSION_MODES, f"one of {', '.join(COMPRESSION_MODES)}"),
}
_PER_BITS: dict[str, tuple[Any, str]] = {
    "accumulator_bits": (_positive_int, "a positive integer (bits)"),
    "eltwise_per_clock": (_positive_int, "a positive integer (elements per clock)"),
    "weight_compression_ratio": (_ratio, "a number in (0, 1] (compressed / raw bytes)"),
}
_MAC_KEYS = ("in_channels", "out_channels", "pixels")
# Optional keys: absent means the behaviour described in hwprofiles/README.md.
_OPTIONAL: dict[str, tuple[Any, str]] = {
    "weight_dram_gbps": (_positive_number, "a positive number (GB/s, 10^9 bytes per second)"),
    "line_buffer_extra_rows": (_non_negative_int, "a non-negative integer (rows beyond kernel height - 1)"),
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
    if not path.is_file():
        raise ProfileError(f"{path}: profile file not found")
    return path.resolve()


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ProfileError(f"{path}: cannot read profile: {first_line}") from None
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
        if not _positive_int(spec[name]):
            raise ProfileError(f"{path}: key '{key}.{name}': must be a positive integer, got {spec[name]!r}")
    return MacArray(**spec)
