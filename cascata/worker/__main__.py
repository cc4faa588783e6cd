"""``python -m cascata.worker --listen HOST:PORT --key-file FILE``: the worker daemon."""

from cascata.cli import worker_main

if __name__ == "__main__":
    worker_main(prog_name="python -m cascata.worker")
