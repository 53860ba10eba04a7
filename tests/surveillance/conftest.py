"""The R reference run, made once per test session for the whole verification set."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.surveillance.verification_set import reference_spec

REFERENCE_SCRIPT = Path(__file__).with_name("reference.R")


@pytest.fixture(scope="session")
def r_reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """R's results on the verification set: ``{"series": {...}, "runs": {id: result}}``."""
    rscript = shutil.which("Rscript")
    if rscript is None:
        pytest.skip(
            "Rscript is not installed: the comparison with R needs "
            "r-base-core, r-cran-surveillance and r-cran-jsonlite"
        )
    probe = subprocess.run(
        [rscript, "-e", "library(surveillance); library(jsonlite)"],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        pytest.skip("the R packages surveillance and jsonlite are not installed")
    workdir = tmp_path_factory.mktemp("r-reference")
    spec_path, result_path = workdir / "spec.json", workdir / "result.json"
    spec_path.write_text(json.dumps(reference_spec()))
    done = subprocess.run(
        [rscript, str(REFERENCE_SCRIPT), str(spec_path), str(result_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, f"reference.R failed:\n{done.stderr}"
    result = json.loads(result_path.read_text())
    return {"series": result["series"], "runs": {run["id"]: run for run in result["runs"]}}
