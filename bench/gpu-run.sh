#!/usr/bin/env bash
# On the GPU machine (packed by bench/gpu-check.sh as run.sh): finds NVRTC and the CUDA
# headers, makes the Vulkan loader visible, then measures kiln (CUDA f32, CUDA bf16, wgpu) and
# PyTorch (defaults, TF32 off, bf16 autocast) on the same workloads and prints one table.
# Each measurement's JSON and log go to $OUT (or ./results).
#
#   bash run.sh [--steps N] [--warmup N] [--repeat N] [--workload NAME]...
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
results="${OUT:-$here/results}"
mkdir -p "$results"
args=("$@")

# The Vulkan loader for burn-wgpu, unpacked beside us.
prefix="$here/root"
mkdir -p "$prefix"
for deb in "$here"/debs/*.deb; do dpkg -x "$deb" "$prefix"; done
export LD_LIBRARY_PATH="$prefix/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}"
for icd in /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json \
           /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json; do
  if [ -f "$icd" ]; then export VK_DRIVER_FILES="$icd"; break; fi
done

# The CUDA headers cubecl hands NVRTC: CUDA_PATH, else nvcc's install, else PyTorch's wheels.
site=$(python3 -c 'import site; print(site.getsitepackages()[0])' 2>/dev/null || true)
has_headers() { [ -f "$1/include/cuda_fp16.h" ]; }
if [ -z "${CUDA_PATH:-}" ] || ! has_headers "$CUDA_PATH"; then
  unset CUDA_PATH
  candidates=()
  if command -v nvcc >/dev/null 2>&1; then
    candidates+=("$(dirname "$(dirname "$(readlink -f "$(command -v nvcc)")")")")
  fi
  candidates+=(/usr/local/cuda /opt/cuda)
  if [ -n "$site" ] && [ -d "$site/nvidia" ]; then
    while IFS= read -r header; do candidates+=("$(dirname "$(dirname "$header")")"); done \
      < <(find "$site/nvidia" -name cuda_fp16.h -path '*/include/*' 2>/dev/null)
  fi
  for root in "${candidates[@]}"; do
    if has_headers "$root"; then export CUDA_PATH="$root"; break; fi
  done
fi
echo "CUDA headers: ${CUDA_PATH:-not found}"
# NVRTC: on the loader's path already, else beside the headers, else in PyTorch's wheels.
if ! ldconfig -p 2>/dev/null | grep -q 'libnvrtc\.so'; then
  for dir in "${CUDA_PATH:-/nonexistent}/lib64" "${CUDA_PATH:-/nonexistent}/lib" \
             $( [ -n "$site" ] && find "$site/nvidia" -name 'libnvrtc.so*' -printf '%h\n' 2>/dev/null | sort -u ); do
    if ls "$dir"/libnvrtc.so* >/dev/null 2>&1; then
      export LD_LIBRARY_PATH="$dir:$LD_LIBRARY_PATH"
      echo "NVRTC: $dir"
      break
    fi
  done
fi

xz -d -k -c "$here/kiln.xz" > "$here/kiln"
chmod +x "$here/kiln"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true

# One measurement: its own log and JSON; a failure is reported and the others go on.
measure() {
  local name="$1"; shift
  local started=$SECONDS
  if timeout "${PHASE_SECONDS:-300}" "$@" --json "$results/$name.json" > "$results/$name.log" 2>&1; then
    echo "$name: done in $((SECONDS - started)) s"
  else
    echo "$name: FAILED (exit $?) after $((SECONDS - started)) s; last lines:"
    tail -5 "$results/$name.log" | sed 's/^/    /'
    rm -f "$results/$name.json"
  fi
}
measure kiln-cuda-f32 "$here/kiln" bench --backend cuda --precision f32 "${args[@]}"
measure kiln-cuda-bf16 "$here/kiln" bench --backend cuda --precision bf16 "${args[@]}"
measure kiln-wgpu "$here/kiln" bench --backend wgpu "${args[@]}"
for precision in default fp32 bf16; do
  measure "torch-$precision" python3 "$here/torch_reference.py" --device cuda \
    --precision "$precision" "${args[@]}"
done
python3 "$here/gpu_table.py" "$results"
