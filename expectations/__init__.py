"""Great Expectations suites (JSON), installed as pipelines.expectations."""
