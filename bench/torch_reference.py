#!/usr/bin/env python3
"""PyTorch reference for `kiln bench`: the same workloads (architectures, batch sizes, Adam at
learning rate 1e-3, synthetic data, warm-up then timed steps) printing the same JSON fields, so
bench/compare.sh can put kiln and PyTorch side by side.

    python3 bench/torch_reference.py [--device cpu|cuda] [--threads N] [--warmup N] [--steps N]
                                     [--workload NAME]... [--json FILE]
"""
import argparse
import json
import os
import resource
import sys
import time
import warnings

# torch warns at import when numpy is absent; nothing here needs numpy.
warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
import torch  # noqa: E402
from torch import nn  # noqa: E402

# name, channels, side, classes, conv channels, dense, batch norm, batch size, epoch images
WORKLOADS = [
    ("digits", 1, 8, 10, [16, 32], [64], False, 32, 1438),
    ("mnist", 1, 28, 10, [16, 32], [128], False, 32, 1000),
    ("small64", 3, 64, 10, [16, 32, 64], [128], False, 32, 1000),
    ("small64-bn", 3, 64, 10, [16, 32, 64], [128], True, 32, 1000),
    ("case-study", 3, 224, 2, [16, 32], [], False, 128, 1485),
]


def model_for(channels, side, classes, conv, dense, batch_norm):
    """conv 3x3 same padding -> [batch norm] -> ReLU -> 2x2 max pool per block, then dense
    layers with ReLU, then the output layer: kiln's Classifier."""
    layers = []
    c = channels
    for out in conv:
        layers.append(nn.Conv2d(c, out, 3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(out))
        layers += [nn.ReLU(), nn.MaxPool2d(2)]
        c = out
        side //= 2
    layers.append(nn.Flatten())
    features = c * side * side
    for units in dense:
        layers += [nn.Linear(features, units), nn.ReLU()]
        features = units
    layers.append(nn.Linear(features, classes))
    return nn.Sequential(*layers)


def peak_memory_mb(device):
    """Peak GPU memory on CUDA (what limits a GPU run), peak resident memory on the CPU."""
    if device == "cuda":
        return torch.cuda.max_memory_allocated() / (1024.0 * 1024.0)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def measure(workload, device, warmup, steps):
    name, channels, side, classes, conv, dense, bn, batch, epoch_images = workload
    torch.manual_seed(7)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    model = model_for(channels, side, classes, conv, dense, bn).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(11)
    batches = [
        (
            torch.rand(batch, channels, side, side, generator=generator),
            torch.arange(batch) % classes,
        )
        for _ in range(warmup + steps)
    ]
    model.train()
    elapsed = 0.0
    for step, (images, labels) in enumerate(batches):
        started = time.perf_counter()
        images, labels = images.to(device), labels.to(device)
        optimizer.zero_grad()
        loss = loss_fn(model(images), labels)
        loss.backward()
        optimizer.step()
        loss.item()  # read the loss each step, as kiln does
        if step >= warmup:
            elapsed += time.perf_counter() - started
    train = steps * batch / max(elapsed, 1e-9)

    model.eval()
    images = torch.rand(4 * batch, channels, side, side, generator=generator).to(device)
    with torch.no_grad():
        model(images).argmax(1).sum().item()
        started = time.perf_counter()
        model(images).argmax(1).sum().item()
        evaluation = 4 * batch / max(time.perf_counter() - started, 1e-9)
    return {
        "workload": name,
        "framework": "pytorch",
        "backend": device,
        "device": torch.cuda.get_device_name(0) if device == "cuda" else f"CPU, {torch.get_num_threads()} threads",
        "train_images_per_second": train,
        "eval_images_per_second": evaluation,
        "seconds_per_epoch": epoch_images / train,
        "peak_memory_mb": peak_memory_mb(device),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--workload", action="append", default=[])
    parser.add_argument("--json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    chosen = [w for w in WORKLOADS if not args.workload or w[0] in args.workload]
    if not chosen:
        sys.exit(f"no such workload: {args.workload}")
    results = []
    for workload in chosen:
        result = measure(workload, args.device, args.warmup, args.steps)
        results.append(result)
        print(f"{result['workload']:<11} {result['train_images_per_second']:>10.0f} img/s train"
              f"  {result['eval_images_per_second']:>10.0f} img/s eval", file=sys.stderr)
    text = json.dumps(results, indent=2)
    if args.json:
        with open(args.json, "w") as out:
            out.write(text)
    else:
        print(text)


if __name__ == "__main__":
    main()
