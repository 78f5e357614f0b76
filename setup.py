"""Packaging for the demographics pipeline.

`schemas/` and `expectations/` stay top-level folders in the repository (the contract's layout) and are
installed inside the package as `pipelines.schemas` and `pipelines.expectations`, so that a non-editable
install works from any directory and Dataflow workers get them through `--setup_file`.
"""

from pathlib import Path

from setuptools import find_packages, setup

PACKAGES = find_packages(include=["pipelines", "pipelines.*"]) + ["pipelines.schemas", "pipelines.expectations"]

setup(
    name="demographics-pipeline",
    version="0.1.0",
    description="FHIR race, ethnicity and language data normalized to OMB SPD-15 (2024) and HEDIS strata, "
    "landed in DuckDB and Parquet with Apache Beam.",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.11,<3.13",
    packages=PACKAGES,
    package_dir={
        "pipelines.schemas": "schemas",
        "pipelines.expectations": "expectations",
    },
    package_data={
        "pipelines.schemas": ["*.avsc"],
        "pipelines.expectations": ["*.json"],
        "pipelines.normalize": ["data/*"],
        "pipelines.report": ["templates/*.j2"],
    },
    include_package_data=False,
    # Versions known to resolve and work together offline (../shared/notes/toolchain.md).
    install_requires=[
        "apache-beam==2.77.0",
        "great-expectations==1.24.1",
        # GX's SQL datasource on DuckDB (validation runs where the rows are): SQLAlchemy and DuckDB's dialect for it.
        # duckdb-engine 0.17.0 needs the workaround of pipelines/validation/gx_duckdb.py; its test says when not.
        "SQLAlchemy==2.1.9",
        "duckdb-engine==0.17.0",
        "fhir.resources==8.3.0",
        "fhir-core==1.1.12",
        "pydantic==2.14.3",
        "fastavro==1.13.1",
        "duckdb==1.5.5",
        "pandas==2.3.3",
        "numpy==2.4.6",
        "pyarrow==25.0.1",
        "protobuf==6.33.6",
        "orjson==3.13.0",
        # demographics report: LP/MILP for suppression checks, page templates, charts rendered to SVG offline.
        "scipy==1.17.1",
        "Jinja2==3.1.6",
        "altair==6.3.0",
        "vl-convert-python==1.9.0.post1",
    ],
    extras_require={
        "test": [
            "pytest==9.2.0",
            "pytest-timeout==2.4.0",
            "ruff==0.17.5",  # lint and format (ruff.toml), checked first by the README's test command
            "hypothesis==6.170.15",
            # The report page opened in Debian's Chromium (apt-get install chromium), never a downloaded browser.
            "playwright==1.65.2",
            "pillow==12.3.0",  # reads the browser's screenshot
            # The least that lets the Dataflow job be built, translated by DataflowRunner (dry run) and run on the
            # local runners against an emulated GCS (tests/test_dataflow.py); BigQuery's client reads the load
            # configurations and query parameters the BigQuery sink builds (tests/test_bigquery.py).
            "google-apitools==0.5.31",
            "regex==2026.11.15",
            "google-auth==2.62.2",
            "google-auth-httplib2==0.2.1",
            "google-cloud-storage==3.17.1",
            "google-cloud-dataflow-client==0.13.0",
            "google-cloud-bigquery==3.47.0",
            "gcp-storage-emulator==2026.7.19",
        ],
        # The machine that launches Dataflow jobs (docs/dataflow.md).
        "gcp": ["apache-beam[gcp]==2.77.0", "google-cloud-bigquery==3.47.0"],
    },
    entry_points={"console_scripts": ["demographics = pipelines.cli:main"]},
)
