"""Transport: wire format, item codec, data links, control messages, endpoints."""
