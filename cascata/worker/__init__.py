"""Execution: firing rules, run-time ports, component tasks, worker processes."""
