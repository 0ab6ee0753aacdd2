"""Runs: the run history store, the HTML report and the run lock."""
