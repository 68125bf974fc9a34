"""Monitoring events and the findings they are deduplicated into (spec §7, the data part)."""
