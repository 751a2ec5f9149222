"""The Grafana dashboard (k8s/monitoring/) against what the runtimes really expose.

Both runtimes run as real processes: the sklearn runtime over the demo models, and the OpenAI facade in
front of the scripted fake Ollama. A little traffic of every kind the dashboard charts goes through them
(v1 predict, v2 infer, gRPC infer when grpcio is installed, chat completions streamed and not, an
embedding, 404s, an upstream failure). Then:

- every metric a PromQL query of the dashboard names is a sample name of a runtime's ``/metrics``
  (names are compared as exposed: ``_total``, ``_bucket``, ``_sum``, ``_count`` included), and of the
  runtime(s) the panel's row is about; label matchers and ``by`` labels exist on those samples;
- counters and histograms are read through ``rate``/``increase``, gauges never are;
- the JSON is a well-formed Grafana dashboard (ids, gridPos, targets, the ``${datasource}`` variable);
- the committed ConfigMap is the one ``k8s/monitoring/render_configmap.py`` renders, and stack-up applies it.

The PromQL is read by a small tokenizer here; when the ``promql-parser`` package is installed each query
is also parsed by it and both must find the same metric names.
"""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.openai.fake_ollama import FakeOllama
from tests.procs import ServerProcess, free_port, start_kcr

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "k8s" / "monitoring"
DASHBOARD_PATH = MONITORING / "kcr-dashboard.json"
CONFIGMAP_PATH = MONITORING / "kcr-dashboard-configmap.yaml"
DASHBOARD: dict[str, Any] = json.loads(DASHBOARD_PATH.read_text())

SKLEARN, FACADE = "sklearn", "facade"
#: Row title prefix → the runtimes whose /metrics every panel of that row must find its metrics in.
ROWS = {
    "Both runtimes": {SKLEARN, FACADE},
    "sklearn runtime": {SKLEARN},
    "LLM facade": {FACADE},
}
#: Labels Prometheus adds when it scrapes a pod (not in the exposition itself).
TARGET_LABELS = {"namespace", "pod"}
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
#: What the issue asks the dashboard to show, by the metric that shows it.
REQUIRED = {
    "kcr_requests_total",  # request rate, errors per model and protocol
    "kcr_requests_in_flight",
    "kcr_model_ready",
    "kcr_model_load_seconds",
    "request_predict_seconds_bucket",  # latency per model
    "kcr_batch_size_bucket",
    "kcr_openai_requests_total",
    "kcr_openai_time_to_first_token_seconds_bucket",
    "kcr_openai_tokens_per_second_bucket",
    "kcr_openai_completion_tokens_total",
    "kcr_openai_in_flight",
    "kcr_openai_queued",
    "kcr_openai_upstream_errors_total",
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
}
MODEL, EMBED = "smollm2:135m", "embed:1"
IRIS_ROW = [6.8, 2.8, 4.8, 1.4]

# --- a small PromQL reader -------------------------------------------------------------------------

AGGREGATORS = {
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk",
    "quantile", "limitk", "limit_ratio",
}  # fmt: skip
FUNCTIONS = {
    "abs", "absent", "absent_over_time", "avg_over_time", "ceil", "changes", "clamp", "clamp_max",
    "clamp_min", "count_over_time", "day_of_month", "day_of_week", "day_of_year", "days_in_month", "delta",
    "deriv", "exp", "floor", "histogram_avg", "histogram_count", "histogram_fraction", "histogram_quantile",
    "histogram_sum", "hour", "idelta", "increase", "irate", "label_join", "label_replace", "last_over_time",
    "ln", "log10", "log2", "max_over_time", "min_over_time", "minute", "month", "predict_linear",
    "present_over_time", "quantile_over_time", "rate", "resets", "round", "scalar", "sgn", "sort",
    "sort_desc", "sqrt", "stddev_over_time", "stdvar_over_time", "sum_over_time", "time", "timestamp",
    "vector", "year",
}  # fmt: skip
LABEL_LISTS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
KEYWORDS = {"and", "or", "unless", "bool", "offset", "atan2", "inf", "nan"}
RATES = {"rate", "irate", "increase"}
IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
NUMBER = re.compile(r"[0-9][0-9a-zA-Z.]*")  # numbers and durations (5m, 1e3, 0.99)
MATCHER = re.compile(r'\s*([a-zA-Z_]\w*)\s*(=~|!~|!=|=)\s*("(?:[^"\\]|\\.)*")\s*,?')


def _skip_string(text: str, i: int) -> int:
    quote, i = text[i], i + 1
    while text[i] != quote:
        i += 2 if text[i] == "\\" and quote != "`" else 1
    return i + 1


def _skip_block(text: str, i: int, close: str) -> int:
    i += 1
    while text[i] != close:
        i = _skip_string(text, i) if text[i] in "\"'`" else i + 1
    return i + 1


def tokens(expr: str) -> list[tuple[str, str]]:
    """(kind, text): ident, number, string, matchers (``{...}``), range (``[...]``) or an operator."""
    out: list[tuple[str, str]] = []
    i = 0
    while i < len(expr):
        c = expr[i]
        if c.isspace():
            i += 1
        elif c in "\"'`":
            j = _skip_string(expr, i)
            out.append(("string", expr[i:j]))
            i = j
        elif c in "{[":
            j = _skip_block(expr, i, "}" if c == "{" else "]")
            out.append(("matchers" if c == "{" else "range", expr[i:j]))
            i = j
        elif m := IDENT.match(expr, i):
            out.append(("ident", m.group()))
            i = m.end()
        elif m := NUMBER.match(expr, i):
            out.append(("number", m.group()))
            i = m.end()
        elif c in "()+-*/%^,=!<>":
            two = expr[i : i + 2]
            op = two if two in ("==", "!=", "<=", ">=") else c
            out.append(("op", op))
            i += len(op)
        else:
            raise ValueError(f"unexpected {c!r} at {i} in {expr!r}")
    return out


def selectors(expr: str) -> list[dict[str, Any]]:
    """Every vector selector: its metric name, the labels it matches on, and the range function (if
    any) it is the argument of; plus ``labels`` named in by/without/on/ignoring/group_* lists."""
    toks = tokens(expr)
    found: list[dict[str, Any]] = []
    listed: set[str] = set()
    depth = 0
    i = 0
    while i < len(toks):
        kind, text = toks[i]
        nxt = toks[i + 1] if i + 1 < len(toks) else ("", "")
        if kind == "op" and text in "()":
            depth += 1 if text == "(" else -1
            assert depth >= 0, f"unbalanced parentheses in {expr!r}"
        elif kind == "matchers" and (i == 0 or toks[i - 1][0] != "ident"):
            raise AssertionError(f"selector without a metric name in {expr!r}")
        elif kind == "ident" and text in LABEL_LISTS:
            if nxt == ("op", "("):
                j = i + 2
                while toks[j] != ("op", ")"):
                    if toks[j][0] == "ident":
                        listed.add(toks[j][1])
                    j += 1
                i = j
        elif kind == "ident" and text not in KEYWORDS:
            if nxt == ("op", "(") or (text in AGGREGATORS and nxt[1] in ("by", "without")):
                assert text in FUNCTIONS | AGGREGATORS, f"unknown PromQL function {text} in {expr!r}"
            else:
                labels: list[str] = []
                if nxt[0] == "matchers":
                    labels = _matcher_labels(nxt[1], expr)
                call = i >= 2 and toks[i - 1] == ("op", "(") and toks[i - 2][0] == "ident"
                wrapper = toks[i - 2][1] if call else None
                found.append({"name": text, "labels": labels, "wrapper": wrapper})
        i += 1
    assert depth == 0, f"unbalanced parentheses in {expr!r}"
    return [*found, {"name": None, "labels": sorted(listed), "wrapper": None}]


def _matcher_labels(block: str, expr: str) -> list[str]:
    inner, labels, i = block[1:-1], [], 0
    while i < len(inner):
        m = MATCHER.match(inner, i)
        assert m, f"cannot read label matchers {block!r} in {expr!r}"
        labels.append(m.group(1))
        i = m.end()
    assert "__name__" not in labels, f"use the metric name, not __name__, in {expr!r}"
    return labels


def metric_names(expr: str) -> set[str]:
    return {s["name"] for s in selectors(expr) if s["name"]}


def test_the_reader() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le, model_name) (rate(request_predict_seconds_bucket{a=~"x{2}",'
        ' b!="y"}[$__rate_interval]))) / on (pod) group_left sum without (code) (kcr_x) or vector(0)'
    )
    found = selectors(expr)
    assert metric_names(expr) == {"request_predict_seconds_bucket", "kcr_x"}
    assert found[0] == {"name": "request_predict_seconds_bucket", "labels": ["a", "b"], "wrapper": "rate"}
    assert found[1]["wrapper"] is None
    assert found[-1]["labels"] == ["code", "le", "model_name", "pod"]
    with pytest.raises(AssertionError, match="unknown PromQL function"):
        selectors("sums(rate(x[5m]))")


# --- the dashboard -----------------------------------------------------------------------------------


def rows() -> list[tuple[str, list[dict[str, Any]]]]:
    """Panels grouped under their row (the row's own ``panels`` when collapsed, else those below it)."""
    out: list[tuple[str, list[dict[str, Any]]]] = []
    for panel in DASHBOARD["panels"]:
        if panel["type"] == "row":
            out.append((panel["title"], list(panel.get("panels", []))))
        else:
            assert out, f"panel {panel['title']!r} is above the first row"
            out[-1][1].append(panel)
    return out


def row_runtimes(title: str) -> set[str]:
    matches = [r for prefix, r in ROWS.items() if title.startswith(prefix)]
    assert len(matches) == 1, f"row {title!r}: which runtime is it about? (start it with a prefix of ROWS)"
    return matches[0]


def panel_exprs() -> Iterator[tuple[str, dict[str, Any], str]]:
    for title, panels in rows():
        for panel in panels:
            for t in panel["targets"]:
                yield title, panel, t["expr"]


def variable_exprs() -> list[str]:
    """The selectors inside the template variables' ``label_values(selector, label)`` queries."""
    out = []
    for var in DASHBOARD["templating"]["list"]:
        if var["type"] == "query":
            query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
            m = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", query)
            assert m, f"variable {var['name']}: {query!r} is not label_values(selector, label)"
            out.append(m.group(1))
    return out


def test_dashboard_is_valid_grafana() -> None:
    d = DASHBOARD
    assert 36 <= d["schemaVersion"] <= 41
    assert re.fullmatch(r"[\w-]{1,40}", d["uid"]) and d["title"]
    assert d["time"]["from"] and d["refresh"]
    variables = {v["name"]: v for v in d["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert {"namespace", "pod", "model", "protocol"} <= set(variables)
    for v in variables.values():
        if v["type"] == "query":
            assert v["datasource"] == DATASOURCE, v["name"]
            assert v["includeAll"] and v["allValue"] == ".*", v["name"]  # All matches unlabelled series too

    ids: list[int] = []
    cells: set[tuple[int, int]] = set()
    all_panels = [p for _, panels in rows() for p in panels] + [p for p in d["panels"] if p["type"] == "row"]
    for p in all_panels:
        assert isinstance(p["id"], int) and p["id"] > 0, p["title"]
        ids.append(p["id"])
        pos = p["gridPos"]
        assert all(isinstance(pos[k], int) for k in ("h", "w", "x", "y")), p["title"]
        assert pos["h"] >= 1 and 1 <= pos["w"] <= 24 and pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, p
        xs, ys = range(pos["x"], pos["x"] + pos["w"]), range(pos["y"], pos["y"] + pos["h"])
        own = {(x, y) for x in xs for y in ys}
        assert not cells & own, f"panel {p['title']!r} overlaps another"
        cells |= own
        if p["type"] == "row":
            assert pos["w"] == 24 and pos["h"] == 1
            continue
        assert p["type"] in {"timeseries", "stat", "state-timeline", "bargauge", "heatmap", "table", "gauge"}
        assert p["datasource"] == DATASOURCE, p["title"]
        assert p.get("description"), f"panel {p['title']!r}: say what it shows and from which metric"
        assert p["targets"], p["title"]
        refs = [t["refId"] for t in p["targets"]]
        assert len(set(refs)) == len(refs), p["title"]
        for t in p["targets"]:
            assert t["datasource"] == DATASOURCE and t["expr"].strip(), p["title"]
    assert len(set(ids)) == len(ids), "panel ids must be unique"
    # No datasource anywhere but the variable (and Grafana's built-in annotations).
    uids = set(re.findall(r'"uid": "([^"]*)"', DASHBOARD_PATH.read_text()))
    assert uids == {"${datasource}", "-- Grafana --", d["uid"]}


def test_every_row_is_about_a_runtime() -> None:
    titles = [t for t, _ in rows()]
    assert {frozenset(row_runtimes(t)) for t in titles} == {frozenset(r) for r in ROWS.values()}


def test_dashboard_covers_the_issue() -> None:
    used = {n for _, _, e in panel_exprs() for n in metric_names(e)}
    assert used >= REQUIRED, f"not charted: {sorted(REQUIRED - used)}"


def test_queries_parse_with_promql_parser() -> None:
    promql_parser = pytest.importorskip("promql_parser", reason="pip install promql-parser")

    def names(node: Any) -> set[str]:
        if isinstance(node, promql_parser.VectorSelector):
            return {node.name}
        out: set[str] = set()
        for attr in ("expr", "lhs", "rhs", "vector_selector", "param"):
            child = getattr(node, attr, None)
            if child is not None and not isinstance(child, str | int | float):
                out |= names(child)
        for arg in getattr(node, "args", None) or ():
            out |= names(arg)
        return out

    exprs = [e for _, _, e in panel_exprs()] + variable_exprs()
    for expr in exprs:
        concrete = expr.replace("$__rate_interval", "5m").replace("$__range", "1h")
        assert names(promql_parser.parse(concrete)) == metric_names(expr), expr


# --- against the running runtimes --------------------------------------------------------------------


def _drive_sklearn(server: ServerProcess, grpc_port: int) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as c:
        assert c.post("/v1/models/iris:predict", json={"instances": [IRIS_ROW]}).status_code == 200
        v2 = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": IRIS_ROW}]}
        assert c.post("/v2/models/iris/infer", json=v2).status_code == 200
        assert c.post("/v1/models/nope:predict", json={"instances": [IRIS_ROW]}).status_code == 404
        assert c.post("/v2/models/iris/infer", content=b"{bad").status_code == 400
    if importlib.util.find_spec("grpc") is None:
        return
    import grpc

    from server.kserve import grpc_predict_v2_pb2 as pb
    from server.kserve import grpc_predict_v2_pb2_grpc as pb_grpc

    tensor = pb.ModelInferRequest.InferInputTensor(
        name="x", datatype="FP32", shape=[1, 4], contents=pb.InferTensorContents(fp32_contents=IRIS_ROW)
    )
    with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        reply = stub.ModelInfer(
            pb.ModelInferRequest(model_name="iris", inputs=[tensor]), timeout=10, wait_for_ready=True
        )
        assert reply.model_name == "iris"


def _drive_facade(server: ServerProcess, fake: FakeOllama) -> None:
    chat = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    with httpx.Client(base_url=server.url + "/v1", timeout=10) as c:
        assert c.post("/chat/completions", json=chat).status_code == 200
        with c.stream("POST", "/chat/completions", json={**chat, "stream": True}) as r:
            assert r.status_code == 200
            assert "[DONE]" in r.read().decode()
        assert c.post("/embeddings", json={"model": EMBED, "input": "hi"}).status_code == 200
        assert c.post("/chat/completions", json={**chat, "model": "nope"}).status_code == 404
        assert c.get("/nothing-here").status_code == 404
        fake.fail_status = 500
        try:
            assert c.post("/chat/completions", json=chat).status_code >= 500
        finally:
            fake.reset()


def _exposition(server: ServerProcess) -> dict[str, dict[str, Any]]:
    """Sample name → its family's type and every label name its samples carry."""
    text = httpx.get(server.url + "/metrics", timeout=10).text
    out: dict[str, dict[str, Any]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            entry = out.setdefault(sample.name, {"type": family.type, "labels": set()})
            entry["labels"] |= set(sample.labels)
    return out


@pytest.fixture(scope="module")
def exposed(model_root: Path) -> Iterator[dict[str, dict[str, dict[str, Any]]]]:
    fake = FakeOllama(models=(MODEL, EMBED)).start()
    grpc_port = free_port()
    started: list[ServerProcess] = []
    try:
        sklearn = start_kcr("serve", "sklearn", "--model-dir", str(model_root), "--grpc-port", str(grpc_port),
                            grpc=True)  # fmt: skip
        started.append(sklearn)
        facade = start_kcr("serve", "ollama", "--ollama-host", fake.url, "--model", MODEL,
                           "--embedding-model", EMBED, "--no-pull", "--enable-grpc", "false")  # fmt: skip
        started.append(facade)
        _drive_sklearn(sklearn, grpc_port)
        _drive_facade(facade, fake)
        yield {SKLEARN: _exposition(sklearn), FACADE: _exposition(facade)}
    finally:
        for server in started:
            server.stop()
        fake.stop()


def _check(expr: str, runtimes: set[str], exposed: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    problems = []
    found = selectors(expr)
    known_labels = set(TARGET_LABELS)
    for s in found[:-1]:
        name = s["name"]
        missing = [r for r in sorted(runtimes) if name not in exposed[r]]
        if missing:
            where = sorted(r for r in exposed if name in exposed[r])
            problems.append(f"{name} not in the /metrics of {missing} (exposed by {where or 'none'})")
            continue
        entries = [exposed[r][name] for r in runtimes]
        labels = set().union(*(e["labels"] for e in entries)) | TARGET_LABELS
        known_labels |= labels
        if unknown := set(s["labels"]) - labels:
            problems.append(f"{name} has no label {sorted(unknown)}")
        kind = entries[0]["type"]
        if kind in ("counter", "histogram", "summary") and s["wrapper"] not in RATES:
            problems.append(f"{name} is a {kind}: read it through rate() or increase()")
        if kind == "gauge" and s["wrapper"] in RATES:
            problems.append(f"{name} is a gauge: rate()/increase() of it means nothing")
    if unknown := set(found[-1]["labels"]) - known_labels:
        problems.append(f"by/on labels {sorted(unknown)} are on none of the query's metrics")
    return problems


def test_every_metric_exists_in_its_runtime(exposed: dict[str, dict[str, dict[str, Any]]]) -> None:
    problems = []
    for title, panel, expr in panel_exprs():
        for p in _check(expr, row_runtimes(title), exposed):
            problems.append(f"{title} / {panel['title']}: {p}\n    {' '.join(expr.split())}")
    assert not problems, "\n".join(problems)


def test_every_metric_exists_somewhere(exposed: dict[str, dict[str, dict[str, Any]]]) -> None:
    everywhere = set().union(*exposed.values())
    used = {n for _, _, e in panel_exprs() for n in metric_names(e)}
    assert used <= everywhere, sorted(used - everywhere)


def test_variables_query_both_runtimes(exposed: dict[str, dict[str, dict[str, Any]]]) -> None:
    for expr in variable_exprs():
        for name in metric_names(expr):
            assert all(name in exposed[r] for r in exposed), name
    labels = {
        v["definition"].rsplit(",", 1)[1].strip(" )")
        for v in DASHBOARD["templating"]["list"]
        if v["type"] == "query"
    }
    assert labels - TARGET_LABELS <= exposed[SKLEARN]["kcr_requests_total"]["labels"]
    assert labels - TARGET_LABELS <= exposed[FACADE]["kcr_requests_total"]["labels"]


# --- the ConfigMap -----------------------------------------------------------------------------------


def _render_module() -> Any:
    spec = importlib.util.spec_from_file_location("render_configmap", MONITORING / "render_configmap.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_configmap_is_the_rendered_one() -> None:
    render = _render_module()
    committed = CONFIGMAP_PATH.read_text()
    assert committed == render.render(DASHBOARD_PATH.read_text()), "run k8s/monitoring/render_configmap.py"
    assert render.main(["--check"]) == 0
    doc = yaml.safe_load(committed)
    assert (doc["apiVersion"], doc["kind"]) == ("v1", "ConfigMap")
    assert doc["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert doc["metadata"]["namespace"] == "monitoring"
    assert doc["data"]["kcr-dashboard.json"] == DASHBOARD_PATH.read_text()
    # Client-side `kubectl apply` copies the object into an annotation: all annotations <= 256 KiB.
    assert len(committed.encode()) < 200_000


def test_configmap_can_be_rendered_for_another_namespace() -> None:
    text = _render_module().render(DASHBOARD_PATH.read_text(), "observability")
    assert yaml.safe_load(text)["metadata"]["namespace"] == "observability"


def test_stack_up_applies_the_dashboard() -> None:
    stack = (ROOT / "k8s" / "scripts" / "stack-up.sh").read_text()
    assert 'kubectl apply -f "$ROOT/k8s/monitoring/kcr-dashboard-configmap.yaml"' in stack
