"""A model trained by crossview-train, read by Python: torch.load(model.weights.pt) with its default
weights_only=True, loaded into an independent Python reference of the network -- torchvision's
ResNet-50 with stages 3 and 4 dilated (replace_stride_with_dilation), its 3x3 block convs replaced
by a short GGDC (Sobel gradients -> conv offset head -> torchvision.ops.deform_conv2d), and a short
PSPNet head -- which must give the logits crossview-eval computes (its hidden --dump-logits hook)
on the same input.

Needs the built programs: $CROSSVIEW_BIN_DIR/crossview-train and crossview-eval (CTest sets it).
"""
import json
import os
import subprocess

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

BIN = os.environ.get("CROSSVIEW_BIN_DIR")
pytestmark = pytest.mark.skipif(
    not BIN or not os.path.exists(os.path.join(BIN, "crossview-train")),
    reason="CROSSVIEW_BIN_DIR with the built crossview-train and crossview-eval not set")

# A full-width ResNet-50 (torchvision's widths), GGDC in every block, two training steps with a
# larger offset learning rate than the default 0.1 so that the learned offsets are clearly not zero
# (at 50 they blow up to inf in two steps, where torchvision.ops.deform_conv2d crashes).
TRAIN_ARGS = ["--variants", "vvd+ggdc+closs", "--depth", "50", "--width", "1", "--deep-stem", "false",
              "--ggdc-gradient", "sobel", "--ggdc-head-channels", "0", "--iterations", "2", "--batch", "2",
              "--crop", "32", "--train-images", "2", "--eval-images", "1", "--eval-height", "48", "--eval-width", "64",
              "--warmup", "0", "--closs-start", "0", "--checkpoint-every", "1", "--offset-lr-mult", "2",
              "--figure-samples", "1", "--threads", "2", "--quiet"]


def sobel(x):
    """Sobel x and y gradients of every channel, replicate padding: [N, 2C, H, W] as (gx, gy) pairs."""
    k = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=x.dtype) / 8
    w = torch.stack([k, k.t()]).unsqueeze(1).repeat(x.shape[1], 1, 1, 1)
    return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), w, groups=x.shape[1])


class GGDC(nn.Module):
    """Gradient guided deformable conv (paper Eq. 5-8) in place of `conv`: offsets from a 3x3 conv
    on the Sobel gradients of the input, then torchvision's deform_conv2d with conv's geometry."""

    def __init__(self, conv):
        super().__init__()
        self.stride, self.padding, self.dilation = conv.stride, conv.padding, conv.dilation
        self.weight = nn.Parameter(torch.empty_like(conv.weight))
        self.offset_head = nn.Module()
        self.offset_head.output = nn.Conv2d(2 * conv.in_channels, 18, 3, stride=conv.stride, padding=conv.padding,
                                            dilation=conv.dilation)

    def forward(self, x):
        offset = self.offset_head.output(sobel(x))
        return torchvision.ops.deform_conv2d(x, offset, self.weight, None, stride=self.stride, padding=self.padding,
                                             dilation=self.dilation)


def conv_bn_relu(cin, cout, k):
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


class PSPNet(nn.Module):
    """PSPNet (bins 1, 2, 3, 6) on torchvision's dilated ResNet-50 with GGDC in every block."""

    def __init__(self, num_classes, channels=512, aux_channels=256):
        super().__init__()
        self.backbone = torchvision.models.resnet50(weights=None, replace_stride_with_dilation=[False, True, True])
        del self.backbone.fc
        for layer in (self.backbone.layer1, self.backbone.layer2, self.backbone.layer3, self.backbone.layer4):
            for block in layer:
                block.conv2 = GGDC(block.conv2)
        self.ppm = nn.ModuleList([
            nn.Sequential(nn.AdaptiveAvgPool2d(b), nn.Conv2d(2048, channels, 1, bias=False), nn.BatchNorm2d(channels),
                          nn.ReLU()) for b in (1, 2, 3, 6)])
        self.bottleneck = conv_bn_relu(2048 + 4 * channels, channels, 3)
        self.classifier = nn.Conv2d(channels, num_classes, 1)
        # The auxiliary FCN head (training only): present so that the state dict loads strictly.
        self.aux = nn.Sequential(*conv_bn_relu(1024, aux_channels, 3), nn.Dropout2d(0.1),
                                 nn.Conv2d(aux_channels, num_classes, 1))

    def forward(self, x):
        b = self.backbone
        f = b.maxpool(b.relu(b.bn1(b.conv1(x))))
        f = b.layer4(b.layer3(b.layer2(b.layer1(f))))
        size = f.shape[-2:]
        pooled = [F.interpolate(branch(f), size=size, mode="bilinear", align_corners=False) for branch in self.ppm]
        head = self.bottleneck(torch.cat([f] + pooled, 1))
        return F.interpolate(self.classifier(head), size=x.shape[-2:], mode="bilinear", align_corners=False)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("python_weights")
    train = subprocess.run([os.path.join(BIN, "crossview-train"), *TRAIN_ARGS, "--out", str(out / "run")],
                           capture_output=True, text=True, timeout=900)
    assert train.returncode == 0, train.stdout + train.stderr
    model = out / "run" / "vvd_ggdc_closs" / "model.pt"
    probe = out / "probe.pt"
    evaluate = subprocess.run([os.path.join(BIN, "crossview-eval"), "--checkpoint", str(model), "--eval-images", "1",
                               "--eval-height", "48", "--eval-width", "64", "--threads", "2", "--quiet",
                               "--dump-logits", str(probe), "--out", str(out / "eval")],
                              capture_output=True, text=True, timeout=900)
    assert evaluate.returncode == 0, evaluate.stdout + evaluate.stderr
    return model, probe


def test_torch_load_reads_the_export_with_weights_only(trained):
    model, _ = trained
    export = model.with_name("model.weights.pt")
    assert export.exists(), "crossview-train writes model.weights.pt beside model.pt"
    loaded = torch.load(export)  # the default: weights_only=True
    config = json.loads(loaded["config"])
    assert config["variant"] == "vvd+ggdc+closs"
    assert config["model"]["depth"] == 50 and config["model"]["ggdc"]
    assert loaded["iteration"] == 2
    state = loaded["state_dict"]
    assert state["backbone.conv1.weight"].shape == (64, 3, 7, 7)
    assert state["backbone.layer4.2.conv2.offset_head.output.weight"].shape == (18, 1024, 3, 3)
    assert all(isinstance(t, torch.Tensor) for t in state.values())
    # The learned offsets are not zero (else GGDC would be a plain conv and the logits test weak).
    assert state["backbone.layer1.0.conv2.offset_head.output.weight"].abs().max() > 0
    with pytest.raises(Exception):
        torch.load(model)  # the libtorch archive itself is no pickle Python can read: hence the export


def test_python_reference_gives_the_same_logits(trained):
    model, probe = trained
    loaded = torch.load(model.with_name("model.weights.pt"))
    config = json.loads(loaded["config"])
    net = PSPNet(config["num_classes"])
    net.load_state_dict(loaded["state_dict"], strict=True)  # the same names, every tensor used
    net.eval()
    reference = torch.load(probe)
    with torch.no_grad():
        logits = net(reference["input"])
    assert logits.shape == reference["logits"].shape
    scale = reference["logits"].abs().max().item()
    torch.testing.assert_close(logits, reference["logits"], rtol=1e-4, atol=1e-4 * max(1.0, scale))
