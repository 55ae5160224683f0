"""The bad-input catalogue: every case in one list (see ``catalogue.Case``)."""

from tests.bad_inputs.cases_data import DATA_CASES
from tests.bad_inputs.cases_models import MODEL_FILE_CASES
from tests.bad_inputs.cases_outputs import OUTPUT_CASES
from tests.bad_inputs.cases_sweeps import SWEEP_FOLDER_CASES
from tests.bad_inputs.cases_yaml import PROFILE_RANGE_CASES, SPEC_CASES
from tests.bad_inputs.catalogue import MODEL_CASES, OPTION_CASES, PROFILE_CASES, Case

ALL_CASES: list[Case] = [
    *MODEL_CASES,
    *PROFILE_CASES,
    *OPTION_CASES,
    *OUTPUT_CASES,
    *PROFILE_RANGE_CASES,
    *SPEC_CASES,
    *MODEL_FILE_CASES,
    *DATA_CASES,
    *SWEEP_FOLDER_CASES,
]

__all__ = ["ALL_CASES", "Case"]
