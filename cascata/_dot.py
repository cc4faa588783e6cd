"""``g.to_dot()``: a Graphviz picture of a graph (needs the optional ``graphviz`` package).

Each component is a box with its inports on top and its outports below; an initial value is a
small note feeding its port (``seed`` when the port is also connected); a group is a dashed
cluster of its members; a subgraph is a cluster holding its own components, groups and nested
subgraphs; the drawn graph's own exported ports are small tags. An edge that distributes items
over a group (each item to one member) is dashed; an edge into a batching port says how it
batches.
"""

from __future__ import annotations

import html
import warnings
from typing import Any

from ._subgraph import Level, concrete_ports, level_of
from .component import Component
from .port import NOT_SET, InPort

# Characters of an initial value's repr shown in its note; longer ones are cut with an ellipsis.
MAX_VALUE_CHARS = 24

_GRAPH_ATTR = {"rankdir": "TB", "fontname": "Helvetica", "fontsize": "11"}
_NODE_ATTR = {"shape": "plaintext", "fontname": "Helvetica", "fontsize": "10"}
_EDGE_ATTR = {"fontname": "Helvetica", "fontsize": "9"}


def graph_to_dot(graph: Any) -> Any:
    """A ``graphviz.Digraph`` of ``graph``; None, with a warning, when graphviz is missing."""
    try:
        import graphviz
    except ImportError:
        warnings.warn(
            "Graph.to_dot() needs the optional 'graphviz' package: pip install cascata[dot]",
            stacklevel=3,
        )
        return None
    dot = graphviz.Digraph(
        name="cascata", format="svg", graph_attr=_GRAPH_ATTR, node_attr=_NODE_ATTR,
        edge_attr=_EDGE_ATTR,
    )
    _draw_level(dot, level_of(graph))
    for edge in graph._edges:
        spread = len(edge.dsts) > 1
        for dst in edge.dsts:
            attrs = {"style": "dashed", "tooltip": "each item to one member"} if spread else {}
            label = _batch_label(dst)
            if label:
                attrs["label"] = label
            dot.edge(_out(edge.src), _in(dst), **attrs)
    return dot


def _draw_level(dot: Any, level: Level, exports: bool = True) -> None:
    """Draw one level; a nested subgraph's exports are left out, its edges show its wiring."""
    for comp in level.nodes.values():
        _draw_component(dot, comp)
    for alias, group in level.groups.items():
        with dot.subgraph(name=f"cluster_group_{group.name}") as cluster:
            cluster.attr(
                label=f"{alias}: {group.comp_cls.__name__} \u00d7 {group.count}", style="dashed"
            )
            for member in group.members:
                _draw_component(cluster, member)
    for name, child in level.children.items():
        with dot.subgraph(name=f"cluster_sub_{child.prefix}") as cluster:
            cluster.attr(label=f"subgraph {name}", style="rounded")
            _draw_level(cluster, child, exports=False)
    for name, port in level.exports.items() if exports else ():
        node_id = f"{level.prefix}export.{name}"
        dot.node(node_id, label=name, shape="cds", fontsize="9", style="filled", fillcolor="#eeeeee")
        for concrete in concrete_ports(port):
            if isinstance(concrete, InPort):
                dot.edge(node_id, _in(concrete), style="dotted", arrowhead="none")
            else:
                dot.edge(_out(concrete), node_id, style="dotted", arrowhead="none")


def _draw_component(dot: Any, comp: Component) -> None:
    dot.node(comp.name, label=_label(comp))
    for port in comp.inports:
        if port.initial is NOT_SET:
            continue
        text = _short(repr(port.initial))
        if port.connected:
            text = f"seed {text}"
        node_id = f"{comp.name}.{port.name}.initial"
        dot.node(node_id, label=text, shape="note", fontsize="8", height="0.2", margin="0.03")
        dot.edge(node_id, _in(port), style="dotted", arrowsize="0.5")


def _label(comp: Component) -> str:
    """An HTML-like table: a row of inport cells, the name and class, a row of outport cells."""
    ins = "".join(f'<TD PORT="in_{p.name}">{_esc(p.name)}</TD>' for p in comp.inports)
    outs = "".join(f'<TD PORT="out_{p.name}">{_esc(p.name)}</TD>' for p in comp.outports)
    rows = []
    if ins:
        rows.append(f'<TR><TD BORDER="0"><TABLE BORDER="0" CELLBORDER="1" CELLSPACING="0" '
                    f'BGCOLOR="#dde8f5"><TR>{ins}</TR></TABLE></TD></TR>')
    rows.append(
        f'<TR><TD BORDER="1" CELLPADDING="6"><B>{_esc(comp.name)}</B><BR/>'
        f'<FONT POINT-SIZE="8">{_esc(type(comp).__name__)}</FONT></TD></TR>'
    )
    if outs:
        rows.append(f'<TR><TD BORDER="0"><TABLE BORDER="0" CELLBORDER="1" CELLSPACING="0" '
                    f'BGCOLOR="#f5e6d3"><TR>{outs}</TR></TABLE></TD></TR>')
    return f'<<TABLE BORDER="0" CELLSPACING="0" CELLPADDING="2">{"".join(rows)}</TABLE>>'


def _in(port: Any) -> str:
    return f"{port.component.name}:in_{port.name}:n"


def _out(port: Any) -> str:
    return f"{port.component.name}:out_{port.name}:s"


def _batch_label(port: InPort) -> str:
    if port.batch_size is None:
        return ""
    return "all as one list" if port.batch_size == 0 else f"lists of {port.batch_size}"


def _short(text: str) -> str:
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 1] + "\u2026"


def _esc(text: str) -> str:
    return html.escape(text, quote=True)
