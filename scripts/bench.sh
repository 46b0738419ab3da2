#!/usr/bin/env bash
# make bench: OpenDojo and PyTorch CPU (Debian python3-torch) on the same training steps, on this machine, in
# this run; prints samples/s of both and the ratio (goal: OpenDojo/PyTorch >= 1.0), matmul GFLOP/s of the engine
# against oneDNN called directly (goal >= 0.9), and the peak memory of a training step.
# Usage: [BENCH_ROUNDS=N] scripts/bench.sh [--quick]   (N rounds of both sides in turns, 3 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
# python3-torch takes its BLAS from the system: without OpenBLAS it gets the reference BLAS (about 5 GFLOP/s),
# which would make PyTorch look slower than it is.
scripts/install-deps.sh python3-torch libopenblas0-pthread
threads=${OMP_NUM_THREADS:-$(nproc)}
export OMP_NUM_THREADS=$threads
dojo=.build/release/dojo
[ -x "$dojo" ] || swift build -c release
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, OMP_NUM_THREADS=$threads"
# The two sides run in turns, one network at a time, for $BENCH_ROUNDS rounds (3): OpenDojo's then PyTorch's in odd
# rounds, PyTorch's then OpenDojo's in even ones. Each ratio is the median of the ratios of one round, both sides
# measured minutes apart at most: this shared VM's speed drifts by 20-30 % within minutes, and one pass of each side
# in a row (as before) put that drift into every ratio.
rounds=${BENCH_ROUNDS:-3}
case "$rounds" in ''|*[!0-9]*|0) echo "BENCH_ROUNDS must be a whole number of rounds, 1 or more (got '$rounds')" >&2; exit 2 ;; esac
torch_version=$(/usr/bin/python3 -c 'import torch; print(torch.__version__)')
echo "OpenDojo (dojo bench) and PyTorch $torch_version (scripts/bench_torch.py) in turns, network by network, rounds: $rounds…"
# one network's rows of one side, each tagged with its round: ours|theirs ROUND NET [bench.sh's arguments]
ours() { "$dojo" bench --json --only "$2" --rounds 1 "${@:3}" 2>> "$tmp/dojo.err" | sed "s/^{/{\"round\": $1, /" >> "$tmp/dojo.jsonl"; }
theirs() { /usr/bin/python3 scripts/bench_torch.py --only "$2" "${@:3}" | sed "s/^{/{\"round\": $1, /" >> "$tmp/torch.jsonl"; }
for r in $(seq "$rounds"); do
  for net in small-cnn resnet18 occupancy vit-tiny gpt; do
    if [ $((r % 2)) = 1 ]; then ours "$r" "$net" "$@"; theirs "$r" "$net" "$@"
    else theirs "$r" "$net" "$@"; ours "$r" "$net" "$@"; fi
  done
  [ "$r" = 1 ] && head -1 "$tmp/dojo.err"   # the CPU and what oneDNN runs on it
  echo "  round $r of $rounds done"
done
"$dojo" bench --json --only matmul "$@" >> "$tmp/dojo.jsonl" 2>> "$tmp/dojo.err"
/usr/bin/python3 scripts/bench_torch.py --only matmul "$@" >> "$tmp/torch.jsonl"
"$dojo" bench --json --only sim "$@" >> "$tmp/dojo.jsonl" 2>> "$tmp/dojo.err"
/usr/bin/python3 - "$tmp/dojo.jsonl" "$tmp/torch.jsonl" <<'PY'
import json, sys, statistics
from collections import defaultdict
def load(path):
    rows = defaultdict(list)   # by name: one row per round, in order
    for r in map(json.loads, open(path)): rows[r["name"]].append(r)
    return rows
dojo_rounds, torch_rounds = load(sys.argv[1]), load(sys.argv[2])
med = statistics.median
def per_round(a, b, f):
    """f(row of a, row of b) for each round both have"""
    bs = {r.get("round"): r for r in b}
    return [f(x, bs[x.get("round")]) for x in a if x.get("round") in bs]
def spread(xs): return f"  [{min(xs):.2f}–{max(xs):.2f} over {len(xs)} rounds]" if len(xs) > 1 else ""
def medians(by_name):
    """each workload's figures: the medians of its rounds (the rest, peak memory included, its last round's)"""
    out = {}
    for name, rs in by_name.items():
        d = dict(rs[-1])
        for k in ("samples_per_s", "seconds_per_step", "gflops"):
            if all(k in r for r in rs): d[k] = med(r[k] for r in rs)
        out[name] = d
    return out
dojo, torch = medians(dojo_rounds), medians(torch_rounds)
print()
print(f"{'workload':28} {'OpenDojo':>12} {'PyTorch':>12} {'ratio':>7}  {'step peak mem':>14}")
for name, d in dojo.items():
    if "samples_per_s" not in d: continue
    t = torch.get(name, {}).get("samples_per_s")
    ratios = per_round(dojo_rounds[name], torch_rounds.get(name, []), lambda a, b: a["samples_per_s"] / b["samples_per_s"])
    ratio = f"{med(ratios):.2f}" if ratios else "-"
    tt = f"{t:12.1f}" if t else f"{'-':>12}"
    note = " (samples/s; ratio: the median of each round's)" + spread(ratios) if ratios else " (samples/s)"
    print(f"{name:28} {d['samples_per_s']:12.1f} {tt} {ratio:>7}  {d['peak_step_bytes'] / 2**20:11.1f} MiB  {note}")
# Issue 14 §2: Dojo's formats against the fp32 step of the same workload, same round (goal <= 1.1)
for name, d in dojo.items():
    for fmt in ("bf16", "cfp8"):
        base_name = name[: -len(fmt) - 1] if name.endswith(" " + fmt) else None
        base = dojo.get(base_name) if base_name else None
        if base and "seconds_per_step" in d:
            ratios = per_round(dojo_rounds[name], dojo_rounds[base_name], lambda a, b: a["seconds_per_step"] / b["seconds_per_step"])
            # beside it, the ratio of the rounds' fastest steps: a shared VM's other tenants slow steps, never speed them up
            best = per_round(dojo_rounds[name], dojo_rounds[base_name],
                             lambda a, b: a["best_seconds_per_step"] / b["best_seconds_per_step"] if "best_seconds_per_step" in a and "best_seconds_per_step" in b else None)
            best = [b for b in best if b is not None]
            fastest = f"; fastest steps {med(best):.2f}{spread(best)}" if best else ""
            print(f"{name + ' step time':28} {d['seconds_per_step'] * 1e3:10.1f}ms {base['seconds_per_step'] * 1e3:10.1f}ms {med(ratios):7.2f}  ({fmt} step ÷ the fp32 step of its round, median; goal <= 1.10, <= 0.70 with native BF16){spread(ratios)}{fastest}")
            print(f"{name + ' peak memory':28} {d['peak_step_bytes'] / 2**20:9.1f}MiB {base['peak_step_bytes'] / 2**20:9.1f}MiB {d['peak_step_bytes'] / base['peak_step_bytes']:7.2f}  ({fmt} step peak tensor memory ÷ fp32's" + ("; goal <= 0.50)" if fmt == "cfp8" else ")"))
            if "saved_activation_bytes" in d and base.get("saved_activation_bytes"):
                print(f"{name + ' saved acts':28} {d['saved_activation_bytes'] / 2**20:9.1f}MiB {base['saved_activation_bytes'] / 2**20:9.1f}MiB {d['saved_activation_bytes'] / base['saved_activation_bytes']:7.2f}  ({fmt} activations kept for backward ÷ fp32's)")
m = dojo.get("matmul 1024")
# Issue 14: the transformers' training step in FLOP/s against the engine's own 1024³ GEMM, same run (goal >= 40 %)
for name, d in dojo.items():
    if m and "gflops" in d and (name.startswith("vit") or name.startswith("gpt")):
        print(f"{name + ' GFLOP/s':28} {d['gflops']:12.1f} {m['gflops']:12.1f} {d['gflops'] / m['gflops']:7.2f}  (training step vs the engine's 1024³ GEMM; goal >= 0.40)")
if m:
    print(f"{'matmul 1024 GFLOP/s':28} {m['gflops']:12.1f} {m['onednn_direct_gflops']:12.1f} {m['gflops'] / m['onednn_direct_gflops']:7.2f}  (engine vs oneDNN direct)")
    t = torch.get("matmul 1024")
    if t: print(f"{'matmul 1024 GFLOP/s':28} {m['gflops']:12.1f} {t['gflops']:12.1f} {m['gflops'] / t['gflops']:7.2f}  (engine vs PyTorch)")
PY

/usr/bin/python3 - "$tmp/dojo.jsonl" <<'PY'
import json, sys
rows = [r for r in map(json.loads, open(sys.argv[1])) if r["name"].startswith("sim ")]
if rows: print()
for r in rows:
    if "cold_plan_seconds" in r:
        print(f"{r['name']:28} one plan, every op priced {r['cold_plan_seconds']*1e3:6.2f} ms (goal < 1 ms, ratio {r['cold_plan_seconds']/1e-3:.2f}; graph analysed once in {r['analysis_seconds']*1e3:.2f} ms); warm {r['warm_plans_per_s']:,.0f} plans/s")
    else:
        print(f"{r['name']:28} full search {r['seconds']:8.3f} s (goal < 1 s, ratio {r['seconds']:.2f}); {r['plans']:,.0f} plans, {r['plans_per_s']:,.0f} plans/s")
PY
echo
echo "scheduler (dojo cluster bench: goals >= 10,000 decisions/s, a 100,000-job replay < 60 s)…"
"$dojo" cluster bench
echo
echo "job service (dojo cluster bench-service: each figure next to its floor measured in the same run)…"
"$dojo" cluster bench-service

echo
echo "data-parallel training over MPI (dojo train --ranks, issue 10 §5: same cores, same global batch, same run)…"
echo "figure                          2 ranks     baseline   ratio"
dp() { "$dojo" train --model "$1" --data "$2" --train-examples 4096 --eval-examples 64 --batch-size 64 --steps "$3" \
       --checkpoint-every 0 --no-augment --out "$tmp/dp-$4" "${@:5}" > /dev/null; }
dp small-cnn fashion-mnist 40 one --threads 2
dp small-cnn fashion-mnist 40 two --ranks 2 --threads 1
# The occupancy network (2.1 M parameters, three 1 M-value buckets): its gradients' sums over the ranks.
dp occupancy scenes 12 overlap --ranks 2 --threads 1
dp occupancy scenes 12 blocking --ranks 2 --threads 1 --no-overlap
# ResNet-18 (11.2 M parameters, 45 MB of gradients in 11 buckets) on 28×28 Fashion-MNIST: the issue's overlap figure.
dp resnet18 fashion-mnist 16 r18-overlap --ranks 2 --threads 1
dp resnet18 fashion-mnist 16 r18-blocking --ranks 2 --threads 1 --no-overlap
# Synchronised batch norm: two more sums per batch-norm layer in forward, one in backward.
dp small-cnn fashion-mnist 40 sync --ranks 2 --threads 1 --sync-batchnorm
# Two hosts as network namespaces (TCP over veths; root and iproute2 needed), against the 2 ranks of one host.
hosts=scripts/netns-hosts.sh
if [ "$(id -u)" = 0 ] && command -v ip > /dev/null; then
  "$hosts" down --prefix djb > /dev/null 2>&1 || true
  if "$hosts" up 2 --prefix djb --agent "$tmp/agent.sh" --hostfile "$tmp/hosts" > /dev/null; then
    dp small-cnn fashion-mnist 40 hosts --ranks 2 --threads 1 --hostfile "$tmp/hosts" --launcher "$tmp/agent.sh" \
       --network "$("$hosts" subnet --prefix djb)" || true
    "$hosts" down --prefix djb
  fi
fi
/usr/bin/python3 - "$tmp" <<'PY'
import json, sys, statistics
def steps(d):
    rows = [json.loads(l) for l in open(f"{sys.argv[1]}/dp-{d}/metrics.jsonl")]
    return [r for r in rows if r.get("type") == "step"][2:]   # the first steps warm caches
def rate(d): return statistics.median(r["samples_per_s"] for r in steps(d))
def wait(d): return statistics.median(r["allreduce_wait_s"] for r in steps(d))
one, two = rate("one"), rate("two")
print(f"{'small-cnn samples/s':28} {two:12.1f} {one:12.1f} {two / one:7.2f}  (2 ranks x 1 thread vs 1 rank x 2 threads)")
o, b = wait("overlap"), wait("blocking")
print(f"{'occupancy all-reduce wait':28} {o * 1e3:10.2f}ms {b * 1e3:10.2f}ms {1 - o / b:7.2f}  (after backward: overlapped vs all after it; share hidden)")
o, b = wait("r18-overlap"), wait("r18-blocking")
print(f"{'resnet18 all-reduce wait':28} {o * 1e3:10.2f}ms {b * 1e3:10.2f}ms {1 - o / b:7.2f}  (share hidden under backward; goal >= 0.5)")
sync = rate("sync")
print(f"{'small-cnn sync-batchnorm':28} {sync:12.1f} {two:12.1f} {sync / two:7.2f}  (samples/s, 2 ranks: global-batch statistics vs each rank's own)")
import os
if os.path.exists(f"{sys.argv[1]}/dp-hosts/metrics.jsonl"):
    h = rate("hosts")
    print(f"{'small-cnn 2 namespace hosts':28} {h:12.1f} {two:12.1f} {h / two:7.2f}  (samples/s: TCP over veths vs shared memory on one host)")
else:
    print("small-cnn 2 namespace hosts: not measured (needs root and iproute2)")
PY
echo
echo "gradient sums inside training vs a bare MPI_Allreduce of the same buffers (issue 10 §5, goal >= 0.9 of its bus bandwidth)…"
root=(); [ "$(id -u)" = 0 ] && root=(--allow-run-as-root)
mpirun "${root[@]}" -n 2 --bind-to none "$dojo" bench --allreduce occupancy
echo
echo "pipeline stages: small-cnn --plan pp=2 (2 micro-batches) vs 2 data-parallel ranks, samples/s (issue 10 §2)…"
for p in dp=2 pp=2; do
  rm -rf "$tmp/pp-$p"
  "$dojo" train --model small-cnn --data fashion-mnist --train-examples 2048 --eval-examples 64 --batch-size 64 --steps 30 \
    --checkpoint-every 0 --no-augment --machine "" --plan "$p" --out "$tmp/pp-$p" > /dev/null
done
/usr/bin/python3 - "$tmp" <<'PY'
import json, sys, statistics
def rate(d):
    rows = [json.loads(l) for l in open(f"{sys.argv[1]}/pp-{d}/metrics.jsonl")]
    return statistics.median(r["samples_per_s"] for r in rows if r.get("type") == "step" and r["step"] > 3)
pp, dp = rate("pp=2"), rate("dp=2")
print(f"{'small-cnn pp=2 samples/s':28} {pp:12.1f} {dp:12.1f} {pp / dp:7.2f}  (2 pipeline stages vs 2 data-parallel ranks, same cores)")
PY
echo
echo "the simulator against what the engine runs: dojo validate --local (calibrates this machine, then 10-12 plans; goal mean |error| <= 15 %)…"
"$dojo" validate --local
echo
echo "ONNX import (issue 13 §4, goal < 1 s each): dojo graph --onnx (read, check every node, record a training step) vs onnxruntime's InferenceSession (PyPI), same file…"
scripts/onnx-fixtures.sh --bench > /dev/null
PYTHONPATH=.fixtures/onnx/python ORT_LOGGING_LEVEL=3 /usr/bin/python3 - "$dojo" <<'PY'
import os, subprocess, sys, time
import onnxruntime as ort
def best(f):
    times = []
    for _ in range(3):
        s = time.time(); f(); times.append(time.time() - s)
    return min(times)
for m in ["resnet50", "gpt2_small"]:
    path = f".fixtures/onnx/{m}.onnx"
    d = best(lambda: subprocess.run([sys.argv[1], "graph", "--onnx", path], stdout=subprocess.DEVNULL, check=True))
    o = best(lambda: ort.InferenceSession(path))
    print(f"{'import ' + m:28} {d:10.3f}s {o:10.3f}s {d / o:7.2f}  ({os.path.getsize(path) // 1000000} MB; best of 3; dojo graph --onnx vs onnxruntime InferenceSession)")
PY
