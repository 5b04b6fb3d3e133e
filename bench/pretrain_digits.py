#!/usr/bin/env python3
"""Pretrains torchvision's ResNet-18 on kiln's bundled UCI digits (8x8, upscaled to 32x32, grey
repeated into three channels, ImageNet's normalisation as kiln applies it to pretrained weights)
and saves its state_dict: a pretrained weights file made the way a user makes one, for
bench/fine-tune.sh to fine-tune on MNIST.

    python3 bench/pretrain_digits.py OUT.pth [--epochs N]
"""
import argparse
import gzip
import os

import torch
import torchvision
from torch import nn
from torch.nn import functional as F


def load_digits(path):
    rows = []
    with gzip.open(path, "rt") as f:
        for line in f:
            values = [float(v) for v in line.strip().split(",")]
            rows.append(values)
    data = torch.tensor(rows)
    pixels, labels = data[:, :-1] / 16.0, data[:, -1].long()
    images = pixels.reshape(-1, 1, 8, 8)
    images = F.interpolate(images, size=(32, 32), mode="bilinear", align_corners=False)
    images = images.repeat(1, 3, 1, 1)
    mean = torch.tensor([0.485, 0.456, 0.406]).reshape(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).reshape(1, 3, 1, 1)
    return (images - mean) / std, labels


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--epochs", type=int, default=8)
    args = parser.parse_args()
    here = os.path.dirname(os.path.abspath(__file__))
    images, labels = load_digits(os.path.join(here, "..", "data", "digits.csv.gz"))
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None, num_classes=10)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(len(labels))
        correct = 0
        for start in range(0, len(order), 64):
            batch = order[start:start + 64]
            optimizer.zero_grad()
            logits = model(images[batch])
            loss = loss_fn(logits, labels[batch])
            loss.backward()
            optimizer.step()
            correct += (logits.argmax(1) == labels[batch]).sum().item()
        print(f"pretraining on digits: epoch {epoch + 1}, train accuracy "
              f"{correct / len(labels):.3f}", flush=True)
    torch.save(model.state_dict(), args.out)


if __name__ == "__main__":
    main()
