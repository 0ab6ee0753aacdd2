"""Apply: executing a plan over the Directory port in dependency order, and its results."""
