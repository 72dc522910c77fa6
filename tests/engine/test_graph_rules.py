"""Graph rules (eKuiper's ``"graph": {"nodes", "topo"}`` body): the SQL and actions a graph
becomes, graph rules running in a real RuleManager, and the exact message of every refusal."""

from __future__ import annotations

from typing import Any

import pytest

from engine_helpers import T0, Harness, RuleHandle
from plutino.engine.errors import RuleError, SqlError
from plutino.engine.rules import RuleDef

SOURCE = {"type": "source", "nodeType": "memory", "props": {"sourceType": "stream", "sourceName": "demo"}}
LOG = {"type": "sink", "nodeType": "log", "props": {}}


def op(node_type: str, **props: Any) -> dict[str, Any]:
    return {"type": "operator", "nodeType": node_type, "props": props}


def graph(nodes: dict[str, Any], edges: dict[str, Any], sources: Any = ("demo",), **extra: Any) -> dict[str, Any]:
    """A rule body: ``nodes`` after the source node ``demo`` (unless they name their own)."""
    return {"id": "g1", "name": "Test Condition",
            "graph": {"nodes": {"demo": SOURCE, **nodes}, "topo": {"sources": list(sources), "edges": edges}},
            **extra}


def chain(*operators: dict[str, Any]) -> dict[str, Any]:
    """demo -> o1 -> o2 ... -> out (a log sink)."""
    names = [f"o{i + 1}" for i in range(len(operators))]
    path = ["demo", *names, "out"]
    return graph({**dict(zip(names, operators)), "out": LOG}, {a: [b] for a, b in zip(path, path[1:])})


def sql_of(body: dict[str, Any]) -> str:
    return RuleDef.from_dict(body).sql


# -- translation -------------------------------------------------------------------------------

def test_ekuipers_example_graph_becomes_a_where_and_keeps_its_body():
    body = graph({"humidityFilter": op("filter", expr="humidity > 30"),
                  "mqttout": {"type": "sink", "nodeType": "mqtt", "props": {"server": "tcp://b:1883", "topic": "out"}}},
                 {"demo": ["humidityFilter"], "humidityFilter": ["mqttout"]})
    rule = RuleDef.from_dict(body)
    assert rule.sql == "SELECT *\nFROM demo\nWHERE humidity > 30"
    assert [(a.sink, dict(a.props)) for a in rule.actions] == [("mqtt", {"server": "tcp://b:1883", "topic": "out"})]
    assert rule.to_dict() == body  # GET /rules/{id} and the store keep the graph
    assert RuleDef.from_dict(rule.to_dict()).sql == rule.sql


def test_computed_fields_are_put_in_where_later_nodes_name_them_and_sinks_fan_out():
    body = graph({"fn": op("function", expr="log(temperature) as log_temperature"),
                  "f": op("filter", expr="log_temperature > 1"),
                  "p": op("pick", fields=["log_temperature", "humidity", "log_temperature * 2 AS t2"]),
                  "out": LOG, "mem": {"type": "sink", "nodeType": "memory", "props": {"topic": "x", "retryCount": 2}}},
                 {"demo": ["fn"], "fn": ["f"], "f": ["p"], "p": ["mem", "out"]})
    rule = RuleDef.from_dict(body)
    assert rule.sql == ("SELECT (log(temperature)) AS log_temperature, humidity, (log(temperature)) * 2 AS t2\n"
                        "FROM demo\nWHERE (log(temperature)) > 1")
    assert [(a.sink, dict(a.props), a.retry_count) for a in rule.actions] == [("memory", {"topic": "x"}, 2),
                                                                            ("log", {}, 0)]


def test_window_groupby_aggfunc_filter_orderby_pick_make_one_grouped_query():
    assert sql_of(chain(op("window", type="hoppingwindow", unit="ss", size=10, interval=5),
                        op("groupby", dimensions=["deviceId"]),
                        op("aggfunc", expr="count(*)"),
                        op("filter", expr="count > 2"),
                        op("orderby", sorts=[{"field": "count", "order": "desc"}]),
                        op("pick", fields=["deviceId", "count", "window_end()"]))) == (
        "SELECT deviceId, (count(*)) AS count, window_end()\nFROM demo\n"
        "GROUP BY HOPPINGWINDOW(ss, 10, 5), deviceId\nHAVING (count(*)) > 2\nORDER BY (count(*)) DESC")


@pytest.mark.parametrize("props, group_by", [
    ({"type": "tumblingwindow", "unit": "ss", "size": 10}, "TUMBLINGWINDOW(ss, 10)"),
    ({"type": "TumblingWindow", "unit": "MI", "size": 2, "interval": 2}, "TUMBLINGWINDOW(mi, 2)"),
    ({"type": "slidingwindow", "unit": "ms", "size": 500}, "SLIDINGWINDOW(ms, 500)"),
    ({"type": "sessionwindow", "unit": "hh", "size": 2, "interval": 1}, "SESSIONWINDOW(hh, 2, 1)"),
    ({"type": "countwindow", "size": 5}, "COUNTWINDOW(5)"),
    ({"type": "countwindow", "size": 5, "interval": 1}, "COUNTWINDOW(5, 1)"),
])
def test_each_window_type_becomes_its_window_function(props, group_by):
    assert sql_of(chain(op("window", **props), op("aggfunc", expr="sum(v) AS total"))) == (
        f"SELECT *, sum(v) AS total\nFROM demo\nGROUP BY {group_by}")


def test_filters_after_a_window_but_before_grouping_are_where_conditions_anded():
    assert sql_of(chain(op("filter", expr="a > 1 OR b"), op("window", type="countwindow", size=3),
                        op("filter", expr="c = 'x'"), op("orderby", sorts=[{"field": "a"}]),
                        op("orderby", sorts=[{"field": "b", "desc": True}]))) == (
        "SELECT *\nFROM demo\nWHERE (a > 1 OR b) AND (c = 'x')\nGROUP BY COUNTWINDOW(3)\nORDER BY b DESC, a")


def test_expressions_are_kept_token_for_token_without_comments():
    assert sql_of(chain(op("filter", expr="a > 1 -- big ones"),
                        op("function", expr="a->b AS x /* the b */"),
                        op("pick", fields=["x", "`my col`", 'cast(x, "bigint") AS y', "s.x", "meta(topic)"]))) == (
        'SELECT (a->b) AS x, `my col`, cast((a->b), "bigint") AS y, s.x, meta(topic)\nFROM demo\nWHERE a > 1')


def test_a_stream_name_that_is_not_a_plain_name_is_quoted():
    body = chain()
    body["graph"]["nodes"]["demo"] = {**SOURCE, "props": {"sourceName": "my-stream"}}
    assert sql_of(body) == "SELECT *\nFROM `my-stream`"


# -- running -----------------------------------------------------------------------------------

def start(h: Harness, body: dict[str, Any]) -> RuleHandle:
    output = h.broker.subscribe("out_g1")
    nodes = body["graph"]["nodes"]
    nodes["out"] = {"type": "sink", "nodeType": "memory", "props": {"topic": "out_g1"}}
    h.manager.create_rule(body)
    return RuleHandle(h, "g1", "in_demo", output)


def test_a_linear_graph_rule_runs_and_describes_itself_as_its_graph(h: Harness):
    h.stream("demo", "temperature FLOAT, humidity BIGINT")
    body = chain(op("function", expr="round(temperature * 10) AS t10"), op("filter", expr="humidity > 30"),
                 op("pick", fields=["t10", "humidity"]))
    r = start(h, body)
    r.feed([{"temperature": 1.54, "humidity": 31}, {"temperature": 9.0, "humidity": 30},
            {"temperature": 2.0, "humidity": 80}])
    assert r.rows() == [{"t10": 15.0, "humidity": 31}, {"t10": 20.0, "humidity": 80}]
    assert h.manager.describe_rule("g1") == body


def test_a_windowed_graph_rule_groups_filters_groups_and_sorts(h: Harness):
    h.stream("demo", "k STRING, v BIGINT")
    r = start(h, chain(op("window", type="tumblingwindow", unit="ss", size=10), op("groupby", dimensions=["k"]),
                       op("aggfunc", expr="count(*) AS n"), op("aggfunc", expr="sum(v) AS total"),
                       op("filter", expr="n > 1"), op("orderby", sorts=[{"field": "total", "order": "desc"}]),
                       op("pick", fields=["k", "n", "total"])))
    h.clock.set(T0)
    r.feed([{"k": "a", "v": 1}, {"k": "b", "v": 5}, {"k": "a", "v": 2}, {"k": "b", "v": 6}, {"k": "c", "v": 9}])
    r.tick(T0 + 10_000)
    assert r.take() == [[{"k": "b", "n": 2, "total": 11}, {"k": "a", "n": 2, "total": 3}]]


def test_a_graph_naming_an_unknown_stream_gets_the_planners_message(h: Harness):
    h.stream("demo", "v BIGINT")
    body = chain()
    body["graph"]["nodes"]["demo"] = {**SOURCE, "props": {"sourceType": "stream", "sourceName": "demp"}}
    with pytest.raises(SqlError, match=r"^unknown stream 'demp' at line 2, col 6; did you mean 'demo'\?"):
        h.manager.create_rule(body)


# -- refusals ----------------------------------------------------------------------------------

def refused(body: dict[str, Any]) -> str:
    with pytest.raises(RuleError) as info:
        RuleDef.from_dict(body)
    return str(info.value)


def with_nodes(**nodes: Any) -> dict[str, Any]:
    body = chain()
    body["graph"]["nodes"].update(nodes)
    return body


def with_topo(**topo: Any) -> dict[str, Any]:
    body = chain()
    body["graph"]["topo"].update(topo)
    return body


G = "graph rule 'g1': "
INLINE = {"type": "source", "nodeType": "mqtt", "props": {"datasource": "devices/+/messages", "format": "json",
                                                          "confKey": "syno", "shared": True}}


@pytest.mark.parametrize("body, message", [
    ({**chain(), "sql": "SELECT * FROM demo"},
     "rule 'g1' has both sql and graph; give one of them (a graph is run as the SQL it amounts to)"),
    ({**chain(), "actions": [{"log": {}}]},
     G + "the body also has actions; the graph's sink nodes are its actions: drop actions, "
         "or add the sinks to the graph"),
    ({"id": "g1", "graph": ["demo"]},
     G + 'graph must be an object with "nodes" (an object of nodes by name) and "topo"'),
    ({"id": "g1", "graph": {"nodes": {"demo": SOURCE}}},
     G + 'graph has no "topo"; give {"sources": ["<source node>"], "edges": {"<node>": ["<next node>", ...]}}'),
    (with_topo(sources=[]), G + 'topo.sources must list the source node, e.g. "sources": ["demo"]'),
    (with_nodes(two=SOURCE), G + "node 'two' is a source, but topo.sources does not list it; a graph rule "
                                      "reads one stream: remove the node or make a rule for it"),
    (with_topo(sources=["demo", "two"]), G + "topo.sources lists 2 sources (demo, two); a graph rule reads one "
                                             "stream: make a rule for each source, or a SQL rule that joins them"),
    (with_topo(sources=["out"]), G + "topo.sources names 'out', which is not a source node; source nodes: demo"),
    (with_nodes(out=[1]), G + "node 'out' must be an object with type, nodeType and props, got [1]"),
    (with_nodes(out={**LOG, "type": "snk"}), G + "node 'out' has type 'snk'; did you mean 'sink'? a node's type is "
                                                 "source, operator or sink"),
    (with_nodes(out={"nodeType": "log"}), G + "node 'out' has no type; a node's type is source, operator or sink"),
    (with_nodes(out={"type": "sink"}), G + "node 'out' has no nodeType; give the plugin, e.g. mqtt"),
    (with_nodes(x={"type": "operator"}),
     G + "node 'x' has no nodeType; give the operator (filter, function, pick, ...)"),
    (with_nodes(out={**LOG, "props": "level=info"}),
     G + "the props of node 'out' must be an object, got 'level=info'"),
    (with_nodes(x=op("switch", cases=["a > 1"])),
     G + "node 'x' is a switch node, which Plutino does not run: it routes rows to several branches; "
         "make a rule per case, each with a filter node for its condition"),
    (with_nodes(x=op("join", joins=[])), G + "node 'x' is a join node, which Plutino does not run: a graph rule "
                                             "reads one stream; write a join as a SQL rule: SELECT ... FROM s JOIN t "
                                             "ON ..."),
    (with_nodes(x=op("Script", script="")), G + "node 'x' is a script node, which Plutino does not run: JavaScript "
                                                "is not run; use a function node with a built-in or plugin function"),
    (with_nodes(x=op("watermark")), G + "node 'x' is a watermark node, which Plutino does not run: set the rule "
                                        "option isEventTime and the stream's TIMESTAMP instead"),
    (with_nodes(x=op("filtre")), G + "node 'x' has the unknown operator nodeType 'filtre'; did you mean 'filter'? "
                                     "operators: filter, function, pick, window, aggfunc, groupby, orderby"),
    (with_topo(edges=["demo", "out"]),
     G + 'topo.edges must be an object of the next nodes by node, e.g. {"demo": ["out"]}'),
    (with_topo(edges={"demo": ["out"], "nobody": ["out"]}),
     G + "topo.edges has edges from 'nobody', which is not a node; nodes: demo, out"),
    (with_topo(edges={"demo": ["out"], "out": ["demo"]}),
     G + "sink 'out' has edges; a sink ends the graph: remove topo.edges.out"),
    (with_topo(edges={"demo": "out"}), G + "topo.edges.demo must be a list of node names, got 'out'"),
    (with_topo(edges={"demo": [["out"]]}), G + "topo.edges.demo holds ['out']; give node names (only eKuiper's "
                                                "switch node has lists of branches, and it is not supported)"),
    (with_topo(edges={"demo": ["outt"]}),
     G + "topo.edges.demo names 'outt', which is not a node; did you mean 'out'? nodes: demo, out"),
    (with_topo(edges={"demo": ["out", "out"]}), G + "topo.edges.demo lists 'out' twice; list it once"),
    (with_topo(edges={}), G + "node 'demo' leads nowhere; give it the next node or a sink in topo.edges.demo"),
    (graph({"f": op("filter", expr="a > 1"), "out": LOG}, {"demo": ["f"]}),
     G + "node 'f' leads nowhere; give it the next node or a sink in topo.edges.f"),
    (graph({"f": op("filter", expr="a > 1"), "out": LOG}, {"demo": ["f", "out"], "f": ["out"]}),
     G + "node 'demo' sends its rows to f, out; a Plutino graph rule is one chain of operators with its sinks after "
         "the last one: make a rule for each branch"),
    (graph({"f": op("filter", expr="a > 1")}, {"demo": ["f"], "f": ["demo"]}),
     G + "node 'f' sends its rows to the source 'demo'; a source has no inputs"),
    (graph({"f": op("filter", expr="a > 1"), "g": op("filter", expr="b > 1")}, {"demo": ["f"], "f": ["g"], "g": ["f"]}),
     G + "the graph has a cycle: f -> g -> f; rows flow one way, from the source to the sinks"),
    (with_nodes(stray=LOG), G + "node 'stray' is not on the way from the source 'demo' to the sinks; connect it in "
                                "topo.edges or remove it"),
    (with_nodes(demo={**SOURCE, "props": {"sourceType": "table", "sourceName": "t"}}),
     G + "source 'demo' has sourceType 'table'; a graph rule reads a stream: give \"sourceType\": \"stream\" "
         "(a table is joined in a SQL rule: SELECT ... FROM s JOIN t ON ...)"),
    (with_nodes(demo={**SOURCE, "props": {"sourceName": 7}}),
     G + "source 'demo' has sourceName 7; give the name of a stream"),
    (with_nodes(demo=INLINE),
     G + "source 'demo' describes its source inline; Plutino reads a graph rule's source from a stream: create it "
         '(CREATE STREAM demo () WITH (TYPE="mqtt", DATASOURCE="devices/+/messages", FORMAT="json", '
         'CONF_KEY="syno", SHARED=true)) and give the node "props": {"sourceType": "stream", "sourceName": "demo"}'),
])
def test_a_malformed_or_unsupported_graph_is_refused_naming_the_node_and_the_fix(body, message):
    assert refused(body) == message


W = op("window", type="tumblingwindow", unit="ss", size=10)


@pytest.mark.parametrize("operators, message", [
    ([op("aggfunc", expr="count(*)")], "node 'o1' (aggfunc) needs a window before it: add a window node between the "
                                       "source and it"),
    ([op("groupby", dimensions=["k"])], "node 'o1' (groupby) needs a window before it: add a window node between "
                                        "the source and it"),
    ([op("orderby", sorts=[{"field": "k"}])], "node 'o1' (orderby) needs a window before it: add a window node "
                                              "between the source and it"),
    ([op("filter")], "node 'o1' (filter) needs \"expr\": a condition such as temperature > 20"),
    ([op("function", expr="")], "node 'o1' (function) needs \"expr\": a call such as log(temperature) AS "
                                "log_temperature"),
    ([op("filter", expr="a >")], "node 'o1' (filter) cannot read expr 'a >': cannot parse the SQL: '>' is "
                                 "incomplete"),
    ([op("filter", expr="a > 1 GROUP BY b")], "node 'o1' (filter) has expr 'a > 1 GROUP BY b'; give one condition"),
    ([op("function", expr="a + 1")], "node 'o1' (function) computes 'a + 1' without a name; name it: a + 1 AS <name>"),
    ([op("function", expr="f(a), g(b)")], "node 'o1' (function) has expr 'f(a), g(b)'; give one expression"),
    ([op("pick", fields=[])], "node 'o1' (pick) needs the fields to send, e.g. \"fields\": [\"temperature\", "
                              "\"humidity\"]"),
    ([W, W], "node 'o2' (window) comes after the window 'o1'; a rule has one window"),
    ([op("window", type="tumbling", unit="ss", size=10)],
     "node 'o1' (window) has type 'tumbling'; did you mean 'tumblingwindow'? window types: tumblingwindow, "
     "hoppingwindow, slidingwindow, sessionwindow, countwindow"),
    ([op("window", type="countwindow", size="5")], "node 'o1' (window) has size '5'; give a whole number > 0"),
    ([op("window", type="countwindow", size=5, interval=-1)],
     "node 'o1' (window) has interval -1; give a whole number >= 0"),
    ([op("window", type="tumblingwindow", unit="s", size=5)], "node 'o1' (window) has unit 's'; give one of dd, hh, "
                                                              "mi, ss, ms"),
    ([op("window", type="slidingwindow", unit="ss", size=5, interval=2)],
     "node 'o1' (window) has interval 2 and size 5; a slidingwindow has no interval of its own: drop it (or use a "
     "hoppingwindow)"),
    ([op("window", type="hoppingwindow", unit="ss", size=5)],
     "node 'o1' (window) has no interval; give the hop as interval, a whole number > 0"),
    ([op("window", type="sessionwindow", unit="ss", size=5)],
     "node 'o1' (window) has no interval; give the timeout as interval, a whole number > 0"),
    ([op("window", type="countwindow", size=5, interval=6)],
     "node 'o1' (window) has interval 6 larger than its size 5; use interval <= size"),
    ([W, op("aggfunc", expr="count(*)"), op("groupby", dimensions=["k"])],
     "node 'o3' (groupby) comes after the grouping by 'o2'; a rule groups once: put every dimension in one groupby "
     "node before the aggfunc nodes"),
    ([W, op("groupby", dimensions=["k AS key"])], "node 'o2' (groupby) has dimension 'k AS key'; give one expression "
                                                  "without AS"),
    ([W, op("orderby", sorts={"field": "k"})], "node 'o2' (orderby) needs sorts, a list of sort conditions, e.g. "
                                               "\"sorts\": [{\"field\": \"count\", \"order\": \"desc\"}]"),
    ([W, op("orderby", sorts=[{"order": "desc"}])], "node 'o2' (orderby) has a sort without a field, {'order': "
                                                    "'desc'}; e.g. \"sorts\": [{\"field\": \"count\", \"order\": "
                                                    "\"desc\"}]"),
    ([W, op("orderby", sorts=[{"field": "k", "order": "down"}])],
     "node 'o2' (orderby) has the sort {'field': 'k', 'order': 'down'}; give \"order\": \"asc\" or \"desc\""),
])
def test_an_operator_that_cannot_become_sql_is_refused_naming_the_node(operators, message):
    assert refused(chain(*operators)) == G + message


def test_a_graph_too_large_or_whose_fields_grow_the_sql_past_its_limit_is_refused():
    assert refused(chain(*[op("filter", expr="a > 1")] * 1000)) == (
        G + "graph has 1002 nodes, over the limit of 1000; split it into several rules")
    doubling = [op("function", expr="a + a AS f")] + [op("function", expr="f + f AS f")] * 20
    assert refused(chain(*doubling)) == (
        G + "node 'o14' (function) makes the rule's SQL longer than 100000 characters once the fields it names are "
            "put in; compute fewer fields from each other")
