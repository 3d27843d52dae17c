#!/usr/bin/env python3
"""CUDA side by side, in one process: crossview's deform_conv2d op (libcrossview_torch_ops.so with
the crossview::cuda kernels), torchvision's CUDA deform_conv2d and cuDNN's conv2d, forward and
forward+backward, float32, at the ResNet50-D8 shapes of bench_deform_conv (N = 2, 3x3,
padding = dilation) and at the paper's batch (N = 8). Times are CUDA-event medians; each case
first checks that ours and torchvision's outputs agree.

    .venv/bin/python bench/cuda_vs_torchvision.py --lib build-gpu/lib/libcrossview_torch_ops.so [--repeats 20]
"""
import argparse
import statistics

import torch
import torchvision

SHAPES = [(2, 64, 97, 1), (2, 128, 97, 1), (2, 256, 49, 2), (2, 512, 49, 4), (8, 256, 97, 2)]


def timed(fn, repeats):
    fn()  # warm-up (and cuDNN's algorithm choice)
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lib", required=True, help="path to libcrossview_torch_ops.so")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("cuda_vs_torchvision.py: no CUDA device is available")
    torch.ops.load_library(args.lib)
    torch.manual_seed(0)
    device = torch.device("cuda")
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, {torch.cuda.get_device_name()}, "
          f"median of {args.repeats} (ms, CUDA events)")
    header = f"{'N':>2} {'C':>4} {'HW':>3} {'dil':>3} {'mode':>8} | {'conv2d':>8} {'crossview':>10} " \
             f"{'torchvision':>12} | {'ours/conv':>9} {'tv/ours':>8}"
    print(header)
    print("-" * len(header))
    for n, c, hw, d in SHAPES:
        x = torch.randn(n, c, hw, hw, device=device)
        w = torch.randn(c, c, 3, 3, device=device) * 0.05
        b = torch.randn(c, device=device)
        off = torch.randn(n, 18, hw, hw, device=device)
        grad = torch.randn(n, c, hw, hw, device=device)
        no_mask = torch.zeros(0, device=device)
        ops = {
            "conv2d": lambda x, w, b, off: torch.nn.functional.conv2d(x, w, b, 1, d, d),
            "crossview": lambda x, w, b, off: torch.ops.crossview.deform_conv2d(x, w, off, no_mask, b, 1, 1, d, d, d, d,
                                                                               1, 1, False),
            "torchvision": lambda x, w, b, off: torchvision.ops.deform_conv2d(x, off, w, b, padding=d, dilation=d),
        }
        diff = (ops["crossview"](x, w, b, off) - ops["torchvision"](x, w, b, off)).abs().max().item()
        if diff > 1e-3:
            raise SystemExit(f"cuda_vs_torchvision.py: outputs differ by {diff} at N={n} C={c} HW={hw} d={d}")
        for mode in ("forward", "fwd+bwd"):
            result = {}
            for name, op in ops.items():
                leaves = [t.clone().requires_grad_(mode == "fwd+bwd") for t in (x, w, b, off)]

                def step(op=op, leaves=leaves):
                    y = op(*leaves)
                    if mode == "fwd+bwd":
                        y.backward(grad)

                with torch.set_grad_enabled(mode == "fwd+bwd"):
                    result[name] = timed(step, args.repeats)
            print(f"{n:>2} {c:>4} {hw:>3} {d:>3} {mode:>8} | {result['conv2d']:8.3f} {result['crossview']:10.3f} "
                  f"{result['torchvision']:12.3f} | {result['crossview'] / result['conv2d']:9.2f} "
                  f"{result['torchvision'] / result['crossview']:8.2f}")


if __name__ == "__main__":
    main()
