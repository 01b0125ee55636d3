"""Prefect flows and the gladly-pipeline command line."""
