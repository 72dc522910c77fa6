"""Graph rules: eKuiper's rule given as a node graph, run as the SQL rule it amounts to.

A body with ``"graph": {"nodes": {...}, "topo": {"sources": [...], "edges": {...}}}`` instead
of ``sql`` and ``actions`` describes the rule as a DAG of a source, operators and sinks, as
eKuiper's drag-and-drop editors write it. Plutino runs one query over one stream per rule, so
a graph is accepted when it is one chain — a source node that names a stream, operators one
after the other, then one or more sinks — and :func:`translate` turns it into the SELECT and
the actions that do the same. Everything else (two sources, branches, cycles, switch, join,
script, an inline source) is refused with the node and the fix. See docs/graph-rules.md.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from .errors import RuleError
from .graph_sql import GraphNode, GraphQuery, ident
from .hints import did_you_mean, listing

#: The operator nodeTypes that translate to SQL (eKuiper's names).
OPERATORS = ("filter", "function", "pick", "window", "aggfunc", "groupby", "orderby")
#: eKuiper's operator nodeTypes that Plutino refuses, with what to do instead.
REFUSED_OPERATORS = {
    "switch": "it routes rows to several branches; make a rule per case, each with a filter node for its condition",
    "join": "a graph rule reads one stream; write a join as a SQL rule: SELECT ... FROM s JOIN t ON ...",
    "script": "JavaScript is not run; use a function node with a built-in or plugin function",
    "watermark": "set the rule option isEventTime and the stream's TIMESTAMP instead",
}
NODE_TYPES = ("source", "operator", "sink")
#: The most nodes a graph may have (each expression is parsed on its own: a bound on the work).
MAX_NODES = 1000
#: Source node props that are stream properties, as CREATE STREAM spells them.
_STREAM_PROPS = {"datasource": "DATASOURCE", "format": "FORMAT", "confkey": "CONF_KEY", "key": "KEY",
                 "timestamp": "TIMESTAMP", "timestampformat": "TIMESTAMP_FORMAT", "shared": "SHARED",
                 "strictvalidation": "STRICT_VALIDATION", "schemaid": "SCHEMAID", "delimiter": "DELIMITER",
                 "sharegroup": "SHARE_GROUP"}


def translate(rule_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """The ``sql`` and ``actions`` of the graph rule ``body``; raise :class:`RuleError` naming
    the node and the fix when the graph is malformed or asks for what Plutino does not run."""
    if body.get("sql"):
        raise RuleError(f"rule '{rule_id}' has both sql and graph; give one of them (a graph is run as the SQL "
                        "it amounts to)")
    if "actions" in body:
        raise RuleError(f"graph rule '{rule_id}': the body also has actions; the graph's sink nodes are its actions: "
                        "drop actions, or add the sinks to the graph")
    graph = _Graph(rule_id, body["graph"])
    chain, sinks = graph.walk()
    query = GraphQuery(rule_id, graph.stream())
    for name in chain:
        query.add(graph.nodes[name])
    return {"sql": query.sql(), "actions": [{graph.nodes[s].kind: dict(graph.nodes[s].props)} for s in sinks]}


class _Graph:
    """The nodes and edges of a graph, checked for shape: one source, known node types."""

    def __init__(self, rule_id: str, graph: Any) -> None:
        self.rule_id = rule_id
        if not isinstance(graph, Mapping) or not isinstance(graph.get("nodes"), Mapping) or not graph["nodes"]:
            raise self.error('graph must be an object with "nodes" (an object of nodes by name) and "topo"')
        if len(graph["nodes"]) > MAX_NODES:
            raise self.error(f"graph has {len(graph['nodes'])} nodes, over the limit of {MAX_NODES}; split it into "
                             "several rules")
        self.nodes = {str(name): self._node(str(name), node) for name, node in graph["nodes"].items()}
        topo = graph.get("topo")
        if not isinstance(topo, Mapping):
            raise self.error('graph has no "topo"; give {"sources": ["<source node>"], "edges": {"<node>": '
                             '["<next node>", ...]}}')
        sources = topo.get("sources")
        if not isinstance(sources, list) or not sources or not all(isinstance(s, str) for s in sources):
            raise self.error('topo.sources must list the source node, e.g. "sources": ["demo"]')
        if len(sources) > 1:
            raise self.error(f"topo.sources lists {len(sources)} sources ({', '.join(sources)}); a graph rule "
                             "reads one stream: make a rule for each source, or a SQL rule that joins them")
        self.source = sources[0]
        declared = [n.name for n in self.nodes.values() if n.type == "source"]
        if self.source not in self.nodes or self.nodes[self.source].type != "source":
            raise self.error(f"topo.sources names '{self.source}', which is not a source node; source nodes: "
                             f"{listing(declared)}")
        for name in declared:
            if name != self.source:
                raise self.error(f"node '{name}' is a source, but topo.sources does not list it; a graph rule "
                                 "reads one stream: remove the node or make a rule for it")
        self.edges = self._edges(topo.get("edges"))

    def error(self, problem: str) -> RuleError:
        return RuleError(f"graph rule '{self.rule_id}': {problem}")

    def _node(self, name: str, node: Any) -> GraphNode:
        if not isinstance(node, Mapping):
            raise self.error(f"node '{name}' must be an object with type, nodeType and props, got {node!r}")
        node_type = str(node.get("type", "")).lower()
        if node_type not in NODE_TYPES:
            given = f"type {node['type']!r}" if "type" in node else "no type"
            hint = did_you_mean(node_type, NODE_TYPES)
            raise self.error(f"node '{name}' has {given}; {hint + ' ' if hint else ''}a node's type is source, "
                             "operator or sink")
        kind = node.get("nodeType")
        if not isinstance(kind, str) or not kind:
            what = "the operator (filter, function, pick, ...)" if node_type == "operator" else "the plugin, e.g. mqtt"
            raise self.error(f"node '{name}' has no nodeType; give {what}")
        props = node.get("props") or {}
        if not isinstance(props, Mapping):
            raise self.error(f"the props of node '{name}' must be an object, got {props!r}")
        if node_type == "operator":
            kind = kind.lower()
            if kind in REFUSED_OPERATORS:
                raise self.error(f"node '{name}' is a {kind} node, which Plutino does not run: "
                                 f"{REFUSED_OPERATORS[kind]}")
            if kind not in OPERATORS:
                hint = did_you_mean(kind, OPERATORS)
                raise self.error(f"node '{name}' has the unknown operator nodeType '{node['nodeType']}'; "
                                 f"{hint + ' ' if hint else ''}operators: {', '.join(OPERATORS)}")
        return GraphNode(name, node_type, kind, props)

    def _edges(self, edges: Any) -> dict[str, list[str]]:
        if not isinstance(edges, Mapping):
            raise self.error('topo.edges must be an object of the next nodes by node, e.g. {"demo": ["out"]}')
        out: dict[str, list[str]] = {}
        for name, targets in edges.items():
            if name not in self.nodes:
                raise self.error(f"topo.edges has edges from '{name}', which is not a node; nodes: "
                                 f"{listing(self.nodes)}")
            if self.nodes[name].type == "sink":
                raise self.error(f"sink '{name}' has edges; a sink ends the graph: remove topo.edges.{name}")
            if not isinstance(targets, list):
                raise self.error(f"topo.edges.{name} must be a list of node names, got {targets!r}")
            for t in targets:
                if not isinstance(t, str):
                    raise self.error(f"topo.edges.{name} holds {t!r}; give node names (only eKuiper's switch node "
                                     "has lists of branches, and it is not supported)")
                if t not in self.nodes:
                    hint = did_you_mean(t, self.nodes)
                    raise self.error(f"topo.edges.{name} names '{t}', which is not a node; "
                                     f"{hint + ' ' if hint else ''}nodes: {listing(self.nodes)}")
                if targets.count(t) > 1:
                    raise self.error(f"topo.edges.{name} lists '{t}' twice; list it once")
            out[name] = list(targets)
        return out

    def walk(self) -> tuple[list[str], list[str]]:
        """The operators from the source on, in order, and the sinks after the last of them."""
        path, current = [self.source], self.source
        while True:
            targets = self.edges.get(current)
            if not targets:
                raise self.error(f"node '{current}' leads nowhere; give it the next node or a sink in "
                                 f"topo.edges.{current}")
            operators = [t for t in targets if self.nodes[t].type != "sink"]
            if operators and len(targets) > 1:
                raise self.error(f"node '{current}' sends its rows to {', '.join(targets)}; a Plutino graph rule "
                                 "is one chain of operators with its sinks after the last one: make a rule for "
                                 "each branch")
            if not operators:
                break
            nxt = operators[0]
            if self.nodes[nxt].type == "source":
                raise self.error(f"node '{current}' sends its rows to the source '{nxt}'; a source has no inputs")
            if nxt in path:
                raise self.error(f"the graph has a cycle: {' -> '.join(path[path.index(nxt):] + [nxt])}; rows "
                                 "flow one way, from the source to the sinks")
            path.append(nxt)
            current = nxt
        reached = set(path) | set(targets)
        for name in self.nodes:
            if name not in reached:
                raise self.error(f"node '{name}' is not on the way from the source '{self.source}' to the sinks; "
                                 "connect it in topo.edges or remove it")
        return path[1:], targets

    def stream(self) -> str:
        """The stream the source node reads: ``props: {"sourceType": "stream", "sourceName": ...}``."""
        node = self.nodes[self.source]
        source_type = str(node.props.get("sourceType", "stream")).lower()
        if source_type != "stream":
            raise self.error(f"source '{node.name}' has sourceType {node.props['sourceType']!r}; a graph rule "
                             'reads a stream: give "sourceType": "stream" (a table is joined in a SQL rule: '
                             "SELECT ... FROM s JOIN t ON ...)")
        name = node.props.get("sourceName")
        if isinstance(name, str) and name:
            return name
        if name is not None:
            raise self.error(f"source '{node.name}' has sourceName {name!r}; give the name of a stream")
        return self._inline(node)

    def _inline(self, node: GraphNode) -> str:
        options = [f'TYPE="{node.kind}"']
        for key, value in node.props.items():
            if key.lower() == "sourcetype":
                continue
            text = json.dumps(value) if isinstance(value, str) else json.dumps(value).lower()
            options.append(f"{_STREAM_PROPS.get(key.lower(), key)}={text}")
        create = f"CREATE STREAM {ident(node.name)} () WITH ({', '.join(options)})"
        raise self.error(f"source '{node.name}' describes its source inline; Plutino reads a graph rule's source "
                         f"from a stream: create it ({create}) and give the node "
                         f'"props": {{"sourceType": "stream", "sourceName": "{node.name}"}}')


__all__ = ["MAX_NODES", "NODE_TYPES", "OPERATORS", "REFUSED_OPERATORS", "translate"]
