"""Locust load tests for kcr (see the README, "Load tests"). Importing this package does not import locust."""
