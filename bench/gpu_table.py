#!/usr/bin/env python3
"""The GPU check's table: kiln (CUDA f32, CUDA bf16, wgpu) against PyTorch (defaults, TF32 off,
bf16 autocast) on each workload, from the JSON files bench/gpu-run.sh wrote, with the ratios the
project's targets are stated in (above 1: kiln is faster) and whether each target is met.

    python3 bench/gpu_table.py RESULTS_DIR
"""
import json
import os
import sys

COLUMNS = [
    ("kiln-cuda-f32", "kiln f32"),
    ("kiln-cuda-bf16", "kiln bf16"),
    ("kiln-wgpu", "kiln wgpu"),
    ("torch-default", "torch def"),
    ("torch-fp32", "torch fp32"),
    ("torch-bf16", "torch bf16"),
]
# (name, numerator, denominator): the comparisons that are like for like.
RATIOS = [
    ("f32/def", "kiln-cuda-f32", "torch-default"),
    ("f32/fp32", "kiln-cuda-f32", "torch-fp32"),
    ("bf16/bf16", "kiln-cuda-bf16", "torch-bf16"),
    ("wgpu/def", "kiln-wgpu", "torch-default"),
]


def load(results, name):
    path = os.path.join(results, name + ".json")
    if not os.path.exists(path):
        return {}
    return {row["workload"]: row for row in json.load(open(path))}


def main(results):
    runs = {name: load(results, name) for name, _ in COLUMNS}
    workloads = []
    for rows in runs.values():
        workloads += [w for w in rows if w not in workloads]
    rate = lambda name, w: runs[name].get(w, {}).get("train_images_per_second")
    fmt = lambda v, spec: format(v, spec) if v is not None else "-"

    print("training images per second (median of the repetitions)")
    print(f"{'workload':<11}" + "".join(f"{title:>11}" for _, title in COLUMNS)
          + "".join(f"{name:>10}" for name, _, _ in RATIOS))
    for w in workloads:
        cells = "".join(f"{fmt(rate(name, w), '.0f'):>11}" for name, _ in COLUMNS)
        ratios = ""
        for _, top, bottom in RATIOS:
            a, b = rate(top, w), rate(bottom, w)
            ratios += f"{fmt(a / b if a and b else None, '.2f'):>10}"
        print(f"{w:<11}{cells}{ratios}")

    print()
    print("kiln's own loop against a bare burn loop on the same backend, and its loader wait")
    print(f"{'workload':<11}{'run':<16}{'kiln/bare':>10}{'loader':>8}{'eval img/s':>12}  device")
    for w in workloads:
        for name, _ in COLUMNS[:3]:
            row = runs[name].get(w)
            if row:
                print(f"{w:<11}{name:<16}{row['ratio_vs_bare']:>10.3f}"
                      f"{100 * row.get('loader_wait', 0):>7.0f}%"
                      f"{row['eval_images_per_second']:>12.0f}  {row['device']}")

    print()
    print("targets (H200):")
    checks = [
        ("case-study kiln f32 >= PyTorch defaults", "case-study", "kiln-cuda-f32", "torch-default", 1.0),
        ("case-study kiln bf16 >= PyTorch bf16 autocast", "case-study", "kiln-cuda-bf16", "torch-bf16", 1.0),
        ("mnist kiln f32 >= PyTorch defaults", "mnist", "kiln-cuda-f32", "torch-default", 1.0),
        ("small64 kiln f32 >= PyTorch defaults", "small64", "kiln-cuda-f32", "torch-default", 1.0),
    ]
    for title, w, top, bottom, bar in checks:
        a, b = rate(top, w), rate(bottom, w)
        verdict = "not measured" if not (a and b) else ("met" if a / b >= bar else "MISSED")
        ratio = f"{a / b:.2f}" if a and b else "-"
        print(f"  {title}: {ratio} ({verdict})")
    for name in ("kiln-cuda-f32", "kiln-cuda-bf16"):
        worst = min((r["ratio_vs_bare"] for r in runs[name].values()), default=None)
        verdict = "not measured" if worst is None else ("met" if worst >= 0.98 else "MISSED")
        print(f"  {name} kiln/bare >= 0.98 on every workload: worst {fmt(worst, '.3f')} ({verdict})")


if __name__ == "__main__":
    main(sys.argv[1])
