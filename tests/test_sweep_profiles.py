"""The profiles added for design-space exploration (4NX, Ethos-U55-256, Ethos-U65-512) against
their public figures, and the ``weight_dram_gbps`` extension against the bytes it moves."""

from __future__ import annotations

import pytest
import yaml

from nnasim.cost import build_workload, evaluate, load_profile
from nnasim.errors import ProfileError
from nnasim.frontend import load_lowered

# (clock MHz, 8-bit MACs/clock, 16-bit MACs/clock) from the sources named in each YAML file:
# Imagination's Series4 pages; Vela's accelerator configs (16-bit halves the IFM block depth).
PUBLIC = {"4nx": (1500, 4096, 1024), "ethos-u55-256": (500, 256, 128), "ethos-u65-512": (1000, 512, 256)}


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_public_figures(name):
    hw = load_profile(name)
    clock, macs8, macs16 = PUBLIC[name]
    assert (hw.clock_mhz, hw.macs_per_clock(8), hw.macs_per_clock(16)) == (clock, macs8, macs16)


def test_vela_memory_systems():
    u55, u65 = load_profile("ethos-u55-256"), load_profile("ethos-u65-512")
    # vela.ini: U55 High-End Embedded SRAM 4 GB/s, flash 0.5 GB/s; U65 Client-Server DRAM 12 GB/s,
    # Dedicated_Sram 384 KiB.
    assert (u55.dram_gbps, u55.weight_dram_gbps, u55.ocm_kib) == (4, 0.5, 0)
    assert (u65.dram_gbps, u65.weight_dram_gbps, u65.ocm_kib) == (12, None, 384)


def test_weights_move_at_their_own_bandwidth():
    """Each layer's memory cycles are its feature-map bytes at ``dram_gbps`` plus its weight
    bytes at ``weight_dram_gbps``; without the key weights share ``dram_gbps``."""
    workload = build_workload(load_lowered("tinynet"))
    u55 = load_profile("ethos-u55-256")
    for hw in (u55, u55.replace(weight_dram_gbps=None)):
        weight_gbps = hw.weight_dram_gbps or hw.dram_gbps
        cost = evaluate(workload, hw, 8)
        for layer in cost.layers:
            seconds = (layer.act_read_bytes + layer.act_write_bytes) / (hw.dram_gbps * 1e9)
            seconds += layer.weight_bytes / (weight_gbps * 1e9)
            assert layer.memory_cycles == pytest.approx(seconds * hw.clock_mhz * 1e6)
    slow = evaluate(workload, u55, 8).total.memory_cycles
    fast = evaluate(workload, u55.replace(weight_dram_gbps=None), 8).total.memory_cycles
    assert slow > fast


def test_bad_weight_bandwidth_names_the_key(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"inherits": "ethos-u55-256", "weight_dram_gbps": -1}))
    with pytest.raises(ProfileError, match=r"bad\.yaml.*'weight_dram_gbps'"):
        load_profile(str(path))
