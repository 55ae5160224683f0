"""Hardware profiles and sweep specs: numbers out of range, non-finite, alias bombs, odd files."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from tests.bad_inputs.catalogue import Case

BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)
)


def _text(name: str, text: str):
    return lambda folder: (folder / name).write_text(text)


def _profile(overrides: str):
    return _text("hw.yaml", "inherits: 2nx\n" + overrides)


def _fifo(name: str):
    return lambda folder: os.mkfifo(folder / name)


def _profile_case(name: str, overrides: str, message: str) -> Case:
    return Case(name, ("profile", "tinynet", "--hw", "{dir}/hw.yaml"), message, _profile(overrides))


PROFILE_RANGE_CASES = [
    _profile_case(
        "profile accumulator_bits 65",
        "accumulator_bits: {8: 65, 16: 48}\n",
        r"hw\.yaml: key 'accumulator_bits\.8': must be an integer from 16 to 64",
    ),
    _profile_case("profile accumulator_bits 8", "accumulator_bits: {8: 8, 16: 48}\n", r"accumulator_bits\.8"),
    _profile_case(
        "profile clock_mhz .inf", "clock_mhz: .inf\n", r"key 'clock_mhz': must be a positive number"
    ),
    _profile_case("profile clock_mhz .nan", "clock_mhz: .nan\n", r"key 'clock_mhz'.*got nan"),
    _profile_case("profile clock_mhz 1e308", "clock_mhz: 1.0e+308\n", r"key 'clock_mhz'.*up to 100000"),
    _profile_case("profile dram_gbps -.inf", "dram_gbps: -.inf\n", r"key 'dram_gbps'"),
    _profile_case("profile dram_gbps 1e300", "dram_gbps: 1.0e+300\n", r"key 'dram_gbps'.*up to"),
    _profile_case("profile ocm_kib .nan", "ocm_kib: .nan\n", r"key 'ocm_kib': must be a non-negative number"),
    _profile_case("profile ocm_kib 1e30", "ocm_kib: 1.0e+30\n", r"key 'ocm_kib'.*up to"),
    _profile_case("profile weight_dram_gbps .inf", "weight_dram_gbps: .inf\n", r"key 'weight_dram_gbps'"),
    _profile_case(
        "profile mac lanes 2^40",
        "mac_array: {8: {in_channels: 1099511627776, out_channels: 1, pixels: 1}}\n",
        r"key 'mac_array\.8\.in_channels': must be a positive integer up to 65536",
    ),
    _profile_case(
        "profile compression ratio .nan",
        "weight_compression_ratio: {8: .nan, 16: 1.0}\n",
        r"weight_compression_ratio\.8",
    ),
    _profile_case(
        "profile pass overhead 1e20", "pass_overhead_cycles: 100000000000000000000\n", r"pass_overhead"
    ),
    _profile_case("profile burst 0", "dram_burst_bytes: 0\n", r"key 'dram_burst_bytes'"),
    _profile_case(
        "profile alias bomb", BOMB, r"hw\.yaml: cannot read profile: aliases expand it to more than"
    ),
    _profile_case("profile recursive alias", "x: &x [*x]\n", r"hw\.yaml: cannot read profile"),
    Case(
        "profile is a FIFO",
        ("profile", "tinynet", "--hw", "{dir}/hw.yaml"),
        r"hw\.yaml: is a FIFO \(named pipe\), not profile",
        _fifo("hw.yaml"),
    ),
    Case(
        "profile not UTF-8",
        ("profile", "tinynet", "--hw", "{dir}/hw.yaml"),
        r"hw\.yaml:2: not UTF-8 text",
        lambda folder: (folder / "hw.yaml").write_bytes(b"inherits: 2nx\ndescription: caf\xe9\n"),
    ),
    Case(
        "profile huge file",
        ("profile", "tinynet", "--hw", "{dir}/hw.yaml"),
        r"hw\.yaml: .* GiB is more than nnasim reads as profile",
        lambda folder: _sparse(folder / "hw.yaml", 2**30),
    ),
]


def _sparse(path: Path, size: int) -> None:
    with open(path, "wb") as handle:
        handle.truncate(size)


SPEC = {
    "base": "2nx",
    "parameters": {"ocm_kib": [0, 64]},
    "models": ["tinynet"],
    "bits": [8],
    "area": {"mm2_per_mac": 0.00042, "mm2_per_kib": 0.004},
    "objectives": {"area_mm2": "min", "tinynet_ips": "max"},
    "chunk_points": 1,
}


def _spec(**changes) -> dict:
    return {**SPEC, **changes}


def _spec_file(data: dict, name: str = "spec.yaml"):
    return _text(name, yaml.safe_dump(data, sort_keys=False))


def _sweep(name: str, make, message: str, *extra: str, check=None) -> Case:
    return Case(
        name, ("sweep", "{dir}/spec.yaml", "-o", "{dir}/out", "--quiet", *extra), message, make, None, check
    )


SPEC_CASES = [
    _sweep(
        "sweep geometric factor 1.0000000001",
        _spec_file(_spec(parameters={"ocm_kib": {"start": 1, "stop": 1e6, "factor": 1.0000000001}})),
        r"key 'parameters\.ocm_kib\.factor': the range has about [\d,]+ values, more than the limit",
    ),
    _sweep(
        "sweep geometric factor 1+1e-16",
        _spec_file(_spec(parameters={"ocm_kib": {"start": 1, "stop": 2, "factor": 1.0000000000000002}})),
        r"key 'parameters\.ocm_kib\.factor'",
    ),
    _sweep(
        "sweep arithmetic range to 1e308",
        _spec_file(_spec(parameters={"ocm_kib": {"start": 0, "stop": 1e308, "step": 1e-300}})),
        r"key 'parameters\.ocm_kib\.step': the range has about .* values, more than the limit",
    ),
    _sweep(
        "sweep range values at 1e308",
        _spec_file(_spec(parameters={"ocm_kib": {"start": 1e307, "stop": 1.7e308, "step": 5e307}})),
        r"parameters\.ocm_kib = 1e\+307.*key 'ocm_kib'.*up to",
    ),
    _sweep(
        "sweep range start .inf",
        _text(
            "spec.yaml",
            yaml.safe_dump(_spec(parameters={})).replace(
                "parameters: {}", "parameters:\n  ocm_kib: {start: .inf, stop: .inf, step: 1}"
            ),
        ),
        r"key 'parameters\.ocm_kib\.start': must be a number",
    ),
    _sweep(
        "sweep list value .nan",
        _text(
            "spec.yaml",
            yaml.safe_dump(_spec(parameters={})).replace(
                "parameters: {}", "parameters:\n  clock_mhz: [.nan]"
            ),
        ),
        r"clock_mhz.*got nan",
    ),
    _sweep(
        "sweep spec alias bomb",
        _text("spec.yaml", BOMB),
        r"spec\.yaml: cannot read the sweep spec \(YAML\): aliases",
    ),
    _sweep("sweep spec is a FIFO", _fifo("spec.yaml"), r"spec\.yaml: is a FIFO"),
    _sweep(
        "sweep spec not UTF-8",
        lambda folder: (folder / "spec.yaml").write_bytes(b"base: 2nx\x80\n"),
        r"spec\.yaml:1: not UTF-8 text",
    ),
    _sweep("sweep spec missing", lambda folder: None, r"spec\.yaml: no such file"),
]
