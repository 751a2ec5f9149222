"""Locust load tests for kcr (see loadtests/README.md). Importing this package does not import locust."""
