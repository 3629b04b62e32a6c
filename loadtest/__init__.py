"""Load tests (locust scenarios) and the benchmark driver."""
