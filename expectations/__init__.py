"""Great Expectations suites of the nightly run, kept as code (inputs, results, report)."""
