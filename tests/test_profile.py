"""Hardware profiles: loading, inheritance, validation messages, and `nnasim hw list`."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from nnasim.cli import main
from nnasim.cost import builtin_profiles, load_profile
from nnasim.cost.profile import PROFILE_DIR
from nnasim.errors import ProfileError


def write_profile(tmp_path: Path, name: str, data: dict) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def base_data() -> dict:
    return yaml.safe_load((PROFILE_DIR / "2nx.yaml").read_text())


def test_builtin_profiles_load_and_3nx_inherits_2nx():
    assert {"2nx", "3nx"} <= set(builtin_profiles())
    two, three = load_profile("2nx"), load_profile("3nx")
    assert two.macs_per_clock(8) == 2048 and two.macs_per_clock(16) == 1024
    assert three.macs_per_clock(8) == 4096
    # 3nx.yaml does not repeat these keys: they come from 2nx.yaml.
    raw_3nx = yaml.safe_load((PROFILE_DIR / "3nx.yaml").read_text())
    assert "dram_burst_bytes" not in raw_3nx and three.dram_burst_bytes == two.dram_burst_bytes
    assert three.accumulator_bits == two.accumulator_bits


def test_profile_by_path_and_deep_merge(tmp_path):
    child = write_profile(
        tmp_path, "child", {"inherits": str(PROFILE_DIR / "2nx.yaml"), "mac_array": {8: {"pixels": 8}}}
    )
    hw = load_profile(str(child))
    assert hw.name == "child"
    assert hw.mac_array[8].pixels == 8
    assert hw.mac_array[8].out_channels == load_profile("2nx").mac_array[8].out_channels


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (lambda d: d.pop("dram_gbps"), "dram_gbps"),
        (lambda d: d.update(clock_mhz="fast"), "clock_mhz"),
        (lambda d: d.update(dram_bandwidth=10), "dram_bandwidth"),
        (lambda d: d.update(dram_gbps=-3), "dram_gbps"),
        (lambda d: d["mac_array"][8].update(pixels=0), "mac_array.8.pixels"),
        (lambda d: d["weight_compression_ratio"].update({8: 1.5}), "weight_compression_ratio.8"),
        (lambda d: d.update(fusion="always"), "fusion"),
        (lambda d: d.update(line_buffer_extra_rows=-1), "line_buffer_extra_rows"),
    ],
)
def test_malformed_profile_names_file_and_key(tmp_path, capsys, change, key):
    data = base_data()
    change(data)
    path = write_profile(tmp_path, "bad", data)
    with pytest.raises(ProfileError) as error:
        load_profile(str(path))
    assert str(path) in str(error.value) and key in str(error.value)
    assert main(["profile", "lffd", "--hw", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and key in err and str(path) in err


def test_inheritance_cycle_and_missing_parent(tmp_path):
    write_profile(tmp_path, "a", {"inherits": "b.yaml"})
    write_profile(tmp_path, "b", {"inherits": "a.yaml"})
    with pytest.raises(ProfileError, match="inheritance cycle"):
        load_profile(str(tmp_path / "a.yaml"))
    orphan = write_profile(tmp_path, "orphan", {"inherits": "nowhere.yaml"})
    with pytest.raises(ProfileError, match="inherits"):
        load_profile(str(orphan))


def test_unknown_profile_name():
    with pytest.raises(ProfileError, match="unknown hardware profile '9nx'"):
        load_profile("9nx")


def test_hw_list(capsys):
    assert main(["hw", "list"]) == 0
    out = capsys.readouterr().out
    assert "2nx" in out and "3nx" in out and "4,096" in out
