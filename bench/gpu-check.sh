#!/usr/bin/env bash
# Packs what a GPU check needs into one folder (at most 64 MiB): the release kiln binary
# (xz-compressed), the Vulkan loader packages burn-wgpu needs (as .deb files), the PyTorch
# reference and the comparison script, plus run.sh. The GPU machine needs an NVIDIA driver and
# Python with PyTorch (CUDA), but no Rust toolchain and no network.
#
#   bench/gpu-check.sh [OUT_DIR]      (default: gpu-check/)
#
# Then, on the GPU machine: bash OUT_DIR/run.sh [--steps N] [--workload NAME]...
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-gpu-check}"
limit=$((64 * 1024 * 1024))

cargo build --release --quiet
binary="${CARGO_TARGET_DIR:-target}/release/kiln"
rm -rf "$out"
mkdir -p "$out/debs"
xz -T0 -9 -c "$binary" > "$out/kiln.xz"
cp bench/torch_reference.py bench/compare.sh "$out/"

# The loader and GL/EGL dispatch libraries, for amd64 whatever this machine is.
lists=$(mktemp -d)
apt_opts=(-o APT::Architecture=amd64 -o APT::Architectures=amd64 -o "Dir::State::Lists=$lists")
mkdir -p "$lists/partial"
apt-get "${apt_opts[@]}" -qq update
(cd "$out/debs" && apt-get "${apt_opts[@]}" -qq download libvulkan1 libegl1 libglvnd0 libgl1 libglx0)
rm -rf "$lists"

cat > "$out/run.sh" <<'RUN'
#!/usr/bin/env bash
# On the GPU machine: unpack, make the Vulkan loader visible, run kiln bench --backend gpu and
# the PyTorch reference on CUDA, and print the ratio table.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
prefix="$here/root"
mkdir -p "$prefix"
for deb in "$here"/debs/*.deb; do dpkg -x "$deb" "$prefix"; done
export LD_LIBRARY_PATH="$prefix/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}"
# The NVIDIA driver ships its Vulkan ICD description in one of these places.
for icd in /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json \
           /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json; do
  if [ -f "$icd" ]; then export VK_DRIVER_FILES="$icd"; break; fi
done
xz -d -k -c "$here/kiln.xz" > "$here/kiln"
chmod +x "$here/kiln"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader || true
KILN="$here/kiln" bash "$here/compare.sh" --backend gpu "$@"
RUN
chmod +x "$out/run.sh"

size=$(du -sb "$out" | cut -f1)
if [ "$size" -gt "$limit" ]; then
  echo "error: $out is $size bytes, over the 64 MiB limit" >&2
  exit 1
fi
echo "packed $out ($((size / 1024 / 1024)) MiB): $(ls "$out" | tr '\n' ' ')"
echo "on the GPU machine run:  bash $out/run.sh"
