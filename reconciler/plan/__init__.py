"""The plan: typed changes, the pure diff, safety limits, the actual-state fingerprint, the JSON codec."""
