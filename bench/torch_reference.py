#!/usr/bin/env python3
"""PyTorch reference for `kiln bench`: the same workloads (architectures, batch sizes, Adam at
learning rate 1e-3, synthetic data, warm-up then timed steps) printing the same JSON fields, so
bench/compare.sh can put kiln and PyTorch side by side.

    python3 bench/torch_reference.py [--device cpu|cuda] [--threads N] [--warmup N] [--steps N]
                                     [--repeat N] [--precision default|fp32|bf16]
                                     [--workload NAME]... [--json FILE] [--ops]

--precision: `default` is PyTorch as users run it (on CUDA, cuDNN convolutions in TF32);
`fp32` turns TF32 off for convolutions and matrix products (f32 against f32); `bf16` trains
under torch.autocast in bfloat16 (half against half).

With --ops, each operation of the models is timed on its own (kiln bench --ops's list, names and
method: warm-up, then the median of --steps runs, each ended by a device sync).
"""
import argparse
import contextlib
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
# ("resnet18": torchvision's ResNet-18 instead of the CNN, as kiln's model.backbone builds it)
WORKLOADS = [
    ("digits", 1, 8, 10, [16, 32], [64], False, 32, 1438),
    ("mnist", 1, 28, 10, [16, 32], [128], False, 32, 1000),
    ("small64", 3, 64, 10, [16, 32, 64], [128], False, 32, 1000),
    ("small64-bn", 3, 64, 10, [16, 32, 64], [128], True, 32, 1000),
    ("case-study", 3, 224, 2, [16, 32], [], False, 128, 1485),
    ("resnet18", 3, 64, 10, [], [], True, 32, 1000),
]
BACKBONES = {"resnet18"}


def model_for(channels, side, classes, conv, dense, batch_norm, name=None):
    """conv 3x3 same padding -> [batch norm] -> ReLU -> 2x2 max pool per block, then dense
    layers with ReLU, then the output layer: kiln's Classifier. A backbone workload gets
    torchvision's network with a head for its classes."""
    if name in BACKBONES:
        import torchvision

        return getattr(torchvision.models, name)(weights=None, num_classes=classes)
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


def set_precision(precision):
    """`fp32`: TF32 off for cuDNN convolutions (on by default) and matrix products (off by
    default); the other modes keep PyTorch's defaults (autocast is applied per step)."""
    if precision == "fp32":
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False


def autocast(device, precision):
    """bf16 autocast for `bf16`, nothing otherwise."""
    if precision == "bf16":
        return torch.autocast(device_type=device, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def measure(workload, device, warmup, steps, precision="default"):
    name, channels, side, classes, conv, dense, bn, batch, epoch_images = workload
    torch.manual_seed(7)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    model = model_for(channels, side, classes, conv, dense, bn, name).to(device)
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
        with autocast(device, precision):
            loss = loss_fn(model(images), labels)
        loss.backward()
        optimizer.step()
        loss.item()  # read the loss each step, as kiln does
        if step >= warmup:
            elapsed += time.perf_counter() - started
    train = steps * batch / max(elapsed, 1e-9)

    model.eval()
    images = torch.rand(4 * batch, channels, side, side, generator=generator).to(device)
    with torch.no_grad(), autocast(device, precision):
        model(images).argmax(1).sum().item()
        started = time.perf_counter()
        model(images).argmax(1).sum().item()
        evaluation = 4 * batch / max(time.perf_counter() - started, 1e-9)
    return {
        "workload": name,
        "framework": "pytorch",
        "precision": precision,
        "backend": device,
        "device": torch.cuda.get_device_name(0) if device == "cuda" else f"CPU, {torch.get_num_threads()} threads",
        "train_images_per_second": train,
        "eval_images_per_second": evaluation,
        "seconds_per_epoch": epoch_images / train,
        "peak_memory_mb": peak_memory_mb(device),
    }


def measure_repeated(workload, device, warmup, steps, repeat, precision="default"):
    """`measure` run `repeat` times; the medians, as kiln's bench reports (peak memory: the most)."""
    runs = [measure(workload, device, warmup, steps, precision) for _ in range(max(repeat, 1))]
    result = dict(runs[0])
    for key in ("train_images_per_second", "eval_images_per_second"):
        result[key] = sorted(r[key] for r in runs)[len(runs) // 2]
    result["seconds_per_epoch"] = runs[0]["seconds_per_epoch"] * runs[0]["train_images_per_second"] / result["train_images_per_second"]
    result["peak_memory_mb"] = max(r["peak_memory_mb"] for r in runs)
    result["repeat"] = len(runs)
    return result


def sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def timed(device, warmup, repeat, run):
    """Median milliseconds of `repeat` runs after `warmup` untimed ones."""
    for _ in range(warmup):
        run()
        sync(device)
    samples = []
    for _ in range(max(repeat, 1)):
        started = time.perf_counter()
        run()
        sync(device)
        samples.append((time.perf_counter() - started) * 1e3)
    samples.sort()
    middle = len(samples) // 2
    return samples[middle] if len(samples) % 2 else (samples[middle - 1] + samples[middle]) / 2


def measure_ops(workload, device, warmup, repeat):
    """The per-operation list of `kiln bench --ops`, on the same shapes."""
    import torch.nn.functional as F

    name, channels, side, classes, conv, dense, bn, batch, _ = workload
    torch.manual_seed(7)
    rows = []

    def record(op, dims, ms):
        rows.append({"workload": name, "op": op, "shape": "x".join(map(str, dims)),
                     "milliseconds": ms})

    def randn(*dims, grad=False):
        return torch.randn(*dims, device=device).requires_grad_(grad)

    def backward(out):
        # burn seeds a backward from any tensor with ones; so does this.
        out.backward(torch.ones_like(out))

    c, s = channels, side
    for i, out in enumerate(conv):
        n = i + 1
        dims = (batch, c, s, s)
        x, w, b = randn(*dims), randn(out, c, 3, 3), randn(out)
        with torch.no_grad():
            record(f"conv{n} fwd", dims, timed(device, warmup, repeat,
                                               lambda: F.conv2d(x, w, b, padding=1)))
        xg = randn(*dims, grad=True)
        record(f"conv{n} fwd+bwd-input", dims, timed(
            device, warmup, repeat, lambda: backward(F.conv2d(xg, w, b, padding=1))))
        wg, bg = randn(out, c, 3, 3, grad=True), randn(out, grad=True)
        record(f"conv{n} fwd+bwd-weight", dims, timed(
            device, warmup, repeat, lambda: backward(F.conv2d(x, wg, bg, padding=1))))
        ydims = (batch, out, s, s)
        if bn:
            y = randn(*ydims)
            gamma, beta = torch.ones(out, device=device), torch.zeros(out, device=device)
            with torch.no_grad():
                record(f"bn{n} fwd", ydims, timed(device, warmup, repeat, lambda: F.batch_norm(
                    y, None, None, gamma, beta, training=True, eps=1e-5)))
            yg = randn(*ydims, grad=True)
            gg, bb = gamma.clone().requires_grad_(True), beta.clone().requires_grad_(True)
            record(f"bn{n} fwd+bwd", ydims, timed(device, warmup, repeat, lambda: backward(
                F.batch_norm(yg, None, None, gg, bb, training=True, eps=1e-5))))
        y, yg = randn(*ydims), randn(*ydims, grad=True)
        with torch.no_grad():
            record(f"relu{n} fwd", ydims, timed(device, warmup, repeat, lambda: F.relu(y)))
        record(f"relu{n} fwd+bwd", ydims, timed(device, warmup, repeat,
                                                lambda: backward(F.relu(yg))))
        with torch.no_grad():
            record(f"pool{n} fwd", ydims, timed(device, warmup, repeat,
                                                lambda: F.max_pool2d(y, 2)))
        record(f"pool{n} fwd+bwd", ydims, timed(device, warmup, repeat,
                                                lambda: backward(F.max_pool2d(yg, 2))))
        c, s = out, s // 2

    features = c * s * s
    for i, units in enumerate(list(dense) + [classes]):
        n = i + 1
        x, w, b = randn(batch, features), randn(units, features), randn(units)
        with torch.no_grad():
            record(f"linear{n} fwd", (batch, features), timed(device, warmup, repeat,
                                                              lambda: F.linear(x, w, b)))
        xg, wg, bg = (randn(batch, features, grad=True), randn(units, features, grad=True),
                      randn(units, grad=True))
        record(f"linear{n} fwd+bwd", (batch, features), timed(
            device, warmup, repeat, lambda: backward(F.linear(xg, wg, bg))))
        features = units

    logits = randn(batch, classes, grad=True)
    labels = (torch.arange(batch) % classes).to(device)
    record("cross-entropy fwd+bwd", (batch, classes), timed(
        device, warmup, repeat, lambda: F.cross_entropy(logits, labels).backward()))

    model = model_for(channels, side, classes, conv, dense, bn).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    samples = []
    for run in range(warmup + max(repeat, 1)):
        optimizer.zero_grad()
        F.cross_entropy(model(randn(batch, channels, side, side)), labels).backward()
        sync(device)
        started = time.perf_counter()
        optimizer.step()
        sync(device)
        if run >= warmup:
            samples.append((time.perf_counter() - started) * 1e3)
    samples.sort()
    parameters = sum(p.numel() for p in model.parameters())
    record("adam step", (parameters,), samples[len(samples) // 2])
    return rows


def measure_inference(device, repeat=3):
    """kiln bench --inference's figures: evaluation of 1,000 28x28 images (the baseline model,
    batches of 256, loss and predictions), and the article's model forward on 224x224 RGB with a
    softmax (no file decoding: PyTorch is favoured here, kiln's predict decodes JPEGs too). The
    forward batch is the fastest of 1, 3 and 64 on this machine."""
    torch.manual_seed(0)
    model = model_for(1, 28, 10, [16, 32], [128], False).to(device).eval()
    images = torch.randn(1000, 1, 28, 28, device=device)
    labels = torch.randint(0, 10, (1000,), device=device)
    loss_fn = nn.CrossEntropyLoss(reduction="sum")

    def evaluate():
        with torch.no_grad():
            start = time.perf_counter()
            loss, correct = 0.0, 0
            for i in range(0, 1000, 256):
                logits = model(images[i:i + 256])
                loss += loss_fn(logits, labels[i:i + 256]).item()
                correct += (logits.argmax(1) == labels[i:i + 256]).sum().item()
            sync(device)
            return time.perf_counter() - start

    evaluate()
    evaluate_seconds = sorted(evaluate() for _ in range(repeat))[repeat // 2]
    article = model_for(3, 224, 2, [16, 32], [], False).to(device).eval()
    best = (0.0, 0)
    for batch in (1, 3, 64):
        x = torch.randn(batch, 3, 224, 224, device=device)
        with torch.no_grad():
            torch.softmax(article(x), 1)
            rates = []
            for _ in range(repeat):
                start = time.perf_counter()
                done = 0
                while done < 96:
                    torch.softmax(article(x), 1).cpu()
                    done += batch
                rates.append(done / (time.perf_counter() - start))
        rate = sorted(rates)[repeat // 2]
        best = max(best, (rate, batch))
    return {
        "evaluate_images": 1000,
        "evaluate_seconds": evaluate_seconds,
        "forward_images_per_second": best[0],
        "forward_batch": best[1],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--precision", default="default", choices=["default", "fp32", "bf16"])
    parser.add_argument("--repeat", type=int, default=3,
                        help="repetitions of each workload (medians), as kiln bench --repeat")
    parser.add_argument("--workload", action="append", default=[])
    parser.add_argument("--json")
    parser.add_argument("--ops", action="store_true")
    parser.add_argument("--inference", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    set_precision(args.precision)
    if args.inference:
        result = measure_inference(args.device)
        print(f"evaluate  {result['evaluate_images']} images of 28x28: "
              f"{result['evaluate_seconds']:.3f} s", file=sys.stderr)
        print(f"forward   224x224 article model: {result['forward_images_per_second']:.0f} img/s "
              f"(batch {result['forward_batch']}, no decoding)", file=sys.stderr)
        write_json(result, args.json)
        return
    chosen = [w for w in WORKLOADS if not args.workload or w[0] in args.workload]
    if args.ops and not args.workload:
        chosen = [w for w in chosen if w[0] != "case-study"]
    if args.ops:
        chosen = [w for w in chosen if w[0] not in BACKBONES]
    if not chosen:
        sys.exit(f"no such workload: {args.workload}")
    results = []
    if args.ops:
        for workload in chosen:
            for row in measure_ops(workload, args.device, args.warmup, args.steps):
                results.append(row)
                print(f"{row['workload']:<11} {row['op']:<24} {row['shape']:>16} "
                      f"{row['milliseconds']:>10.3f}", file=sys.stderr)
    else:
        for workload in chosen:
            result = measure_repeated(workload, args.device, args.warmup, args.steps, args.repeat,
                                      args.precision)
            results.append(result)
            print(f"{result['workload']:<11} {result['train_images_per_second']:>10.0f} img/s"
                  f" train  {result['eval_images_per_second']:>10.0f} img/s eval",
                  file=sys.stderr)
    write_json(results, args.json)


def write_json(value, path):
    """The results as JSON: to `path` when given, else to stdout."""
    text = json.dumps(value, indent=2)
    if path:
        with open(path, "w") as out:
            out.write(text)
    else:
        print(text)


if __name__ == "__main__":
    main()
