#!/usr/bin/env python3
"""Per-function instructions per request from two callgrind runs, guest wasm code included.

callgrind cannot name JIT-compiled code; wasmtime's perf map (MFA_GATE_HOST_PERFMAP=1 writes
/tmp/perf-<pid>.map) gives each compiled function's address range, so the per-instruction
costs (`--dump-instr=yes --dump-line=no`) of unnamed code are summed by guest function.
The difference between a short and a long run, divided by the extra requests, cancels the
one-off work (first request, warm-up).

    callgrind_wasm.py SHORT.out SHORT.map LONG.out LONG.map EXTRA_REQUESTS [ROWS]
"""
import bisect
import collections
import re
import sys

LEGACY = re.compile(r"_ZN(.*)17h[0-9a-f]{16}E$")


def demangle(name):
    """Rust legacy mangling to a readable path (v0 names are shown as they are)."""
    m = LEGACY.match(name)
    if not m:
        return name[:100]
    body, parts, i = m.group(1), [], 0
    while i < len(body):
        j = i
        while j < len(body) and body[j].isdigit():
            j += 1
        if j == i:
            break
        n = int(body[i:j])
        parts.append(body[j:j + n])
        i = j + n
    text = "::".join(parts)
    for code, char in [("$LT$", "<"), ("$GT$", ">"), ("$u20$", " "), ("..", "::"),
                       ("$C$", ","), ("$RF$", "&"), ("$BP$", "*")]:
        text = text.replace(code, char)
    return text[:100]


def load_map(path):
    rows = []
    with open(path) as f:
        for line in f:
            addr, size, name = line.rstrip("\n").split(" ", 2)
            rows.append((int(addr, 16), int(size, 16), name))
    rows.sort()
    return rows


def self_costs(out_path, perf_map):
    starts = [r[0] for r in perf_map]
    names, costs = {}, collections.Counter()
    fn, pos, after_call = "?", 0, False
    with open(out_path) as f:
        for line in f:
            for prefix in ("fn=", "cfn="):
                if line.startswith(prefix):
                    m = re.match(prefix + r"\((\d+)\)(?: (.*))?", line.strip())
                    if m and m.group(2):
                        names[m.group(1)] = m.group(2)
                    if prefix == "fn=" and m:
                        fn = names.get(m.group(1), "?")
                    break
            else:
                if line.startswith("calls="):
                    after_call = True
                    continue
                if not line or line[0] not in "0123456789+-*":
                    continue
                parts = line.split()
                p = parts[0]
                if p.startswith("0x"):
                    pos = int(p, 16)
                elif p[0] in "+-":
                    pos += int(p) if p[1:].isdigit() else 0
                if after_call:  # inclusive cost of a call: not this function's own
                    after_call = False
                    continue
                cost = int(parts[1]) if len(parts) > 1 else 0
                if fn == "???" or fn.startswith("0x"):
                    i = bisect.bisect_right(starts, pos) - 1
                    if i >= 0 and pos < perf_map[i][0] + perf_map[i][1]:
                        costs["wasm  " + demangle(perf_map[i][2])] += cost
                    else:
                        costs["jit   (unmapped)"] += cost
                else:
                    costs["host  " + fn[:100]] += cost
    return costs


def main():
    short_out, short_map, long_out, long_map, extra = sys.argv[1:6]
    rows = int(sys.argv[6]) if len(sys.argv) > 6 else 40
    a = self_costs(short_out, load_map(short_map))
    b = self_costs(long_out, load_map(long_map))
    per = {k: (b[k] - a[k]) / float(extra) for k in set(a) | set(b)}
    total = sum(per.values())
    wasm = sum(v for k, v in per.items() if k.startswith("wasm"))
    print(f"instructions per request: {total:.0f} (guest wasm {wasm:.0f}, host {total - wasm:.0f})")
    for name, value in sorted(per.items(), key=lambda kv: -kv[1])[:rows]:
        print(f"{value:9.0f}  {name}")


if __name__ == "__main__":
    main()
