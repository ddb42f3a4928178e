#!/usr/bin/env python3
"""The module layering of src/, checked against what CMake declares (build/az_modules.txt,
written by src/CMakeLists.txt): one line per module, "<target> <dir> headers=.. modules=..
libs=..".

Fails (exit 1, one line per finding) when
  - a file of src/<module>/ includes another module's "<module>/..._internal.h";
  - a file of src/<module>/ includes a header of a module (its "<module>/x.h" or a public
    "arrow_zerobus/x.h" that module owns) that it does not link (target_link_libraries);
  - a public header includes one owned by a module its owner does not link;
  - a file includes a public header that no module owns (a new header not declared in
    az_module(... HEADERS ...)), or a module includes the umbrella arrow_zerobus.h;
  - the module graph has a cycle;
  - a module that must stay free of the network stack reaches gRPC or curl through its links.
"""
import argparse
import pathlib
import re
import sys

UMBRELLA = "arrow_zerobus.h"
# The encoder and what it stands on (and the Flight cast): pure Arrow/protobuf, linked alone by
# their tests and benchmark.
NO_NETWORK = ["az_errors", "az_schema", "az_encode", "az_flight"]
NETWORK_LIBS = ["PkgConfig::GRPCPP", "CURL::libcurl", "az_proto"]
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def read_manifest(path):
    modules = {}
    for line in pathlib.Path(path).read_text().splitlines():
        if not line.strip():
            continue
        name, directory, *fields = line.split()
        kv = dict(f.split("=", 1) for f in fields)
        split = lambda v: [x for x in v.split(",") if x]
        modules[name] = {
            "dir": directory,
            "headers": split(kv.get("headers", "")),
            "modules": split(kv.get("modules", "")),
            "libs": split(kv.get("libs", "")),
        }
    return modules


def find_cycle(modules):
    state = {}  # 1 visiting, 2 done

    def visit(m, path):
        state[m] = 1
        for d in modules[m]["modules"]:
            if state.get(d) == 1:
                return path[path.index(d):] + [d] if d in path else path + [d]
            if d not in state:
                found = visit(d, path + [d])
                if found:
                    return found
        state[m] = 2
        return None

    for m in sorted(modules):
        if m not in state:
            found = visit(m, [m])
            if found:
                return found
    return None


def reachable_libs(modules, start):
    seen, libs, todo = set(), set(), [start]
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        libs.update(modules[m]["libs"])
        todo.extend(modules[m]["modules"])
    return libs


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--manifest", required=True)
    ap.add_argument("--source-dir", required=True, help="the project's root")
    args = ap.parse_args()
    root = pathlib.Path(args.source_dir)
    modules = read_manifest(args.manifest)
    by_dir = {m["dir"]: name for name, m in modules.items()}
    owner = {}  # public header -> module
    problems = []
    for name, m in modules.items():
        for h in m["headers"]:
            if h in owner:
                problems.append(f"include/arrow_zerobus/{h}: owned by both {owner[h]} and {name}")
            owner[h] = name

    def check_file(path, module):
        """Every quoted include of `path` (a file of `module`) against its declared links."""
        rel = path.relative_to(root)
        allowed = set(modules[module]["modules"]) | {module}
        for inc in INCLUDE.findall(path.read_text(errors="replace")):
            first, _, rest = inc.partition("/")
            if first == "arrow_zerobus":
                if rest == UMBRELLA:
                    problems.append(f"{rel}: includes the umbrella header {inc}; include what it uses")
                elif rest not in owner:
                    problems.append(f"{rel}: includes {inc}, which no module owns "
                                    "(declare it in az_module(... HEADERS ...))")
                elif owner[rest] not in allowed:
                    problems.append(f"{rel}: includes {inc} of {owner[rest]}, but {module} does "
                                    f"not link {owner[rest]}")
            elif first in by_dir and first != modules[module]["dir"]:
                other = by_dir[first]
                if rest.endswith("_internal.h"):
                    problems.append(f"{rel}: includes {inc}, an internal header of {other}")
                elif other not in allowed:
                    problems.append(f"{rel}: includes {inc} of {other}, but {module} does not "
                                    f"link {other}")

    for name, m in sorted(modules.items()):
        directory = root / "src" / m["dir"]
        for path in sorted(directory.rglob("*")):
            if path.suffix in (".h", ".cc"):
                check_file(path, name)
        for h in m["headers"]:
            path = root / "include" / "arrow_zerobus" / h
            if not path.exists():
                problems.append(f"{name}: declares include/arrow_zerobus/{h}, which does not exist")
            else:
                check_file(path, name)
    for path in sorted((root / "include" / "arrow_zerobus").glob("*.h")):
        if path.name != UMBRELLA and path.name not in owner:
            problems.append(f"{path.relative_to(root)}: owned by no module "
                            "(declare it in az_module(... HEADERS ...))")

    cycle = find_cycle(modules)
    if cycle:
        problems.append("module cycle: " + " -> ".join(cycle))
    for name in NO_NETWORK:
        if name not in modules:
            problems.append(f"{name}: expected module is missing")
            continue
        bad = sorted(reachable_libs(modules, name) & set(NETWORK_LIBS))
        if bad:
            problems.append(f"{name} must not link the network stack, but reaches {', '.join(bad)}")

    for p in problems:
        print("layering:", p)
    if problems:
        return 1
    print(f"layering: {len(modules)} modules, includes match the declared links, no cycle")
    return 0


if __name__ == "__main__":
    sys.exit(main())
