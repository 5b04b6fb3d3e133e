#!/usr/bin/env bash
# Packs what a GPU check needs into one folder (at most 64 MiB): the release kiln binary
# (stripped, xz-compressed), the Vulkan loader packages burn-wgpu needs (as .deb files), the
# PyTorch reference, the table script, and run.sh. The GPU machine needs an NVIDIA driver, the
# CUDA toolkit's NVRTC and headers (or PyTorch's CUDA wheels) and Python with PyTorch (CUDA),
# but no Rust toolchain and no network.
#
#   bench/gpu-check.sh [OUT_DIR]      (default: gpu-check/)
#
# Then, on the GPU machine: bash OUT_DIR/run.sh [--steps N] [--warmup N] [--repeat N] [--workload NAME]...
# It runs, on every workload: kiln on CUDA in f32 and in bf16, kiln on wgpu, and PyTorch with
# its defaults (TF32 convolutions), with TF32 off, and under bf16 autocast; then prints one
# table of images per second, the ratios the project's targets are stated in, kiln/bare and
# the share of kiln's time spent waiting for its loader.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-gpu-check}"
limit=$((64 * 1024 * 1024))

cargo build --release --quiet
binary="${CARGO_TARGET_DIR:-target}/release/kiln"
rm -rf "$out"
mkdir -p "$out/debs"
strip -o "$out/kiln" "$binary"
xz -T0 -9 "$out/kiln"
cp bench/torch_reference.py bench/gpu_table.py "$out/"

# The loader and GL/EGL dispatch libraries, for amd64 whatever this machine is.
lists=$(mktemp -d)
apt_opts=(-o APT::Architecture=amd64 -o APT::Architectures=amd64 -o "Dir::State::Lists=$lists")
mkdir -p "$lists/partial"
apt-get "${apt_opts[@]}" -qq update
(cd "$out/debs" && apt-get "${apt_opts[@]}" -qq download libvulkan1 libegl1 libglvnd0 libgl1 libglx0)
rm -rf "$lists"

cp bench/gpu-run.sh "$out/run.sh"
chmod +x "$out/run.sh"

size=$(du -sb "$out" | cut -f1)
if [ "$size" -gt "$limit" ]; then
  echo "error: $out is $size bytes, over the 64 MiB limit" >&2
  exit 1
fi
echo "packed $out ($((size / 1024 / 1024)) MiB): $(ls "$out" | tr '\n' ' ')"
echo "on the GPU machine run:  bash $out/run.sh"
