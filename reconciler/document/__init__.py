"""The desired-state document: parse, schema and semantic checks, Graph naming limits, export."""
