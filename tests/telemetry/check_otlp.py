"""Parses OTLP/HTTP JSON bodies with the official opentelemetry-proto messages and prints what
they hold as JSON, so the C++ test can compare it with what it recorded.

  check_otlp.py metrics BODY_FILE
  check_otlp.py traces BODY_FILE

json_format.Parse rejects unknown fields and wrong types, which proves the shape. Two OTLP/JSON
rules differ from the plain protobuf JSON mapping and are checked here by hand: 64-bit integers
are strings, and traceId/spanId are lowercase hex (not base64), so the ids are converted to
base64 before parsing.
"""
import base64
import json
import re
import sys

from google.protobuf import json_format
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

INT64_KEYS = {"startTimeUnixNano", "timeUnixNano", "endTimeUnixNano", "asInt", "count", "intValue"}


def check_int64_strings(node, path, problems):
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{path}.{key}"
            if key in INT64_KEYS and not (isinstance(value, str) and re.fullmatch(r"-?\d+", value)):
                problems.append(f"{here} is {value!r}, not a decimal string")
            if key == "bucketCounts" and not all(isinstance(v, str) and v.isdigit() for v in value):
                problems.append(f"{here} holds non-string counts")
            check_int64_strings(value, here, problems)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            check_int64_strings(value, f"{path}[{i}]", problems)


def any_value(v):
    kind = v.WhichOneof("value")
    return getattr(v, kind) if kind else None


def attrs(kvs):
    return {kv.key: any_value(kv.value) for kv in kvs}


def metrics(raw, problems):
    msg = json_format.Parse(raw, ExportMetricsServiceRequest())
    out = {"resource": {}, "scopes": [], "metrics": {}}
    for rm in msg.resource_metrics:
        out["resource"] = attrs(rm.resource.attributes)
        for sm in rm.scope_metrics:
            out["scopes"].append(sm.scope.name)
            for m in sm.metrics:
                kind = m.WhichOneof("data")
                entry = {"kind": kind, "unit": m.unit}
                if kind in ("sum", "gauge"):
                    data = getattr(m, kind)
                    entry["points"] = [{"attributes": attrs(p.attributes), "value": p.as_int}
                                       for p in data.data_points]
                    if kind == "sum":
                        entry["monotonic"] = data.is_monotonic
                        entry["temporality"] = data.aggregation_temporality
                    for p in data.data_points:
                        if kind == "sum" and p.start_time_unix_nano > p.time_unix_nano:
                            problems.append(f"{m.name}: start after time")
                elif kind == "histogram":
                    p = m.histogram.data_points[0]
                    entry.update(count=p.count, sum=p.sum, bucket_counts=list(p.bucket_counts),
                                 bounds=list(p.explicit_bounds), min=p.min, max=p.max,
                                 temporality=m.histogram.aggregation_temporality)
                    if len(p.bucket_counts) != len(p.explicit_bounds) + 1:
                        problems.append(f"{m.name}: bucket count mismatch")
                    if sum(p.bucket_counts) != p.count:
                        problems.append(f"{m.name}: buckets do not add up to count")
                out["metrics"][m.name] = entry
    return out


def traces(raw, problems):
    doc = json.loads(raw)
    for rs in doc.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for span in ss.get("spans", []):
                for key, size in (("traceId", 16), ("spanId", 8)):
                    value = span.get(key, "")
                    if not re.fullmatch(r"[0-9a-f]{%d}" % (2 * size), value):
                        problems.append(f"{key} {value!r} is not {2 * size} lowercase hex digits")
                    else:
                        span[key] = base64.b64encode(bytes.fromhex(value)).decode()
    msg = json_format.ParseDict(doc, ExportTraceServiceRequest())
    out = {"resource": {}, "spans": []}
    for rs in msg.resource_spans:
        out["resource"] = attrs(rs.resource.attributes)
        for ss in rs.scope_spans:
            for s in ss.spans:
                if s.start_time_unix_nano > s.end_time_unix_nano:
                    problems.append(f"span {s.name} ends before it starts")
                out["spans"].append({
                    "name": s.name, "kind": s.kind, "trace_id_len": len(s.trace_id),
                    "span_id_len": len(s.span_id), "attributes": attrs(s.attributes),
                    "status_code": s.status.code, "status_message": s.status.message,
                    "duration_ns": s.end_time_unix_nano - s.start_time_unix_nano,
                })
    return out


def main():
    kind, path = sys.argv[1], sys.argv[2]
    with open(path) as f:
        raw = f.read()
    problems = []
    check_int64_strings(json.loads(raw), "$", problems)
    result = {"metrics": metrics, "traces": traces}[kind](raw, problems)
    result["problems"] = problems
    print(json.dumps(result))


if __name__ == "__main__":
    main()
