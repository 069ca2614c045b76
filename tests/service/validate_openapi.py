#!/usr/bin/python3
"""Validates recorded responses of a running `deepscan serve` against docs/openapi.yaml.

  validate_openapi.py OPENAPI_YAML SAMPLES_JSONL

Each line of SAMPLES_JSONL is {"method", "path" (the OpenAPI path template, or "*" for answers
no operation describes: unknown routes, wrong methods, malformed HTTP), "status",
"content_type", "body"}. For a documented operation the status must be listed, the content type
must be one it lists, and a JSON body must validate against the listed schema; "*" bodies must
be an Error. Every operation of the document must have at least one sample, so the document
cannot describe a route the server does not answer. Exit 0 when all hold, 1 otherwise.
Uses python3-jsonschema and python3-yaml (Debian packages).
"""
import json
import pathlib
import sys

import jsonschema
import yaml


def media_type(ct):
    return ct.split(";")[0].strip().lower()


def pick_content(content, ct):
    mt = media_type(ct)
    for key, value in content.items():
        if key == mt or (key.endswith("/*") and mt.startswith(key[:-1])):
            return key, value
    return None, None


def main():
    spec_path = pathlib.Path(sys.argv[1]).resolve()
    spec = yaml.safe_load(spec_path.read_text())
    base_uri = spec_path.as_uri()
    report_schema_path = spec_path.parent / "scan-result.schema.json"
    store = {report_schema_path.as_uri(): json.loads(report_schema_path.read_text())}
    resolver = jsonschema.RefResolver(base_uri=base_uri, referrer=spec, store=store)

    def validate(schema, instance):
        validator = jsonschema.Draft202012Validator(schema, resolver=resolver)
        return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
                for e in validator.iter_errors(instance)]

    def resolve(node):
        while isinstance(node, dict) and "$ref" in node and len(node) == 1:
            _, node = resolver.resolve(node["$ref"])
        return node

    samples = [json.loads(line) for line in pathlib.Path(sys.argv[2]).read_text().splitlines() if line.strip()]
    failures = []
    seen = set()
    for i, s in enumerate(samples):
        where = f"sample {i}: {s['method']} {s['path']} -> {s['status']}"
        if s["path"] == "*":
            schema = {"$ref": "#/components/schemas/Error"}
            try:
                body = json.loads(s["body"])
            except ValueError as e:
                failures.append(f"{where}: body is not JSON ({e})")
                continue
            failures += [f"{where}: {m}" for m in validate(schema, body)]
            continue
        op = spec["paths"].get(s["path"], {}).get(s["method"].lower())
        if op is None:
            failures.append(f"{where}: no such operation in the OpenAPI document")
            continue
        seen.add((s["path"], s["method"].lower()))
        responses = op["responses"]
        response = responses.get(str(s["status"])) or responses.get("default")
        if response is None:
            failures.append(f"{where}: status not documented (documented: {sorted(responses)})")
            continue
        response = resolve(response)
        content = response.get("content", {})
        key, entry = pick_content(content, s["content_type"])
        if entry is None:
            failures.append(f"{where}: content type {s['content_type']!r} not documented ({sorted(content)})")
            continue
        if key == "application/json":
            try:
                body = json.loads(s["body"])
            except ValueError as e:
                failures.append(f"{where}: body is not JSON ({e})")
                continue
            failures += [f"{where}: {m}" for m in validate(entry["schema"], body)]
    for path, item in spec["paths"].items():
        for method in item:
            if method in ("get", "post", "put", "delete", "patch") and (path, method) not in seen:
                failures.append(f"{method.upper()} {path}: documented but never answered in the samples")
    for f in failures:
        print("FAIL", f)
    print(f"{len(samples)} samples, {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
