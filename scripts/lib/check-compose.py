"""Validate a compose file offline, without a Docker engine (scripts/check-deploy).

    python check-compose.py deploy/docker-compose.yml

What `docker compose config -q` checks, done here:
  - YAML with anchors and `<<` merge keys resolved;
  - interpolation: every `$` is `$$`, `$NAME` or `${NAME[:-|-|:?|?|:+|+]...}`; values
    are substituted (variables the file requires with `:?` get a placeholder, since they
    are set at deploy time), so the schema sees what Compose would;
  - the Compose Specification JSON schema (bundled with check-jsonschema, no network);
  - references: depends_on services, named volumes, networks, secrets and configs exist.
Exit status 1 with one line per problem.
"""

import json
import os
import re
import sys
from pathlib import Path

import jsonschema
import yaml
from check_jsonschema.builtin_schemas import get_builtin_schema

NAME = r"[A-Za-z_][A-Za-z0-9_]*"
BRACED = re.compile(r"\$\{(" + NAME + r")(?:(:?[-?+])((?:[^{}]|\{[^{}]*\})*))?\}")
PLAIN = re.compile(r"\$(" + NAME + r")")

problems = []


def interpolate(text, where):
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if c != "$":
            out.append(c)
            i += 1
            continue
        if text.startswith("$$", i):
            out.append("$")
            i += 2
            continue
        m = BRACED.match(text, i) or PLAIN.match(text, i)
        if not m:
            problems.append(f"{where}: invalid interpolation at {text[i:i + 20]!r}")
            return text
        name = m.group(1)
        op = m.group(2) if m.re is BRACED else None
        arg = m.group(3) if op else None
        value = os.environ.get(name)
        if op in (":-", "-"):
            unset = value is None or (op == ":-" and value == "")
            value = interpolate(arg or "", where) if unset else value
        elif op in (":?", "?"):
            # Required at deploy time: stand in a value so the rest can be checked.
            value = value or f"<{name}>"
        elif op in (":+", "+"):
            value = interpolate(arg or "", where) if value else ""
        out.append(value or "")
        i = m.end()
    return "".join(out)


def walk(node, where):
    if isinstance(node, str):
        return interpolate(node, where)
    if isinstance(node, list):
        return [walk(v, f"{where}[{i}]") for i, v in enumerate(node)]
    if isinstance(node, dict):
        return {k: walk(v, f"{where}.{k}") for k, v in node.items()}
    return node


def names(top, key):
    return set((top.get(key) or {}).keys())


def check_references(doc):
    services = doc.get("services") or {}
    volumes, networks = names(doc, "volumes"), names(doc, "networks") | {"default"}
    secrets, configs = names(doc, "secrets"), names(doc, "configs")
    for svc, spec in services.items():
        deps = spec.get("depends_on") or []
        for dep in deps if isinstance(deps, list) else deps.keys():
            if dep not in services:
                problems.append(f"services.{svc}.depends_on: no service {dep!r}")
        for v in spec.get("volumes") or []:
            source = v.split(":")[0] if isinstance(v, str) and ":" in v else (
                v.get("source") if isinstance(v, dict) and v.get("type", "volume") == "volume" else None)
            if source and not source.startswith((".", "/", "~", "$")) and source not in volumes:
                problems.append(f"services.{svc}.volumes: volume {source!r} is not declared")
        nets = spec.get("networks") or []
        for n in nets if isinstance(nets, list) else nets.keys():
            if n not in networks:
                problems.append(f"services.{svc}.networks: network {n!r} is not declared")
        for key, known in (("secrets", secrets), ("configs", configs)):
            for s in spec.get(key) or []:
                ref = s if isinstance(s, str) else s.get("source")
                if ref not in known:
                    problems.append(f"services.{svc}.{key}: {ref!r} is not declared")


def main(path):
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as e:
        print(f"{path}: {e}")
        return 1
    if not isinstance(raw, dict):
        print(f"{path}: not a mapping")
        return 1
    doc = walk(raw, "")
    schema = get_builtin_schema("vendor.compose-spec")
    validator = jsonschema.validators.validator_for(schema)(schema)
    for e in sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path)):
        where = ".".join(str(p) for p in e.absolute_path) or "(top)"
        problems.append(f"{where}: {e.message}")
    check_references(doc)
    for p in problems:
        print(f"{path}: {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
