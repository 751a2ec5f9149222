"""Locust load tests and benchmarks for kcr (see loadtests/README.md). Importing this package does not import
locust."""
