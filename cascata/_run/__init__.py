"""Run time in the caller's process: compile a graph into a plan, place, launch and coordinate."""
