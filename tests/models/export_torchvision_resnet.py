"""Exports randomly initialised torchvision ResNets and their stage outputs for
tests/models/test_torchvision_weights.cpp.

usage: export_torchvision_resnet.py OUT_DIR

For each case NAME it writes OUT_DIR/NAME_weights.pt (the state dict as a plain dict of float32
tensors, exactly the export documented in crossview/models/torchvision_weights.hpp) and
OUT_DIR/NAME_reference.pt (dict: "input" and "layer1".."layer4", float64, eval mode). BatchNorm
affine parameters and running statistics are randomised so that copying them is tested.
For every depth it also writes OUT_DIR/resnetDEPTH_shapes.pt: state-dict name -> its shape as an
int64 tensor (the layout the C++ ResNet must reproduce). OUT_DIR/ordered_dict.pt is what the
export must NOT be: a state_dict() saved as is (an OrderedDict, which libtorch cannot read).
"""
import os
import sys

import torch
import torchvision

CASES = {
    # name: (constructor, replace_stride_with_dilation, input shape)
    "resnet18": (torchvision.models.resnet18, [False, False, False], (2, 3, 64, 48)),
    "resnet50_os8": (torchvision.models.resnet50, [False, True, True], (1, 3, 64, 64)),
}


def main(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(7)
    torch.save(torch.nn.Linear(2, 2).state_dict(), os.path.join(out_dir, "ordered_dict.pt"))
    for depth in (18, 34, 50, 101):
        with torch.device("meta"):  # shapes only: skip the weight initialisation
            model = getattr(torchvision.models, f"resnet{depth}")()
        shapes = {k: torch.tensor(list(v.shape), dtype=torch.int64) for k, v in model.state_dict().items()}
        torch.save(shapes, os.path.join(out_dir, f"resnet{depth}_shapes.pt"))
    for name, (make, dilation, shape) in CASES.items():
        model = make(replace_stride_with_dilation=dilation)
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.normal_(0.0, 0.1)
                    m.running_mean.normal_(0.0, 0.1)
                    m.running_var.uniform_(0.5, 1.5)
                    m.num_batches_tracked.fill_(3)
        torch.save(dict(model.state_dict()), os.path.join(out_dir, f"{name}_weights.pt"))

        model = model.double().eval()
        x = torch.randn(shape, dtype=torch.float64)
        ref = {"input": x}
        with torch.no_grad():
            y = model.maxpool(model.relu(model.bn1(model.conv1(x))))
            for i in range(1, 5):
                y = getattr(model, f"layer{i}")(y)
                ref[f"layer{i}"] = y.clone()
        torch.save(ref, os.path.join(out_dir, f"{name}_reference.pt"))


if __name__ == "__main__":
    main(sys.argv[1])
