"""Regenerates the small ONNX test models here: /usr/bin/python3 make_models.py (torch 1.13)."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class Net(nn.Module):
    def __init__(self, fixed_view):
        super().__init__()
        self.fixed_view = fixed_view
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4 * 14 * 14, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu6(self.bn(self.conv(x))), 2, ceil_mode=True)
        x = x.view(10, -1) if self.fixed_view else x.view(x.size(0), -1)
        x = x * torch.sigmoid(x)
        return F.log_softmax(self.fc(x), dim=1)


torch.manual_seed(0)
torch.onnx.export(Net(True).eval(), torch.randn(10, 1, 28, 28), "torch_fixed_batch10_view_op9.onnx", opset_version=9)
torch.onnx.export(Net(False).eval(), torch.randn(2, 1, 28, 28), "torch_dynamic_view_size0_op13.onnx", opset_version=13,
                  input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
