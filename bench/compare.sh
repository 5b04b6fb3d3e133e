#!/usr/bin/env bash
# kiln against PyTorch on the same machine and workloads, in one run: prints one table with the
# kiln / PyTorch ratio per workload (above 1: kiln is faster) for each PyTorch reference (on the
# CPU: as installed, and with glibc keeping freed memory), then one per operation of the
# models (the same shapes timed alone: where a gap comes from; where kiln runs its own CPU kernel,
# burn's is timed beside it: `burn ms`, `kiln/burn`). --no-ops skips the second.
#
#   bench/compare.sh [--backend cpu|gpu|cuda|wgpu|torch] [--warmup N] [--steps N] [--repeat N] [--workload NAME]...
#                    [--no-ops]
#
# KILN=/path/to/kiln uses that binary; otherwise it is built with cargo (with the torch feature,
# linked to the installed PyTorch, for --backend torch). PyTorch is installed from PyPI when
# missing (it is never a test dependency). --backend torch compares burn's LibTorch backend on
# the device PyTorch picks (CUDA when it sees a GPU) with PyTorch itself there.
set -euo pipefail
# The reference sits beside this script, in the repository and in gpu-check's packed folder.
here="$(cd "$(dirname "$0")" && pwd)"

backend=cpu
ops=1
shared=()
while [ $# -gt 0 ]; do
  case "$1" in
    --backend) backend="$2"; shift 2 ;;
    --warmup|--steps|--workload|--repeat) shared+=("$1" "$2"); shift 2 ;;
    --no-ops) ops=0; shift ;;
    *) echo "unknown option: $1" >&2; exit 2 ;;
  esac
done
case "$backend" in
  cpu|gpu|cuda|wgpu|torch) ;;
  *) echo "--backend must be cpu, gpu, cuda, wgpu or torch" >&2; exit 2 ;;
esac

python3 -c "import torch, torchvision" 2>/dev/null || python3 -m pip install --quiet torch torchvision
case "$backend" in
  cpu) device=cpu ;;
  gpu|cuda|wgpu) device=cuda ;;
  torch) device=$(python3 -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')") ;;
esac

if [ -z "${KILN:-}" ]; then
  if [ "$backend" = torch ]; then
    # tch links the PyTorch it was written for (2.9): the installed one, or LIBTORCH's.
    if [ -z "${LIBTORCH:-}" ]; then export LIBTORCH_USE_PYTORCH=1; fi
    (cd "$here/.." && cargo build --release --quiet --features torch)
  else
    (cd "$here/.." && cargo build --release --quiet)
  fi
  KILN="${CARGO_TARGET_DIR:-$here/../target}/release/kiln"
fi

# Same thread count for both on the CPU (kiln's LibTorch backend leaves one core to its loader).
threads=$(nproc)
out=$(mktemp -d)
"$KILN" bench --backend "$backend" --json "$out/kiln.json" "${shared[@]}"
python3 "$here/torch_reference.py" --device "$device" --threads "$threads" \
  --json "$out/torch.json" "${shared[@]}"
# glibc maps each buffer over its mmap threshold from the kernel anew and unmaps it on free, so
# a training step page-faults its largest tensors in again; kiln's binary keeps freed buffers
# (src/main.rs, src/allocator.rs), PyTorch as installed does not. On the CPU PyTorch is also run
# with glibc told to keep freed memory (no mmap, no trimming: its training runs on the main
# thread, whose heap then serves every buffer), its own table below, so kiln is also measured
# against PyTorch at its best; the per-operation table uses that setting too.
keep_memory="glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=17179869184"
torch_ops_env=()
if [ "$device" = cpu ]; then
  GLIBC_TUNABLES="$keep_memory" python3 "$here/torch_reference.py" --device cpu \
    --threads "$threads" --json "$out/torch-kept.json" "${shared[@]}"
  torch_ops_env=(env "GLIBC_TUNABLES=$keep_memory")
fi
# On CUDA, PyTorch's defaults use TF32 tensor cores for convolutions: also f32 against f32
# (TF32 off) and half against half (autocast bf16), each its own table below.
if [ "$device" = cuda ]; then
  for precision in fp32 bf16; do
    python3 "$here/torch_reference.py" --device cuda --precision "$precision" \
      --json "$out/torch-$precision.json" "${shared[@]}"
  done
fi

python3 - "$out" <<'PY'
import json, os, sys
out = sys.argv[1]
load = lambda name: {r["workload"]: r for r in json.load(open(os.path.join(out, name)))}
kiln = load("kiln.json")
references = [("PyTorch defaults", "torch.json"),
              ("PyTorch with glibc keeping freed memory", "torch-kept.json"),
              ("PyTorch TF32 off (f32)", "torch-fp32.json"),
              ("PyTorch autocast bf16", "torch-bf16.json")]
for title, file in references:
    if not os.path.exists(os.path.join(out, file)):
        continue
    torch = load(file)
    print(f"kiln (f32) against {title}:")
    print(f"{'workload':<11} {'kiln img/s':>11} {'torch img/s':>12} {'kiln/torch':>10}"
          f" {'kiln eval':>10} {'torch eval':>11} {'kiln/bare':>9} {'loader':>7}"
          f" {'kiln MB':>8} {'torch MB':>9}  where")
    for name, k in kiln.items():
        t = torch.get(name)
        if not t:
            continue
        # On a GPU both memory columns are device memory (kiln: NVML, the whole device;
        # PyTorch: its allocator's peak); on the CPU, each process's peak resident memory.
        kiln_mb = k.get("device_memory_mb") or k["peak_memory_mb"]
        print(f"{name:<11} {k['train_images_per_second']:>11.0f} {t['train_images_per_second']:>12.0f}"
              f" {k['train_images_per_second'] / t['train_images_per_second']:>10.2f}"
              f" {k['eval_images_per_second']:>10.0f} {t['eval_images_per_second']:>11.0f}"
              f" {k['ratio_vs_bare']:>9.3f} {100 * k.get('loader_wait', 0):>6.0f}%"
              f" {kiln_mb:>8.0f} {t['peak_memory_mb']:>9.0f}  {k['device']} / {t['device']}")
    print()
PY

if [ "$ops" = 1 ]; then
  echo
  "$KILN" bench --ops --backend "$backend" --json "$out/kiln-ops.json" "${shared[@]}" >/dev/null
  "${torch_ops_env[@]}" python3 "$here/torch_reference.py" --ops --device "$device" \
    --threads "$threads" --json "$out/torch-ops.json" "${shared[@]}" 2>/dev/null
  python3 - "$out/kiln-ops.json" "$out/torch-ops.json" <<'PY'
import json, sys
kiln = json.load(open(sys.argv[1]))
torch = {(r["workload"], r["op"]): r for r in json.load(open(sys.argv[2]))}
print(f"{'workload':<11} {'op':<24} {'input':>16} {'kiln ms':>9} {'burn ms':>9} {'torch ms':>9}"
      f" {'kiln/torch':>10} {'kiln/burn':>9}")
for k in kiln:
    t = torch.get((k["workload"], k["op"]))
    if not t:
        continue
    # burn ms: the same op through burn's own kernel in the same run, where kiln runs its own.
    burn = k.get("burn_milliseconds")
    burn_ms = f"{burn:>9.3f}" if burn is not None else f"{'-':>9}"
    speedup = f"{burn / max(k['milliseconds'], 1e-9):>9.2f}" if burn is not None else f"{'-':>9}"
    print(f"{k['workload']:<11} {k['op']:<24} {k['shape']:>16} {k['milliseconds']:>9.3f} {burn_ms}"
          f" {t['milliseconds']:>9.3f} {t['milliseconds'] / max(k['milliseconds'], 1e-9):>10.2f} {speedup}")
PY
fi
rm -rf "$out"
