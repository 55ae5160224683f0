"""Hardware profiles: YAML files in ``hwprofiles/`` loaded into a plain, frozen dataclass.

A profile is the only place hardware is described. Loading checks every key (type, unit
range, unknown keys) and names the file and the key in any error. ``inherits: NAME``
deep-merges the profile over another one (by name or relative path).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nnasim.errors import ProfileError
from nnasim.io.guarded import read_yaml
from nnasim.quant.widths import Width, parse_width


def _profile_dir() -> Path:
    """``nnasim/hwprofiles`` when installed, ``<repo>/hwprofiles`` in a checkout."""
    here = Path(__file__).resolve()
    installed = here.parents[1] / "hwprofiles"
    return installed if installed.is_dir() else here.parents[2] / "hwprofiles"


PROFILE_DIR = _profile_dir()

SUPPORTED_BITS = (8, 16)
COMPRESSION_MODES = ("none", "ratio", "estimate", "encode")
FUSION_MODES = ("none", "elementwise", "layers")
ROUNDING_MODES = ("half_away_from_zero", "half_to_even")


@dataclass(frozen=True)
class Memory:
    """One memory the NPU reads and writes: bandwidth (None: on chip, never the bottleneck),
    burst size, latencies, and whether its traffic counts in MB/inference."""

    name: str
    gbps: float | None
    burst_bytes: int
    read_latency_cycles: int = 0
    write_latency_cycles: int = 0
    counted: bool = True


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
    pass_overhead_cycles: int
    fusion: str
    max_fused_layers: int
    weight_compression: str
    weight_compression_ratio: dict[int, float]
    source: str = ""
    dram_gbps: float | None = None
    dram_burst_bytes: int | None = None
    weight_dram_gbps: float | None = None
    line_buffer_extra_rows: int = 1
    memories: dict[str, dict[str, Any]] | None = None
    feature_maps_in: str | None = None
    weights_in: str | None = None
    cache_in: str | None = None
    weight_buffer_in: str | None = None
    blocks: dict[str, Any] | None = None
    element_cycles: dict[str, dict[Any, float]] | None = None
    softmax_constant_bytes: int = 0

    def table_key(self, bits: int | str | Width) -> int | str:
        """The key of the per-width tables (``mac_array`` ...) for ``bits``: ``'16x8'`` when the
        profile describes that mode, else the activation width (the array runs at the
        activations' width; 16x8 then reads the 16-bit tables with 8-bit weights)."""
        width = parse_width(bits)
        return "16x8" if width.name == "16x8" and "16x8" in self.mac_array else width.act_bits

    def at(self, table: dict[int | str, Any], bits: int | str | Width) -> Any:
        """``table``'s entry for ``bits`` (a '16x8' entry when present, else the activation width's)."""
        width = parse_width(bits)
        if width.name == "16x8" and "16x8" in table:
            return table["16x8"]
        return table[width.act_bits]

    def memory_map(self) -> dict[str, Memory]:
        """Every memory by name (cached; see ``_memory_map``)."""
        return self._memory_map

    def bytes_per_cycle(self, memory: str) -> float:
        """Bytes ``memory`` moves per NPU clock (inf for an untimed on-chip memory)."""
        return self._bytes_per_cycle[memory]

    @functools.cached_property
    def _bytes_per_cycle(self) -> dict[str, float]:
        clock = self.clock_mhz * 1e6
        return {
            name: math.inf if m.gbps is None else m.gbps * 1e9 / clock for name, m in self._memory_map.items()
        }

    @functools.cached_property
    def _memory_map(self) -> dict[str, Memory]:
        """Every memory by name, with the placement of feature maps, weights and the cache.

        Without a ``memories`` section: ``dram`` (``dram_gbps``), ``weights`` when
        ``weight_dram_gbps`` is set, and ``ocm``, the on-chip memory (not timed, not counted).
        """
        if self.memories is None:
            found = {"dram": Memory("dram", self.dram_gbps, self.dram_burst_bytes)}
            if self.weight_dram_gbps is not None:
                found["weights"] = Memory("weights", self.weight_dram_gbps, self.dram_burst_bytes)
            found["ocm"] = Memory("ocm", None, 1, counted=False)
            return found
        return {
            name: Memory(
                name,
                spec.get("gbps"),
                spec.get("burst_bytes", 1),
                spec.get("read_latency_cycles", 0),
                spec.get("write_latency_cycles", 0),
                counted=name != self.cache_in,
            )
            for name, spec in self.memories.items()
        }

    @property
    def fm_memory(self) -> str:
        return self.feature_maps_in or "dram"

    @property
    def weight_memory(self) -> str:
        if self.weights_in is not None:
            return self.weights_in
        return "weights" if self.memories is None and self.weight_dram_gbps is not None else "dram"

    @property
    def cache_memory(self) -> str:
        """Where tensors kept on chip (``ocm_kib``: residency, cascades) are read and written."""
        return self.cache_in or ("ocm" if self.memories is None else self.fm_memory)

    def macs_per_clock(self, bits: int | str) -> int:
        return self.mac_array[self.table_key(bits)].macs_per_clock

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
_positive_number = _number_in(0, MAX_GBPS)  # bandwidths, cycles per element
_positive_int = _int_in(1, 2**30)  # bytes, banks, lanes, taps
_non_negative_int = _int_in(0, 10**9)  # cycles

_SCALARS: dict[str, tuple[Any, str]] = {
    "description": (lambda v: isinstance(v, str), "a string"),
    "clock_mhz": (_number_in(0, MAX_MHZ), f"a positive number (MHz) up to {MAX_MHZ:g}"),
    "ocm_kib": (_number_in(0, MAX_KIB, low_open=False), f"a non-negative number (KiB) up to {MAX_KIB:g}"),
    "weight_buffer_kib": (_number_in(0, MAX_KIB), f"a positive number (KiB) up to {MAX_KIB:g}"),
    "line_buffer_kib": (_number_in(0, MAX_KIB), f"a positive number (KiB) up to {MAX_KIB:g}"),
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
    "dram_gbps": (
        _number_in(0, MAX_GBPS),
        f"a positive number (GB/s, 10^9 bytes per second) up to {MAX_GBPS:g}",
    ),
    "dram_burst_bytes": (_int_in(1, 2**20), "a positive integer (bytes) up to 2^20"),
    "weight_dram_gbps": (
        _number_in(0, MAX_GBPS),
        f"a positive number (GB/s, 10^9 bytes per second) up to {MAX_GBPS:g}",
    ),
    "line_buffer_extra_rows": (
        _int_in(0, 1024),
        "a non-negative integer (rows beyond kernel height - 1) up to 1024",
    ),
    "memories": (lambda v: isinstance(v, dict) and bool(v), "a mapping of memory names to their fields"),
    "feature_maps_in": (lambda v: isinstance(v, str), "a memory name"),
    "weights_in": (lambda v: isinstance(v, str), "a memory name"),
    "cache_in": (lambda v: isinstance(v, str), "a memory name"),
    "weight_buffer_in": (lambda v: isinstance(v, str), "a memory name"),
    "blocks": (lambda v: isinstance(v, dict), "a mapping (see hwprofiles/README.md, 'blocks')"),
    "element_cycles": (
        lambda v: isinstance(v, dict),
        "a mapping of element-op classes to cycles per element",
    ),
    "softmax_constant_bytes": (_int_in(0, 16), "a non-negative integer (bytes per element) up to 16"),
}
_MEMORY_KEYS = {
    "gbps": (_positive_number, "a positive number (GB/s)"),
    "burst_bytes": (_positive_int, "a positive integer (bytes)"),
    "read_latency_cycles": (_non_negative_int, "a non-negative integer (cycles)"),
    "write_latency_cycles": (_non_negative_int, "a non-negative integer (cycles)"),
}
_PLACEMENT = ("feature_maps_in", "weights_in", "cache_in", "weight_buffer_in")
# blocks.<key> -> (checker, description); per-width keys map 8 and 16 (and optionally 16x8).
_BLOCK_SHAPES = ("ofm_ublock", "ofm_block_max")
_BLOCK_SCALARS: dict[str, tuple[Any, str]] = {
    "buffer_banks": (_positive_int, "a positive integer (banks)"),
    "bank_bytes": (_positive_int, "a positive integer (bytes)"),
    "cores": (_positive_int, "a positive integer"),
    "dot_product": (_positive_int, "a positive integer (input channels per MAC per clock)"),
    "cycles_per_step": (_positive_int, "a positive integer (cycles)"),
    "weight_decode_cycles": (_non_negative_int, "a non-negative integer (cycles)"),
    "depthwise_taps_per_step": (_positive_int, "a positive integer (kernel taps)"),
    "fm_depth_granule": (_positive_int, "a positive integer (channels)"),
    "ifm32_bank_granule": (_positive_int, "a positive integer (banks)"),
    "element_deepen_below": (_positive_int, "a positive integer (channels)"),
    "element_deepen_to": (_positive_int, "a positive integer (channels)"),
    "element_deepen_min_elements": (_non_negative_int, "a non-negative integer (elements)"),
}
_BLOCK_PER_WIDTH: dict[str, tuple[Any, str]] = {
    "ifm_block_depth": (_positive_int, "a positive integer (channels)"),
    "part_kernel_taps": (_positive_int, "a positive integer (kernel taps)"),
    "ifm_bank_granule": (_positive_int, "a positive integer (banks)"),
    "acc_bank_granule": (_positive_int, "a positive integer (banks)"),
    "acc_bytes": (_positive_int, "a positive integer (bytes)"),
    "output_cycles_per_elem": (_positive_number, "a positive number (cycles per element)"),
    "step_cycles_factor": (_positive_int, "a positive integer"),
}
ELEMENT_CLASSES = ("add", "mul", "maxpool", "avgpool", "lut", "softmax", "resize", "other")
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
    """``override`` over ``base``, mappings key by key; ``null`` removes an inherited entry."""
    merged = dict(base)
    for key, value in override.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
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
    _check_memories(data, path)
    per_bits = {
        key: _per_bits(data[key], path, key, check, expected) for key, (check, expected) in _PER_BITS.items()
    }
    mac_array = _per_bits(data["mac_array"], path, "mac_array", lambda v: True, "")
    if "blocks" in data:
        _check_blocks(data["blocks"], path)
    if "element_cycles" in data:
        _check_element_cycles(data["element_cycles"], path)
    return HwProfile(
        name=path.stem,
        mac_array={bits: _mac_array(spec, path, f"mac_array.{bits}") for bits, spec in mac_array.items()},
        source=str(path),
        **{key: data[key] for key in _SCALARS},
        **{key: data[key] for key in _OPTIONAL if key in data},
        **per_bits,
    )


def _check_memories(data: dict[str, Any], path: Path) -> None:
    """``memories`` and the placement keys, or the single-DRAM keys, but not both."""
    if "memories" not in data:
        for key in ("dram_gbps", "dram_burst_bytes"):
            if key not in data:
                raise ProfileError(f"{path}: missing key {key!r} (or describe a 'memories' section)")
        for key in _PLACEMENT:
            if key in data:
                raise ProfileError(f"{path}: key {key!r}: needs a 'memories' section to name")
        return
    for key in ("dram_gbps", "dram_burst_bytes", "weight_dram_gbps"):
        if key in data:
            raise ProfileError(f"{path}: key {key!r}: not used with 'memories' (give each memory's gbps)")
    for name, spec in data["memories"].items():
        if not isinstance(spec, dict):
            raise ProfileError(f"{path}: key 'memories.{name}': must map {', '.join(_MEMORY_KEYS)} to values")
        for key, value in spec.items():
            if key not in _MEMORY_KEYS:
                allowed = ", ".join(_MEMORY_KEYS)
                raise ProfileError(f"{path}: unknown key 'memories.{name}.{key}' (allowed: {allowed})")
            check, expected = _MEMORY_KEYS[key]
            if not check(value):
                raise ProfileError(f"{path}: key 'memories.{name}.{key}': must be {expected}, got {value!r}")
    for key in ("feature_maps_in", "weights_in"):
        if key not in data:
            raise ProfileError(f"{path}: missing key {key!r} (the memory that holds them)")
    for key in _PLACEMENT:
        if key in data and data[key] not in data["memories"]:
            known = ", ".join(data["memories"])
            raise ProfileError(f"{path}: key {key!r}: no memory {data[key]!r} (memories: {known})")
    for key in ("feature_maps_in", "weights_in"):
        if "gbps" not in data["memories"][data[key]]:
            raise ProfileError(f"{path}: key 'memories.{data[key]}.gbps': missing (it holds {key[:-3]})")


def _check_blocks(blocks: dict[str, Any], path: Path) -> None:
    allowed = (*_BLOCK_SHAPES, *_BLOCK_SCALARS, *_BLOCK_PER_WIDTH)
    for key in blocks:
        if key not in allowed:
            raise ProfileError(f"{path}: unknown key 'blocks.{key}' (allowed: {', '.join(allowed)})")
    for key in allowed:
        if key not in blocks:
            raise ProfileError(f"{path}: missing key 'blocks.{key}'")
    for key in _BLOCK_SHAPES:
        shape = blocks[key]
        if not isinstance(shape, dict) or set(shape) != {"height", "width", "depth"}:
            raise ProfileError(f"{path}: key 'blocks.{key}': must map height, width, depth to sizes")
        for name, value in shape.items():
            if not _positive_int(value):
                raise ProfileError(
                    f"{path}: key 'blocks.{key}.{name}': must be a positive integer, got {value!r}"
                )
    for key, (check, expected) in _BLOCK_SCALARS.items():
        if not check(blocks[key]):
            raise ProfileError(f"{path}: key 'blocks.{key}': must be {expected}, got {blocks[key]!r}")
    for key, (check, expected) in _BLOCK_PER_WIDTH.items():
        _per_bits(blocks[key], path, f"blocks.{key}", check, expected)


def _check_element_cycles(table: dict[str, Any], path: Path) -> None:
    for name, value in table.items():
        if name not in ELEMENT_CLASSES:
            allowed = ", ".join(ELEMENT_CLASSES)
            raise ProfileError(f"{path}: unknown key 'element_cycles.{name}' (allowed: {allowed})")
        _per_bits(
            value, path, f"element_cycles.{name}", _positive_number, "a positive number (cycles per element)"
        )
    if "other" not in table:
        raise ProfileError(f"{path}: missing key 'element_cycles.other' (the rate of unlisted element ops)")


def _per_bits(value: Any, path: Path, key: str, check, expected: str) -> dict[int | str, Any]:
    """A mapping with one entry per supported bit width (keys 8 and 16, optionally '16x8')."""
    if not isinstance(value, dict) or not set(SUPPORTED_BITS) <= set(value) <= {*SUPPORTED_BITS, "16x8"}:
        raise ProfileError(
            f"{path}: key {key!r}: must map each bit width {list(SUPPORTED_BITS)} "
            "(and optionally '16x8') to a value"
        )
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
