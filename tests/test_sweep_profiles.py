"""The profiles added for design-space exploration (4NX, Ethos-U55/U65) against their public
figures, and the memories against the bytes they move."""

from __future__ import annotations

import pytest
import yaml

from nnasim.cost import build_workload, evaluate, load_profile
from nnasim.errors import ProfileError
from nnasim.frontend import load_lowered

# (clock MHz, 8-bit MACs/clock, 16-bit MACs/clock) from the sources named in each YAML file:
# Imagination's Series4 pages; Vela's accelerator configs (16-bit halves the IFM block depth).
PUBLIC = {
    "4nx": (1500, 4096, 1024),
    "ethos-u55-128": (500, 128, 64),
    "ethos-u55-256": (500, 256, 128),
    "ethos-u65-256": (1000, 256, 128),
    "ethos-u65-512": (1000, 512, 256),
}


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_public_figures(name):
    hw = load_profile(name)
    clock, macs8, macs16 = PUBLIC[name]
    assert (hw.clock_mhz, hw.macs_per_clock(8), hw.macs_per_clock(16)) == (clock, macs8, macs16)


def test_vela_memory_systems():
    """vela.ini: U55 High-End Embedded SRAM 4 GB/s, flash 0.5 GB/s (Shared_Sram); U65
    Client-Server SRAM 16 GB/s, DRAM 12 GB/s (Dedicated_Sram_384KB)."""
    u55, u65 = load_profile("ethos-u55-256"), load_profile("ethos-u65-512")
    gbps = lambda hw: {name: m.gbps for name, m in hw.memory_map().items()}  # noqa: E731
    assert gbps(u55) == {"sram": 4.0, "flash": 0.5}
    assert (u55.fm_memory, u55.weight_memory, u55.ocm_kib) == ("sram", "flash", 0)
    assert gbps(u65) == {"sram": 16.0, "dram": 12.0}
    assert (u65.fm_memory, u65.weight_memory, u65.cache_memory, u65.ocm_kib) == ("dram", "dram", "sram", 384)
    assert not u65.memory_map()["sram"].counted and u65.memory_map()["dram"].counted


def test_memories_run_in_parallel():
    """A pass's transfer time is its slowest memory's: with weights in a memory of their own
    (``weight_dram_gbps``), a layer's memory cycles are the larger of its feature-map bytes
    at ``dram_gbps`` and its weight bytes at ``weight_dram_gbps``."""
    workload = build_workload(load_lowered("tinynet"))
    base = load_profile("3nx")
    split = base.replace(weight_dram_gbps=1.0)
    for hw in (base, split):
        weight_gbps = hw.weight_dram_gbps or hw.dram_gbps
        for layer in evaluate(workload, hw, 8).layers:
            fm = (layer.act_read_bytes + layer.act_write_bytes) / (hw.dram_gbps * 1e9)
            weights = layer.weight_bytes / (weight_gbps * 1e9)
            seconds = fm + weights if hw is base else max(fm, weights)
            assert layer.memory_cycles == pytest.approx(seconds * hw.clock_mhz * 1e6)
    assert set(evaluate(workload, split, 8).memory_traffic()) == {"dram", "weights"}


def test_bad_memory_bandwidth_names_the_key(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"inherits": "ethos-u55-256", "memories": {"sram": {"gbps": -1}}}))
    with pytest.raises(ProfileError, match=r"bad\.yaml.*'memories\.sram\.gbps'"):
        load_profile(str(path))


def test_placement_must_name_a_memory(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"inherits": "ethos-u55-256", "weights_in": "rom"}))
    with pytest.raises(ProfileError, match=r"'weights_in': no memory 'rom'"):
        load_profile(str(path))
