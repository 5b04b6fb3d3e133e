"""Builds torchvision's ResNet-18 and MobileNetV2 with random weights (batch norm's running
statistics and affine parameters randomised too, so inference-mode batch norm is exercised),
saves each state_dict as .pth and .safetensors, and writes the logits of a fixed batch of images
as JSON: the reference kiln's backbones are compared with (tests/backbones.rs)."""

import json
import sys

import torch
import torchvision
from safetensors.torch import save_file

out = sys.argv[1]
torch.manual_seed(1)
images = torch.randn(2, 3, 64, 64)
reference = {"images": images.flatten().tolist(), "models": {}}
for name in ["resnet18", "mobilenet_v2"]:
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(weights=None)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.normal_(0.0, 0.1)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0.0, 0.1)
    model.eval()
    state = model.state_dict()
    torch.save(state, f"{out}/{name}.pth")
    save_file({k: v.contiguous() for k, v in state.items()}, f"{out}/{name}.safetensors")
    with torch.no_grad():
        logits = model(images)
    reference["models"][name] = {
        "logits": logits.flatten().tolist(),
        "parameters": sum(p.numel() for p in model.parameters()),
    }
with open(f"{out}/reference.json", "w") as f:
    json.dump(reference, f)
