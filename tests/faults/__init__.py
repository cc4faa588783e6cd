"""The fault and bad-input suite (issue 13): real faults, real processes, real sockets."""
