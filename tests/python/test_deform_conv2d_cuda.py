"""torch.ops.crossview.deform_conv2d on CUDA tensors (the crossview::cuda kernels in
libcrossview_torch_ops.so, path in $CROSSVIEW_TORCH_OPS) against torchvision's CUDA op and against
our own CPU kernel: outputs and every gradient, in float64 over the random configurations of
test_deform_conv2d.py and in float32 at a ResNet block's shape. Skipped without a CUDA device
(cmake/gpu_check.sh runs it on one)."""
import os
import random

import pytest
import torch
import torchvision

from test_deform_conv2d import make_inputs, ours, random_config, theirs

LIB = os.environ.get("CROSSVIEW_TORCH_OPS")
pytestmark = [
    pytest.mark.skipif(not LIB, reason="CROSSVIEW_TORCH_OPS (path to libcrossview_torch_ops.so) not set"),
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
]


@pytest.fixture(scope="module", autouse=True)
def load_ops():
    torch.ops.load_library(LIB)


def ours_on(x, weight, offset, mask, bias, c):
    (sh, sw), (ph, pw), (dh, dw) = c["stride"], c["padding"], c["dilation"]
    use_mask = mask is not None
    m = mask if use_mask else torch.zeros(0, dtype=x.dtype, device=x.device)
    b = bias if bias is not None else torch.zeros(weight.shape[0], dtype=x.dtype, device=x.device)
    return torch.ops.crossview.deform_conv2d(x, weight, offset, m, b, sh, sw, ph, pw, dh, dw, c["groups"],
                                             c["offset_groups"], use_mask)


def output_and_grads(fn, base, c, device, seed):
    leaves = [t.to(device).clone().requires_grad_(True) if t is not None else None for t in base]
    y = fn(*leaves, c)
    r = torch.randn(y.shape, generator=torch.Generator().manual_seed(seed + 1000), dtype=y.dtype).to(device)
    (y * r).sum().backward()
    return [y.detach().cpu()] + [t.grad.cpu() for t in leaves if t is not None]


@pytest.mark.parametrize("seed", range(30))
def test_cuda_matches_torchvision_cuda_and_our_cpu_kernel(seed):
    rng = random.Random(seed)
    c = random_config(rng)
    base = make_inputs(c, torch.Generator().manual_seed(seed))
    cuda_ours = output_and_grads(ours_on, base, c, "cuda", seed)
    cuda_theirs = output_and_grads(theirs, base, c, "cuda", seed)
    cpu_ours = output_and_grads(ours_on, base, c, "cpu", seed)
    names = ["output", "input", "weight", "offset", "mask/bias", "bias"]
    for name, a, b, cpu in zip(names, cuda_ours, cuda_theirs, cpu_ours):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9, msg=lambda m: f"{name} vs torchvision for {c}: {m}")
        torch.testing.assert_close(a, cpu, rtol=1e-9, atol=1e-9, msg=lambda m: f"{name} vs our CPU for {c}: {m}")


def test_cuda_float32_resnet_block_matches_torchvision():
    gen = torch.Generator().manual_seed(3)
    c = dict(n=2, cin=64, cout=64, h=33, w=41, kh=3, kw=3, stride=(1, 1), padding=(2, 2), dilation=(2, 2), groups=1,
             offset_groups=1, use_mask=False, use_bias=True, offset_scale=2.0)
    args = [t.cuda() if t is not None else None for t in make_inputs(c, gen, torch.float32)]
    torch.testing.assert_close(ours_on(*args, c), theirs(*args, c), rtol=1e-4, atol=1e-4)
