"""torch.ops.crossview.deform_conv2d (libcrossview_torch_ops.so, path in $CROSSVIEW_TORCH_OPS)
against torchvision.ops.deform_conv2d: outputs and all gradients in float64 over random
configurations (strides, paddings, dilations 1-4, groups, offset groups, mask, bias, offsets that
leave the image, non-square kernels, batch 1, odd sizes), and the backend kernel alone (inference
mode)."""
import os
import random

import pytest
import torch
import torchvision

LIB = os.environ.get("CROSSVIEW_TORCH_OPS")
pytestmark = pytest.mark.skipif(not LIB, reason="CROSSVIEW_TORCH_OPS (path to libcrossview_torch_ops.so) not set")


@pytest.fixture(scope="module", autouse=True)
def load_ops():
    torch.ops.load_library(LIB)
    torch.set_num_threads(2)


def out_size(size, k, s, p, d):
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def random_config(rng):
    while True:
        groups = rng.choice([1, 1, 2, 3])
        offset_groups = rng.choice([1, 1, 2, 4])
        cin = groups * offset_groups * rng.choice([1, 2])
        cout = groups * rng.randint(1, 3)
        kh, kw = rng.randint(1, 3), rng.randint(1, 3)
        sh, sw = rng.randint(1, 3), rng.randint(1, 3)
        ph, pw = rng.randint(0, 2), rng.randint(0, 2)
        dh, dw = rng.randint(1, 4), rng.randint(1, 4)
        h, w = rng.randint(3, 13), rng.randint(3, 13)
        if out_size(h, kh, sh, ph, dh) > 0 and out_size(w, kw, sw, pw, dw) > 0:
            return dict(n=rng.choice([1, 2, 3]), cin=cin, cout=cout, h=h, w=w, kh=kh, kw=kw, stride=(sh, sw),
                        padding=(ph, pw), dilation=(dh, dw), groups=groups, offset_groups=offset_groups,
                        use_mask=rng.random() < 0.5, use_bias=rng.random() < 0.5,
                        offset_scale=rng.choice([0.5, 2.0, 6.0]))


def make_inputs(c, gen, dtype=torch.float64):
    oh = out_size(c["h"], c["kh"], c["stride"][0], c["padding"][0], c["dilation"][0])
    ow = out_size(c["w"], c["kw"], c["stride"][1], c["padding"][1], c["dilation"][1])
    taps = c["offset_groups"] * c["kh"] * c["kw"]
    x = torch.randn(c["n"], c["cin"], c["h"], c["w"], generator=gen, dtype=dtype)
    weight = torch.randn(c["cout"], c["cin"] // c["groups"], c["kh"], c["kw"], generator=gen, dtype=dtype)
    offset = torch.randn(c["n"], 2 * taps, oh, ow, generator=gen, dtype=dtype) * c["offset_scale"]
    mask = torch.rand(c["n"], taps, oh, ow, generator=gen, dtype=dtype) if c["use_mask"] else None
    bias = torch.randn(c["cout"], generator=gen, dtype=dtype) if c["use_bias"] else None
    return x, weight, offset, mask, bias


def ours(x, weight, offset, mask, bias, c):
    (sh, sw), (ph, pw), (dh, dw) = c["stride"], c["padding"], c["dilation"]
    use_mask = mask is not None
    m = mask if use_mask else torch.zeros(0, dtype=x.dtype)
    b = bias if bias is not None else torch.zeros(weight.shape[0], dtype=x.dtype)
    return torch.ops.crossview.deform_conv2d(x, weight, offset, m, b, sh, sw, ph, pw, dh, dw, c["groups"],
                                             c["offset_groups"], use_mask)


def theirs(x, weight, offset, mask, bias, c):
    return torchvision.ops.deform_conv2d(x, offset, weight, bias, stride=c["stride"], padding=c["padding"],
                                         dilation=c["dilation"], mask=mask)


@pytest.mark.parametrize("seed", range(60))
def test_matches_torchvision(seed):
    rng = random.Random(seed)
    gen = torch.Generator().manual_seed(seed)
    c = random_config(rng)
    base = make_inputs(c, gen)
    results = []
    for fn in (ours, theirs):
        leaves = [t.clone().requires_grad_(True) if t is not None else None for t in base]
        y = fn(*leaves, c)
        r = torch.randn(y.shape, generator=torch.Generator().manual_seed(seed + 1000), dtype=y.dtype)
        (y * r).sum().backward()
        results.append([y.detach()] + [t.grad for t in leaves if t is not None])
    for name, a, b in zip(["output", "input", "weight", "offset", "mask/bias", "bias"], *results):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9, msg=lambda m: f"{name} differs for {c}: {m}")


def test_float32_matches_torchvision():
    gen = torch.Generator().manual_seed(7)
    c = dict(n=2, cin=8, cout=6, h=17, w=15, kh=3, kw=3, stride=(1, 1), padding=(2, 2), dilation=(2, 2), groups=2,
             offset_groups=2, use_mask=True, use_bias=True, offset_scale=2.0)
    args = make_inputs(c, gen, torch.float32)
    torch.testing.assert_close(ours(*args, c), theirs(*args, c), rtol=1e-4, atol=1e-4)


def test_same_schema_as_torchvision():
    ours_schema = str(torch.ops.crossview.deform_conv2d.default._schema)
    theirs_schema = str(torch.ops.torchvision.deform_conv2d.default._schema)
    names = lambda s: [a.split(" ")[-1] for a in s[s.index("(") + 1:s.index(")")].split(", ")]
    assert names(ours_schema) == names(theirs_schema)


def test_error_names_the_argument():
    x = torch.randn(1, 4, 8, 8)
    w = torch.randn(6, 4, 3, 3)
    with pytest.raises(RuntimeError, match=r"deform_conv2d: offset must have 2\*offset_groups\*kh\*kw = 18 channels, got 16"):
        torch.ops.crossview.deform_conv2d(x, w, torch.randn(1, 16, 6, 6), torch.zeros(0), torch.zeros(6), 1, 1, 0, 0,
                                          1, 1, 1, 1, False)


@pytest.mark.parametrize("seed", range(5))
def test_inference_mode_matches_torchvision(seed):
    # Inference mode skips the op's Autograd key: this runs the CPU backend kernel of the library.
    rng = random.Random(seed)
    gen = torch.Generator().manual_seed(seed)
    c = random_config(rng)
    args = make_inputs(c, gen)
    with torch.inference_mode():
        y = ours(*args, c)
        ref = theirs(*args, c)
    assert not y.requires_grad
    torch.testing.assert_close(y, ref, rtol=1e-9, atol=1e-9)
