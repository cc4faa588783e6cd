"""Command-line entry points: ``cascata`` (``run``, ``dot``, ``keygen``, ``worker``) and
``cascata-worker`` (the same as ``cascata worker``).

``cascata run path/to/script.py:graph`` loads the script as a module (not as ``__main__``: its
``if __name__ == '__main__':`` block does not run, so a script that runs its graph there can be
used from the command line unchanged), takes the Graph bound to ``graph`` and runs it, printing
the run report. ``cascata dot`` draws it. A wrong path, a missing name or a name that is not a
Graph is a one-line error and exit status 1.
"""

from __future__ import annotations

import sys
import traceback
import types
from pathlib import Path
from typing import Any

import click

from .errors import CascataError
from .graph import Graph

# The name the script runs under (its components' __module__): not '__main__', see above.
SCRIPT_MODULE = "__cascata_script__"
# What ``-o`` writes without the Graphviz 'dot' program: the DOT source itself.
SOURCE_SUFFIXES = (".dot", ".gv")


@click.group()
@click.version_option(package_name="cascata")
def main() -> None:
    """cascata: parallel flow-based graph execution."""


class GraphRef(click.ParamType):
    """``path/to/script.py:name``, or ``path/to/script.py`` when it defines a single Graph."""

    name = "SCRIPT.py[:GRAPH]"

    def convert(self, value: Any, param: Any, ctx: Any) -> Graph:
        if isinstance(value, Graph):
            return value
        path, _, name = str(value).rpartition(":") if ":" in str(value) else (value, "", "")
        return load_graph(Path(path), name or None, self.fail)


def load_graph(path: Path, name: str | None, fail: Any) -> Graph:
    """The Graph bound to ``name`` at the top level of the script at ``path`` (``fail(message)``
    raises the error to show)."""
    if not path.is_file():
        fail(f"no script at {str(path)!r}" + ("" if path.exists() else " (no such file)"))
    namespace = _run_script(path, fail)
    if name is None:
        graphs = sorted(k for k, v in namespace.items() if isinstance(v, Graph))
        if len(graphs) != 1:
            found = ", ".join(graphs) or "none"
            fail(f"{path} defines {len(graphs)} graphs ({found}); name one: {path}:NAME")
        name = graphs[0]
    if name not in namespace:
        graphs = ", ".join(sorted(k for k, v in namespace.items() if isinstance(v, Graph)))
        fail(f"{path} defines no {name!r} at its top level (graphs it defines: {graphs or 'none'})")
    graph = namespace[name]
    if not isinstance(graph, Graph):
        fail(f"{name!r} in {path} is a {type(graph).__name__}, not a cascata Graph")
    return graph


def _run_script(path: Path, fail: Any) -> dict[str, Any]:
    """Execute the script as the module SCRIPT_MODULE, with its folder first on sys.path (as
    ``python script.py`` would), and return its namespace."""
    module = types.ModuleType(SCRIPT_MODULE)
    module.__file__ = str(path.resolve())
    sys.modules[SCRIPT_MODULE] = module  # workers and pickle find its components by module
    sys.path.insert(0, str(path.resolve().parent))
    try:
        code = compile(path.read_bytes(), str(path), "exec")
        exec(code, module.__dict__)
    except SyntaxError as exc:
        fail(f"{path} is not valid Python: {exc}")
    except Exception as exc:
        traceback.print_exc()
        fail(f"running {path} raised {type(exc).__name__}: {exc}")
    return module.__dict__


@main.command()
@click.argument("graph", type=GraphRef())
@click.option("--workers", "-w", type=click.IntRange(min=1), default=None,
              help="Number of local worker processes (default: min(CPUs, components)).")
@click.option("--progress/--no-progress", default=None,
              help="Live per-component view on stderr (default: when stderr is a terminal).")
def run(graph: Graph, workers: int | None, progress: bool | None) -> None:
    """Run the graph GRAPH (script.py:name) and print its run report."""
    _check_script_stays_local(graph)
    try:
        report = Graph.run(graph, workers, progress=progress)
    except CascataError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(report)


def _check_script_stays_local(graph: Graph) -> None:
    """Refuse a run on other hosts (``CASCATA_WORKERS``) of components the script defines: they
    belong to SCRIPT_MODULE, which the hosts cannot import, and only ``__main__`` travels by
    value. Said here, before any connection, rather than as a missing module on each host."""
    from ._run.hosts import LOCAL, worker_addresses

    try:
        remote = [a for a in worker_addresses(None) if a != LOCAL]
    except (CascataError, ValueError) as exc:
        raise click.ClickException(f"CASCATA_WORKERS: {exc}") from exc
    defined = [n for n, c in graph._nodes.items() if c._runner.__module__ == SCRIPT_MODULE]
    if remote and defined:
        raise click.ClickException(
            f"components defined in the script ({', '.join(defined)}) cannot travel to the hosts "
            f"CASCATA_WORKERS names ({', '.join(remote)}) from 'cascata run': run the script with "
            "python instead (components of __main__ travel by value), or move them into a module "
            "installed on every host"
        )


@main.command()
@click.argument("graph", type=GraphRef())
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="File to write: .svg, .png, .pdf (need Graphviz's 'dot'), or .dot/.gv source. "
              "Default: the DOT source on stdout.")
def dot(graph: Graph, output: Path | None) -> None:
    """Draw the graph GRAPH (script.py:name) with Graphviz."""
    drawing = Graph.to_dot(graph)
    if drawing is None:
        raise click.ClickException("drawing needs the 'graphviz' package: pip install cascata[dot]")
    if output is None:
        click.echo(drawing.source, nl=False)
        return
    suffix = output.suffix.lower()
    if suffix in SOURCE_SUFFIXES:
        output.write_text(drawing.source)
        return
    if not suffix:
        raise click.ClickException(f"{output}: give the file a suffix (.svg, .png, .pdf, .dot)")
    output.write_bytes(_render(drawing, suffix[1:]))


def _render(drawing: Any, fmt: str) -> bytes:
    import graphviz

    try:
        return drawing.pipe(format=fmt)
    except graphviz.ExecutableNotFound as exc:
        raise click.ClickException(
            f"rendering .{fmt} needs the Graphviz 'dot' program (e.g. apt install graphviz); "
            "-o graph.dot writes the source without it"
        ) from exc
    except (ValueError, graphviz.CalledProcessError) as exc:
        raise click.ClickException(f"Graphviz cannot write .{fmt}: {exc}") from exc


@main.command()
@click.argument("file", type=click.Path(dir_okay=False))
def keygen(file: str) -> None:
    """Write a fresh cluster key to FILE (mode 0600; never overwrites). Copy it to every host:
    whoever holds it can run any code on every host of the cluster."""
    from .transport.auth import generate_key_file

    try:
        generate_key_file(file)
    except CascataError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"wrote a new cluster key to {file}; copy it (mode 0600) to every host")


@click.command(name="worker")
@click.option("--listen", required=True, metavar="HOST:PORT",
              help="Address to listen on: the interface other hosts reach (port 0: any free port).")
@click.option("--key-file", required=True, type=click.Path(dir_okay=False),
              help="The cluster key file (cascata keygen), readable by its owner only.")
@click.option("--processes", type=click.IntRange(min=1), default=None,
              help="Worker processes offered to a run (default: the CPUs this process may use).")
@click.option("--allow-all-interfaces", is_flag=True,
              help="Allow --listen on 0.0.0.0 / '*' (every network interface).")
def worker_main(listen: str, key_file: str, processes: int | None, allow_all_interfaces: bool) -> None:
    """Run a cascata worker daemon on this host; SIGTERM stops it, ending any run it serves."""
    from .worker.daemon import run_daemon

    try:
        run_daemon(listen, key_file, processes, allow_all_interfaces)
    except (CascataError, ValueError) as exc:
        click.echo(f"cascata worker: {exc}", err=True)
        sys.exit(2)


main.add_command(worker_main)


if __name__ == "__main__":
    main()
