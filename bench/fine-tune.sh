#!/usr/bin/env bash
# Fine-tuning measured on the bundled data: what pretrained weights buy on a small training set.
# PyTorch pretrains torchvision's ResNet-18 on the UCI digits (bench/pretrain_digits.py), then
# kiln trains on 200 MNIST images (20 a class; validated on 1,000 others) three ways, same data,
# seed and epochs: kiln's CNN from scratch, ResNet-18 from scratch, and ResNet-18 from the
# digits weights (head frozen first, then the backbone at a tenth of the rate). Prints each
# run's best validation accuracy.
#
#   bench/fine-tune.sh [--epochs N] [--train-images N]
#
# KILN=/path/to/kiln uses that binary; otherwise it is built with cargo. PyTorch and
# torchvision are installed from PyPI when missing.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
epochs=12
images=200
while [ $# -gt 0 ]; do
  case "$1" in
    --epochs) epochs="$2"; shift 2 ;;
    --train-images) images="$2"; shift 2 ;;
    *) echo "unknown option: $1" >&2; exit 2 ;;
  esac
done
python3 -c "import torch, torchvision" 2>/dev/null || python3 -m pip install --quiet torch torchvision
if [ -z "${KILN:-}" ]; then
  (cd "$here/.." && cargo build --release --quiet)
  KILN="${CARGO_TARGET_DIR:-$here/../target}/release/kiln"
fi
out=$(mktemp -d)
python3 "$here/pretrain_digits.py" "$out/resnet18-digits.pth"
common=(--headless --runs-dir "$out/runs" --set "data.train_images=$images" --set data.image_size=32
  --set "train.epochs=$epochs" --set train.backend=cpu)
run() {
  local name="$1"; shift
  echo "== $name" >&2
  "$KILN" train "$here/../experiments/baseline.toml" "${common[@]}" --set "name=\"$name\"" "$@" >/dev/null
}
run cnn-scratch
run resnet18-scratch --set data.channels=3 --set model.backbone=resnet18
run resnet18-digits --set data.channels=3 --set model.backbone=resnet18 \
  --set "model.weights=\"$out/resnet18-digits.pth\"" --set model.freeze_epochs=2 \
  --set model.backbone_lr_factor=0.1
python3 - "$out/runs" <<'PY'
import json, os, sys
runs = sys.argv[1]
print(f"{'run':<18} {'best val acc':>12} {'epoch':>6} {'seconds':>8}")
rows = []
for run in sorted(os.listdir(runs)):
    name, best, seconds = run, (0.0, 0), 0.0
    with open(os.path.join(runs, run, "events.jsonl")) as f:
        for line in f:
            event = json.loads(line)
            if event["kind"] == "run_started":
                name = event["experiment"]
            if event["kind"] == "epoch" and event["validation_accuracy"] > best[0]:
                best = (event["validation_accuracy"], event["epoch"])
            if event["kind"] == "finished":
                seconds = event["seconds"]
    rows.append((name, best, seconds))
for name, (accuracy, epoch), seconds in sorted(rows):
    print(f"{name:<18} {accuracy:>12.3f} {epoch:>6} {seconds:>8.1f}")
PY
