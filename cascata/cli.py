"""Command-line entry points: ``cascata`` and ``cascata-worker``."""

from __future__ import annotations

import sys

import click


@click.group()
@click.version_option(package_name="cascata")
def main() -> None:
    """cascata: parallel flow-based graph execution."""


@click.command()
def worker_main() -> None:
    """Run a cascata worker daemon on this host (multi-host support is not built yet)."""
    click.echo("cascata-worker: not yet — multi-host daemons are planned; runs are local only.")
    sys.exit(2)


if __name__ == "__main__":
    main()
