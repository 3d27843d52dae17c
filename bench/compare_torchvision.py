#!/usr/bin/env python3
"""Side by side, in one process: crossview's deform_conv2d op (libcrossview_torch_ops.so),
torchvision's deform_conv2d and torch.nn.functional.conv2d, forward and forward+backward, at the
ResNet50-D8 shapes of bench_deform_conv (N = 2, 3x3, padding = dilation).

    .venv/bin/python bench/compare_torchvision.py --lib build/lib/libcrossview_torch_ops.so [--threads 2]

Prints the median wall time of each and the ratios to conv2d. On a shared machine run it with
OMP_WAIT_POLICY=PASSIVE (idle OpenMP workers otherwise spin and steal the cores).
"""
import argparse
import statistics
import time

import torch
import torchvision

SHAPES = [(64, 97, 1), (128, 97, 1), (256, 49, 2), (512, 49, 4)]


def timed(fn, repeats):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lib", required=True, help="path to libcrossview_torch_ops.so")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.ops.load_library(args.lib)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, {args.threads} threads, "
          f"median of {args.repeats} (ms)")
    header = f"{'C':>4} {'HW':>3} {'dil':>3} {'mode':>8} | {'conv2d':>8} {'crossview':>10} {'torchvision':>12} | " \
             f"{'ours/conv':>9} {'tv/conv':>8} {'tv/ours':>8}"
    print(header)
    print("-" * len(header))
    for c, hw, d in SHAPES:
        x = torch.randn(2, c, hw, hw)
        w = torch.randn(c, c, 3, 3) * 0.05
        b = torch.randn(c)
        off = torch.randn(2, 18, hw, hw)
        grad = torch.randn(2, c, hw, hw)
        no_mask = torch.zeros(0)
        ops = {
            "conv2d": lambda x, w, b, off: torch.nn.functional.conv2d(x, w, b, 1, d, d),
            "crossview": lambda x, w, b, off: torch.ops.crossview.deform_conv2d(x, w, off, no_mask, b, 1, 1, d, d, d, d,
                                                                               1, 1, False),
            "torchvision": lambda x, w, b, off: torchvision.ops.deform_conv2d(x, off, w, b, padding=d, dilation=d),
        }
        for mode in ("forward", "fwd+bwd"):
            result = {}
            for name, op in ops.items():
                if mode == "forward":
                    def run():
                        with torch.no_grad():
                            op(x, w, b, off)
                else:
                    leaves = [t.clone().requires_grad_(True) for t in (x, w, b, off)]

                    def run():
                        op(*leaves).backward(grad)
                        for t in leaves:
                            t.grad = None
                result[name] = timed(run, args.repeats) * 1e3
            conv, ours, tv = result["conv2d"], result["crossview"], result["torchvision"]
            print(f"{c:>4} {hw:>3} {d:>3} {mode:>8} | {conv:8.1f} {ours:10.1f} {tv:12.1f} | "
                  f"{ours / conv:9.2f} {tv / conv:8.2f} {tv / ours:8.2f}", flush=True)


if __name__ == "__main__":
    main()
