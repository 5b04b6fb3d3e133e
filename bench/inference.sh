#!/usr/bin/env bash
# Using a trained model, kiln against PyTorch on the same machine in one run: `kiln bench
# --inference` (evaluate 1,000 28x28 images; predict 224x224 JPEG files, decoding included) and
# torch_reference.py --inference (the same evaluation; the same model's forward pass alone, no
# decoding, at its best batch size: PyTorch is favoured there). Prints both and the ratios.
#
#   bench/inference.sh [--backend cpu|gpu]
#
# KILN=/path/to/kiln uses that binary; otherwise it is built with cargo.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
backend=cpu
while [ $# -gt 0 ]; do
  case "$1" in
    --backend) backend="$2"; shift 2 ;;
    *) echo "unknown option: $1" >&2; exit 2 ;;
  esac
done
case "$backend" in
  cpu) device=cpu ;;
  gpu) device=cuda ;;
  *) echo "--backend must be cpu or gpu" >&2; exit 2 ;;
esac
python3 -c "import torch" 2>/dev/null || python3 -m pip install --quiet torch
if [ -z "${KILN:-}" ]; then
  (cd "$here/.." && cargo build --release --quiet)
  KILN="${CARGO_TARGET_DIR:-$here/../target}/release/kiln"
fi
out=$(mktemp -d)
"$KILN" bench --inference --backend "$backend" --json "$out/kiln.json"
python3 "$here/torch_reference.py" --inference --device "$device" --threads "$(nproc)" \
  --json "$out/torch.json"
python3 - "$out/kiln.json" "$out/torch.json" <<'PY'
import json, sys
kiln = json.load(open(sys.argv[1]))
torch = json.load(open(sys.argv[2]))
print()
print(f"{'':<34} {'kiln':>10} {'PyTorch':>10} {'kiln/PyTorch':>13}")
k, t = kiln["evaluate_seconds"], torch["evaluate_seconds"]
print(f"{'evaluate 1,000 28x28 (s, lower)':<34} {k:>10.3f} {t:>10.3f} {t / k:>13.2f}")
k, t = kiln["predict_images_per_second"], torch["forward_images_per_second"]
print(f"{'224x224 img/s (kiln: with decoding)':<34} {k:>10.0f} {t:>10.0f} {k / t:>13.2f}")
print("(ratios above 1: kiln is faster)")
PY
