"""Bounded mutation fuzzing of the model loader (a longer run: fuzz/run.py)."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz.mutators import (
    mutate,
    mutate_array,
    mutate_model,
    mutate_profile,
    mutate_profile_extreme,
    mutate_spec,
    seed_model,
)
from fuzz.targets import array_target, model_target, profile_target, spec_target

SEED = seed_model()
SEED_BYTES = SEED.SerializeToString()


def test_seed_model_loads():
    assert model_target(SEED_BYTES) == "ok"


@settings(max_examples=250, deadline=5000, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_mutated_models_work_or_raise_nnasim_errors(seed):
    model_target(mutate(random.Random(seed), SEED, SEED_BYTES))


@settings(max_examples=300, deadline=5000, derandomize=True)
@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_mutated_profiles_load_or_raise_nnasim_errors(seed):
    profile_target(mutate_profile(random.Random(seed)))


@settings(max_examples=150, deadline=5000, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_models_with_extreme_values_or_external_data_work_or_raise_nnasim_errors(seed):
    data, side = mutate_model(random.Random(seed), SEED, SEED_BYTES)
    model_target(data, side=side)


@settings(max_examples=200, deadline=5000, derandomize=True)
@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_profiles_with_extremes_and_aliases_load_or_raise_nnasim_errors(seed):
    profile_target(mutate_profile_extreme(random.Random(seed)))


@settings(max_examples=200, deadline=5000, derandomize=True)
@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_mutated_sweep_specs_load_or_raise_nnasim_errors(seed):
    spec_target(mutate_spec(random.Random(seed)))


@settings(max_examples=200, deadline=5000, derandomize=True)
@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_mutated_arrays_load_or_raise_nnasim_errors(seed):
    array_target(*mutate_array(random.Random(seed)))
