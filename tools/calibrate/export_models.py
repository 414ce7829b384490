#!/usr/bin/env python3
"""Exports the calibration models to ONNX (random weights: only shapes and costs matter).

torchvision gives MobileNet v2/v3, ResNet, SqueezeNet 1.1 and VGG16; the rest (MobileNet v1,
SSD/SSDLite heads, SSD ResNet-50 FPN, MLPerf's SSD-ResNet34, EfficientDet-Lite, YOLO, UNet-MobileNetV2, DeepLab v3)
are written here as plain modules that approximate the published architectures (see
docs/estimator.md). Ops our IR lacks are expressed with ops it has, at about the same cost:
  * nearest 2x upsampling = unsqueeze + broadcast multiply + reshape (one pass over the output);
  * bilinear upsampling of DeepLab's logits: the same, at the nearest factor;
  * YOLOv4's Mish = x * tanh(sigmoid(x)): Softplus -> Sigmoid, else the graph tensorrt_demos deploys;
  * YOLOv4-tiny's channel split = a 1x1 grouped conv that reads half the channels.
Usage: export_models.py OUT_DIR [MODEL ...]
"""
import math
import os
import sys

import torch
import torch.nn as nn
import torchvision.models as tvm


def conv_bn(cin, cout, k=3, s=1, groups=1, act="relu6"):
    layers = [nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    if act == "relu6":
        layers.append(nn.ReLU6())
    elif act == "relu":
        layers.append(nn.ReLU())
    elif act == "leaky":
        layers.append(nn.LeakyReLU(0.1))
    elif act == "mish":
        layers.append(Mish())
    return nn.Sequential(*layers)


class Mish(nn.Module):
    """Mish as the deployed YOLOv4 graphs have it: tensorrt_demos' yolo_to_onnx.py writes each Mish as
    ONNX Softplus -> Tanh -> Mul(x, .), which TensorRT 7 does not fuse into the conv (the product
    reads the conv output twice). Our IR has no Softplus: Sigmoid stands in (one unary pass)."""

    def forward(self, x):
        return x * torch.tanh(torch.sigmoid(x))


def sep_conv(cin, cout, s=1, act="relu6"):
    return nn.Sequential(conv_bn(cin, cin, 3, s, cin, act), conv_bn(cin, cout, 1, 1, 1, act))


class Upsample2x(nn.Module):
    """Nearest 2x upsampling with IR ops: [N,C,H,1,W,1] * ones[1,1,1,2,1,2] -> [N,C,2H,2W]."""

    def __init__(self, factor=2):
        super().__init__()
        self.factor = factor
        self.register_buffer("ones", torch.ones(1, 1, 1, factor, 1, factor))

    def forward(self, x):
        n, c, h, w = x.shape
        y = x.reshape(n, c, h, 1, w, 1) * self.ones
        return y.reshape(n, c, h * self.factor, w * self.factor)


# ---- MobileNet v1 (TF slim), with depth multiplier ----
def mobilenet_v1_features(alpha=1.0):
    cfg = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]
    c = lambda ch: max(8, int(ch * alpha))
    layers = [conv_bn(3, c(32), 3, 2)]
    cin = c(32)
    for cout, s in cfg:
        layers.append(sep_conv(cin, c(cout), s))
        cin = c(cout)
    return nn.Sequential(*layers), c


class MobileNetV1(nn.Module):
    def __init__(self, alpha=1.0, classes=1001):
        super().__init__()
        self.features, c = mobilenet_v1_features(alpha)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c(1024), classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


# ---- SSD heads ----
class SSDHead(nn.Module):
    """Box + class predictors on each feature map: kernel 1 (kind tf), 3 (caffe), separable (lite)."""

    def __init__(self, channels, anchors, classes, kind):
        super().__init__()
        self.box, self.cls = nn.ModuleList(), nn.ModuleList()
        for ch, a in zip(channels, anchors):
            for lst, out in ((self.box, a * 4), (self.cls, a * classes)):
                if kind == "lite":
                    lst.append(nn.Sequential(conv_bn(ch, ch, 3, 1, ch), nn.Conv2d(ch, out, 1)))
                else:
                    k = 3 if kind == "caffe" else 1
                    lst.append(nn.Conv2d(ch, out, k, 1, k // 2))

    def forward(self, feats):
        outs = []
        for f, b, c in zip(feats, self.box, self.cls):
            outs.append(torch.flatten(b(f).permute(0, 2, 3, 1), 1))
            outs.append(torch.flatten(c(f).permute(0, 2, 3, 1), 1))
        return torch.cat(outs, 1)


def extra_layers(cin, specs, lite):
    """TF object-detection 'extra feature maps': 1x1 reduce then 3x3 stride 2 (separable in SSDLite)."""
    layers = []
    for mid, out in specs:
        down = sep_conv(mid, out, 2) if lite else conv_bn(mid, out, 3, 2)
        layers.append(nn.Sequential(conv_bn(cin, mid, 1), down))
        cin = out
    return nn.ModuleList(layers)


class SSDMobileNetV1(nn.Module):
    def __init__(self, alpha=1.0, classes=91, kind="tf"):
        super().__init__()
        self.features, c = mobilenet_v1_features(alpha)
        self.split = 12  # conv_pw_11 (19x19) is the first feature map
        specs = [(256, 512), (128, 256), (128, 256), (64, 128)]
        if kind == "tf":
            specs = [(c(256) if alpha < 1 else 256, c(512) if alpha < 1 else 512), (128, 256), (128, 256), (64, 128)]
        self.extras = extra_layers(c(1024), specs, lite=kind == "lite")
        chans = [c(512), c(1024)] + [s[1] for s in specs]
        anchors = [3, 6, 6, 6, 4, 4] if kind == "caffe" else [3, 6, 6, 6, 6, 6]
        self.head = SSDHead(chans, anchors, classes, kind)

    def forward(self, x):
        feats = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i == self.split - 1:
                feats.append(x)
        feats.append(x)
        for e in self.extras:
            x = e(x)
            feats.append(x)
        return self.head(feats)


class SSDMobileNetV2(nn.Module):
    """TF OD API ssd(lite)_mobilenet_v2: maps at block 13 expansion (576 ch, /16) and the 1280 conv (/32)."""

    def __init__(self, classes=91, lite=False, head_kernel=3):
        super().__init__()
        f = tvm.mobilenet_v2().features
        self.stage1 = f[:14]
        self.expand = f[14].conv[0]  # 1x1 expansion to 576: the first feature map
        self.rest_dw = nn.Sequential(*f[14].conv[1:])
        self.stage2 = f[15:]
        self.extras = extra_layers(1280, [(256, 512), (128, 256), (128, 256), (64, 128)], lite)
        # The float TF1 zoo ssd_mobilenet_v2_coco has 3x3 box predictors (16.8 M params, a 67 MB
        # graph, and 2.4x SSDLite's latency in [NT-det]); the quantised model Coral and [AA] use
        # (ssd_mobilenet_v2_quantized_300x300_coco, ~6.7 MB) has 1x1 ones. See docs/estimator.md.
        kind = "lite" if lite else ("caffe" if head_kernel == 3 else "tf")
        self.head = SSDHead([576, 1280, 512, 256, 256, 128], [3, 6, 6, 6, 6, 6], classes, kind)

    def forward(self, x):
        x = self.stage1(x)
        e = self.expand(x)
        feats = [e]
        x = self.stage2(self.rest_dw(e))
        feats.append(x)
        for layer in self.extras:
            x = layer(x)
            feats.append(x)
        return self.head(feats)


class SSDLiteMobileNetV3(nn.Module):
    """ssdlite_mobilenet_v3_{large,small}: maps at the last /16 block's expansion and the final conv."""

    def __init__(self, large=True, classes=91):
        super().__init__()
        f = (tvm.mobilenet_v3_large() if large else tvm.mobilenet_v3_small()).features
        split = 13 if large else 9  # the first /32 block
        self.stage1 = f[:split]
        self.expand = f[split].block[0]
        self.rest = nn.Sequential(*f[split].block[1:])
        self.stage2 = f[split + 1:]
        c_exp = self.expand[0].out_channels
        c_last = f[-1][0].out_channels
        self.extras = extra_layers(c_last, [(256, 512), (128, 256), (128, 256), (64, 128)], True)
        self.head = SSDHead([c_exp, c_last, 512, 256, 256, 128], [3, 6, 6, 6, 6, 6], classes, "lite")

    def forward(self, x):
        x = self.stage1(x)
        e = self.expand(x)
        x = self.stage2(self.rest(e))
        feats = [e, x]
        for layer in self.extras:
            x = layer(x)
            feats.append(x)
        return self.head(feats)


class SSDResNet50FPN(nn.Module):
    """TF ssd_resnet50_v1_fpn 640: FPN P3-P7 at 256 ch, weight-shared 4-layer box/class towers."""

    def __init__(self, classes=90, anchors=6):
        super().__init__()
        r = tvm.resnet50()
        self.stem = nn.Sequential(r.conv1, r.bn1, r.relu, r.maxpool, r.layer1)
        self.c3, self.c4, self.c5 = r.layer2, r.layer3, r.layer4
        self.lat = nn.ModuleList([nn.Conv2d(c, 256, 1) for c in (512, 1024, 2048)])
        self.smooth = nn.ModuleList([nn.Conv2d(256, 256, 3, 1, 1) for _ in range(3)])
        self.p6 = nn.Conv2d(256, 256, 3, 2, 1)
        self.p7 = nn.Conv2d(256, 256, 3, 2, 1)
        self.up = Upsample2x()
        self.box_tower = nn.Sequential(*[conv_bn(256, 256, 3, act="relu6") for _ in range(4)])
        self.cls_tower = nn.Sequential(*[conv_bn(256, 256, 3, act="relu6") for _ in range(4)])
        self.box = nn.Conv2d(256, anchors * 4, 3, 1, 1)
        self.cls = nn.Conv2d(256, anchors * classes, 3, 1, 1)

    def forward(self, x):
        c3 = self.c3(self.stem(x))
        c4 = self.c4(c3)
        c5 = self.c5(c4)
        p5 = self.lat[2](c5)
        p4 = self.lat[1](c4) + self.up(p5)
        p3 = self.lat[0](c3) + self.up(p4)
        p3, p4, p5 = self.smooth[0](p3), self.smooth[1](p4), self.smooth[2](p5)
        p6 = self.p6(p5)
        p7 = self.p7(p6)
        outs = []
        for p in (p3, p4, p5, p6, p7):
            outs.append(torch.flatten(self.box(self.box_tower(p)), 1))
            outs.append(torch.flatten(self.cls(self.cls_tower(p)), 1))
        return torch.cat(outs, 1)



class SSDResNet34(nn.Module):
    """MLPerf Inference's ssd-resnet34 (1200 x 1200, the reference ssd_r34.py): torchvision ResNet-34
    through layer3 with layer3's first block at stride 1 (150 x 150 x 256), five extra blocks (1x1
    reduce, 3x3 with strides 2, 2, 2, 2 unpadded, 1 unpadded), 3x3 box/class heads of stride 3 on all
    six maps (50, 25, 13, 7, 3, 3; 4/6/6/6/4/4 anchors, 81 classes): 15130 boxes. NMS is not in the graph."""

    def __init__(self, classes=81):
        super().__init__()
        r = tvm.resnet34()
        b = r.layer3[0]
        b.conv1.stride = (1, 1)
        b.downsample[0].stride = (1, 1)
        self.backbone = nn.Sequential(r.conv1, r.bn1, r.relu, r.maxpool, r.layer1, r.layer2, r.layer3)
        chans = [256, 512, 512, 256, 256, 256]
        mids = [256, 256, 128, 128, 128]
        specs = [(2, 1), (2, 1), (2, 1), (2, 0), (1, 0)]  # (stride, padding) of each extra 3x3
        self.extras = nn.ModuleList([
            nn.Sequential(nn.Conv2d(cin, mid, 1), nn.ReLU(inplace=True),
                          nn.Conv2d(mid, cout, 3, stride, pad), nn.ReLU(inplace=True))
            for cin, cout, mid, (stride, pad) in zip(chans[:-1], chans[1:], mids, specs)])
        anchors = [4, 6, 6, 6, 4, 4]
        self.loc = nn.ModuleList([nn.Conv2d(c, a * 4, 3, 3, 1) for c, a in zip(chans, anchors)])
        self.conf = nn.ModuleList([nn.Conv2d(c, a * classes, 3, 3, 1) for c, a in zip(chans, anchors)])

    def forward(self, x):
        x = self.backbone(x)
        feats = [x]
        for e in self.extras:
            x = e(x)
            feats.append(x)
        outs = [torch.flatten(l(f), 1) for f, l in zip(feats, self.loc)]
        outs += [torch.flatten(c(f), 1) for f, c in zip(feats, self.conf)]
        return torch.cat(outs, 1)

# ---- EfficientNet-Lite / EfficientDet-Lite ----
class MBConv(nn.Module):
    def __init__(self, cin, cout, k, s, expand):
        super().__init__()
        mid = cin * expand
        layers = [conv_bn(cin, mid, 1)] if expand != 1 else []
        layers += [conv_bn(mid, mid, k, s, mid), conv_bn(mid, cout, 1, act=None)]
        self.body = nn.Sequential(*layers)
        self.residual = s == 1 and cin == cout

    def forward(self, x):
        y = self.body(x)
        return x + y if self.residual else y


def round_filters(c, width):
    c *= width
    new = max(8, int(c + 4) // 8 * 8)
    if new < 0.9 * c:
        new += 8
    return int(new)


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite: no SE, ReLU6, stem/head not scaled. Returns the /8, /16, /32 feature maps."""

    BLOCKS = [(1, 3, 1, 1, 16), (6, 3, 2, 2, 24), (6, 5, 2, 2, 40), (6, 3, 2, 3, 80), (6, 5, 1, 3, 112), (6, 5, 2, 4, 192), (6, 3, 1, 1, 320)]

    def __init__(self, width, depth):
        super().__init__()
        self.stem = conv_bn(3, 32, 3, 2)
        stages, cin = [], 32
        for i, (e, k, s, r, c) in enumerate(self.BLOCKS):
            cout = round_filters(c, width)
            reps = r if i in (0, len(self.BLOCKS) - 1) else int(math.ceil(r * depth))
            blocks = []
            for j in range(reps):
                blocks.append(MBConv(cin, cout, k, s if j == 0 else 1, e))
                cin = cout
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        self.out_channels = [round_filters(c, width) for c in (40, 112, 320)]

    def forward(self, x):
        x = self.stem(x)
        feats = []
        for i, st in enumerate(self.stages):
            x = st(x)
            if i in (2, 4, 6):
                feats.append(x)
        return feats


class BiFPNLayer(nn.Module):
    """One BiFPN layer over P3-P7 with fast normalised fusion (weights folded into Mul by constants)."""

    def __init__(self, ch):
        super().__init__()
        self.td = nn.ModuleList([sep_conv(ch, ch, act="relu6") for _ in range(4)])
        self.bu = nn.ModuleList([sep_conv(ch, ch, act="relu6") for _ in range(4)])
        self.up = Upsample2x()
        self.down = nn.MaxPool2d(3, 2, 1)

    def forward(self, p):
        td = [None] * 5
        td[4] = p[4]
        for i in (3, 2, 1, 0):
            up = self.up(td[i + 1])
            if up.shape[-1] != p[i].shape[-1]:  # odd sizes (e.g. 5 -> 3 -> 6): trim one row/column
                up = nn.functional.max_pool2d(up, 2, 1)
            td[i] = self.td[i](p[i] * 0.5 + up * 0.5)
        out = [td[0]]
        for i in (1, 2, 3, 4):
            extra = td[i] if i < 4 else 0
            out.append(self.bu[i - 1](p[i] * 0.33 + extra * 0.33 + self.down(out[-1]) * 0.33))
        return out


class EfficientDetLite(nn.Module):
    CFG = {0: (1.0, 1.0, 64, 3, 3), 1: (1.0, 1.1, 88, 4, 3), 2: (1.1, 1.2, 112, 5, 3), 3: (1.2, 1.4, 160, 6, 4), 4: (1.4, 1.8, 224, 7, 4)}

    def __init__(self, phi, classes=90, anchors=9):
        super().__init__()
        width, depth, ch, bifpn_layers, head_layers = self.CFG[phi]
        self.backbone = EfficientNetLite(width, depth)
        c3, c4, c5 = self.backbone.out_channels
        self.lat = nn.ModuleList([conv_bn(c, ch, 1, act=None) for c in (c3, c4, c5)])
        self.p6 = nn.Sequential(conv_bn(c5, ch, 1, act=None), nn.MaxPool2d(3, 2, 1))
        self.p7 = nn.MaxPool2d(3, 2, 1)
        self.bifpn = nn.Sequential(*[BiFPNLayer(ch) for _ in range(bifpn_layers)])
        self.box_tower = nn.Sequential(*[sep_conv(ch, ch, act="relu6") for _ in range(head_layers)])
        self.cls_tower = nn.Sequential(*[sep_conv(ch, ch, act="relu6") for _ in range(head_layers)])
        self.box = nn.Sequential(conv_bn(ch, ch, 3, 1, ch, None), nn.Conv2d(ch, anchors * 4, 1))
        self.cls = nn.Sequential(conv_bn(ch, ch, 3, 1, ch, None), nn.Conv2d(ch, anchors * classes, 1))

    def forward(self, x):
        c3, c4, c5 = self.backbone(x)
        p6 = self.p6(c5)
        p = [self.lat[0](c3), self.lat[1](c4), self.lat[2](c5), p6, self.p7(p6)]
        for layer in self.bifpn:
            p = layer(p)
        outs = []
        for f in p:
            outs.append(torch.flatten(self.box(self.box_tower(f)), 1))
            outs.append(torch.sigmoid(torch.flatten(self.cls(self.cls_tower(f)), 1)))
        return torch.cat(outs, 1)


# ---- YOLO (Darknet) ----
def dconv(cin, cout, k=3, s=1, act="leaky"):
    return conv_bn(cin, cout, k, s, 1, act)


class DarkRes(nn.Module):
    def __init__(self, ch, hidden=None, act="leaky"):
        super().__init__()
        self.body = nn.Sequential(dconv(ch, hidden or ch // 2, 1, act=act), dconv(hidden or ch // 2, ch, 3, act=act))

    def forward(self, x):
        return x + self.body(x)


class CSPStage(nn.Module):
    """CSPDarknet53 stage: downsample, split into two 1x1 branches, residual blocks, concat, fuse."""

    def __init__(self, cin, cout, blocks, first=False, act="mish"):
        super().__init__()
        self.down = dconv(cin, cout, 3, 2, act)
        half = cout if first else cout // 2
        self.part1 = dconv(cout, half, 1, act=act)
        self.part2 = dconv(cout, half, 1, act=act)
        self.blocks = nn.Sequential(*[DarkRes(half, cout // 2 if first else half, act) for _ in range(blocks)],
                                    dconv(half, half, 1, act=act))
        self.fuse = dconv(2 * half, cout, 1, act=act)

    def forward(self, x):
        x = self.down(x)
        return self.fuse(torch.cat([self.blocks(self.part2(x)), self.part1(x)], 1))


def yolo_head(cin, mid, anchors=3, classes=80):
    return nn.Sequential(dconv(cin, mid, 3), nn.Conv2d(mid, anchors * (5 + classes), 1))


class YOLOv3(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = dconv(3, 32)
        def stage(cin, cout, n):
            return nn.Sequential(dconv(cin, cout, 3, 2), *[DarkRes(cout) for _ in range(n)])
        self.s1, self.s2, self.s3 = stage(32, 64, 1), stage(64, 128, 2), stage(128, 256, 8)
        self.s4, self.s5 = stage(256, 512, 8), stage(512, 1024, 4)
        def neck(cin, c):
            return nn.Sequential(dconv(cin, c, 1), dconv(c, 2 * c), dconv(2 * c, c, 1), dconv(c, 2 * c), dconv(2 * c, c, 1))
        self.n5, self.n4, self.n3 = neck(1024, 512), neck(768, 256), neck(384, 128)
        self.r5, self.r4 = dconv(512, 256, 1), dconv(256, 128, 1)
        self.h5, self.h4, self.h3 = yolo_head(512, 1024), yolo_head(256, 512), yolo_head(128, 256)
        self.up = Upsample2x()

    def forward(self, x):
        c3 = self.s3(self.s2(self.s1(self.stem(x))))
        c4 = self.s4(c3)
        c5 = self.s5(c4)
        n5 = self.n5(c5)
        n4 = self.n4(torch.cat([self.up(self.r5(n5)), c4], 1))
        n3 = self.n3(torch.cat([self.up(self.r4(n4)), c3], 1))
        return [self.h5(n5), self.h4(n4), self.h3(n3)]


class YOLOv4(nn.Module):
    """CSPDarknet53 (Mish, as yolov4.cfg) + SPP + PANet (leaky)."""

    def __init__(self):
        super().__init__()
        self.stem = dconv(3, 32, act="mish")
        self.s1 = CSPStage(32, 64, 1, first=True)
        self.s2, self.s3 = CSPStage(64, 128, 2), CSPStage(128, 256, 8)
        self.s4, self.s5 = CSPStage(256, 512, 8), CSPStage(512, 1024, 4)
        self.pre_spp = nn.Sequential(dconv(1024, 512, 1), dconv(512, 1024), dconv(1024, 512, 1))
        self.pools = nn.ModuleList([nn.MaxPool2d(k, 1, k // 2) for k in (5, 9, 13)])
        self.post_spp = nn.Sequential(dconv(2048, 512, 1), dconv(512, 1024), dconv(1024, 512, 1))
        def five(cin, c):
            return nn.Sequential(dconv(cin, c, 1), dconv(c, 2 * c), dconv(2 * c, c, 1), dconv(c, 2 * c), dconv(2 * c, c, 1))
        self.r5, self.l4 = dconv(512, 256, 1), dconv(512, 256, 1)
        self.f4 = five(512, 256)
        self.r4, self.l3 = dconv(256, 128, 1), dconv(256, 128, 1)
        self.f3 = five(256, 128)
        self.d3, self.g4 = dconv(128, 256, 3, 2), five(512, 256)
        self.d4, self.g5 = dconv(256, 512, 3, 2), five(1024, 512)
        self.h3, self.h4, self.h5 = yolo_head(128, 256), yolo_head(256, 512), yolo_head(512, 1024)
        self.up = Upsample2x()

    def forward(self, x):
        c3 = self.s3(self.s2(self.s1(self.stem(x))))
        c4 = self.s4(c3)
        c5 = self.pre_spp(self.s5(c4))
        p5 = self.post_spp(torch.cat([c5] + [p(c5) for p in self.pools], 1))
        p4 = self.f4(torch.cat([self.l4(c4), self.up(self.r5(p5))], 1))
        p3 = self.f3(torch.cat([self.l3(c3), self.up(self.r4(p4))], 1))
        n4 = self.g4(torch.cat([self.d3(p3), p4], 1))
        n5 = self.g5(torch.cat([self.d4(n4), p5], 1))
        return [self.h3(p3), self.h4(n4), self.h5(n5)]


class YOLOv3Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        chans = [16, 32, 64, 128, 256]
        layers, cin = [], 3
        for c in chans:
            layers += [dconv(cin, c), nn.MaxPool2d(2, 2)]
            cin = c
        self.body = nn.Sequential(*layers)  # /32 after 5 pools; the 256-ch map at /16 is the route
        self.c5 = nn.Sequential(dconv(256, 512), nn.MaxPool2d(3, 1, 1), dconv(512, 1024), dconv(1024, 256, 1))
        self.h5 = yolo_head(256, 512)
        self.r = dconv(256, 128, 1)
        self.up = Upsample2x()
        self.h4 = yolo_head(384, 256)

    def forward(self, x):
        c4 = self.body[:9](x)  # the 256-channel map at /16 that the second head routes from
        c5 = self.c5(self.body[9](c4))
        return [self.h5(c5), self.h4(torch.cat([self.up(self.r(c5)), c4], 1))]


class TinyCSP(nn.Module):
    """YOLOv4-tiny CSP block; the channel split is a grouped 1x1 conv reading half the channels."""

    def __init__(self, c):
        super().__init__()
        self.conv1 = dconv(c, c)
        self.split = nn.Conv2d(c, c // 2, 1, groups=c // 2, bias=False)
        self.conv2 = dconv(c // 2, c // 2)
        self.conv3 = dconv(c // 2, c // 2)
        self.conv4 = dconv(c, c, 1)
        self.pool = nn.MaxPool2d(2, 2)

    def forward(self, x):
        x = self.conv1(x)
        h = self.conv2(self.split(x))
        h2 = self.conv3(h)
        f = self.conv4(torch.cat([h2, h], 1))
        return self.pool(torch.cat([x, f], 1)), f


class YOLOv4Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(dconv(3, 32, 3, 2), dconv(32, 64, 3, 2))
        self.b1, self.b2, self.b3 = TinyCSP(64), TinyCSP(128), TinyCSP(256)
        self.c5 = nn.Sequential(dconv(512, 512), dconv(512, 256, 1))
        self.h5 = yolo_head(256, 512)
        self.r = dconv(256, 128, 1)
        self.up = Upsample2x()
        self.h4 = yolo_head(384, 256)

    def forward(self, x):
        x, _ = self.b1(self.stem(x))
        x, _ = self.b2(x)
        x, f = self.b3(x)
        c5 = self.c5(x)
        return [self.h5(c5), self.h4(torch.cat([self.up(self.r(c5)), f], 1))]


# ---- segmentation ----
class UNetMobileNetV2(nn.Module):
    """Coral's UNet-MobileNetV2 (TF tutorial): MobileNetV2 encoder, pix2pix upsample blocks."""

    def __init__(self, classes=3):
        super().__init__()
        f = tvm.mobilenet_v2().features
        self.enc = nn.ModuleList([f[:2], f[2:4], f[4:7], f[7:14], f[14:18]])
        self.skip_ch = [16, 24, 32, 96]
        self.up = Upsample2x()
        self.dec = nn.ModuleList([conv_bn(320, 512, 3, act="relu"), conv_bn(512 + 96, 256, 3, act="relu"),
                                  conv_bn(256 + 32, 128, 3, act="relu"), conv_bn(128 + 24, 64, 3, act="relu")])
        self.last = nn.Conv2d(64 + 16, classes, 3, 1, 1)

    def forward(self, x):
        skips = []
        for e in self.enc:
            x = e(x)
            skips.append(x)
        x = skips.pop()
        for d in self.dec:
            x = torch.cat([d(self.up(x)), skips.pop()], 1)
        return self.up(self.last(x))


class DeepLabV3MobileNetV2(nn.Module):
    """Coral's DeepLab v3 (MobileNet v2, output stride 16, ASPP without atrous branches as in the TF-Lite model)."""

    def __init__(self, classes=21):
        super().__init__()
        f = tvm.mobilenet_v2().features
        for m in f[14:].modules():  # output stride 16: the last stride-2 becomes dilation 2
            if isinstance(m, nn.Conv2d) and m.stride == (2, 2):
                m.stride, m.dilation, m.padding = (1, 1), (2, 2), (2, 2)
        self.backbone = f[:-1]
        self.aspp = conv_bn(320, 256, 1, act="relu")
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.pool_conv = conv_bn(320, 256, 1, act="relu")
        self.proj = conv_bn(512, 256, 1, act="relu")
        self.logits = nn.Conv2d(256, classes, 1)
        self.up = Upsample2x(16)

    def forward(self, x):
        x = self.backbone(x)
        a = self.aspp(x)
        p = self.pool_conv(self.pool(x)) * torch.ones_like(a)
        y = self.logits(self.proj(torch.cat([a, p], 1)))
        return self.up(y)


# ---- ShuffleNet v1 (g=3) and v2 (1.0x), as ncnn's benchmark models ----
class ChannelShuffle(nn.Module):
    def __init__(self, groups):
        super().__init__()
        self.groups = groups

    def forward(self, x):
        n, c, h, w = x.shape
        return x.reshape(n, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class ShuffleV1Unit(nn.Module):
    """ShuffleNet v1 unit: grouped 1x1 -> shuffle -> depthwise 3x3 -> grouped 1x1 (+ residual or avg-pool concat)."""

    def __init__(self, cin, cout, stride, groups, first):
        super().__init__()
        self.stride = stride
        mid = cout // 4
        out = cout - cin if stride == 2 else cout
        g1 = 1 if first else groups
        self.body = nn.Sequential(conv_bn(cin, mid, 1, 1, g1, "relu"), ChannelShuffle(groups),
                                  conv_bn(mid, mid, 3, stride, mid, None), conv_bn(mid, out, 1, 1, groups, None))
        self.pool = nn.AvgPool2d(3, 2, 1) if stride == 2 else None

    def forward(self, x):
        y = self.body(x)
        if self.stride == 2:
            return torch.relu(torch.cat([self.pool(x), y], 1))
        return torch.relu(x + y)


class ShuffleNetV1(nn.Module):
    def __init__(self, groups=3, classes=1000):
        super().__init__()
        chans = {1: [144, 288, 576], 2: [200, 400, 800], 3: [240, 480, 960], 4: [272, 544, 1088], 8: [384, 768, 1536]}[groups]
        layers = [conv_bn(3, 24, 3, 2, 1, "relu"), nn.MaxPool2d(3, 2, 1)]
        cin = 24
        for stage, (cout, repeat) in enumerate(zip(chans, [4, 8, 4])):
            for i in range(repeat):
                layers.append(ShuffleV1Unit(cin, cout, 2 if i == 0 else 1, groups, stage == 0 and i == 0))
                cin = cout
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(self.features(x), 1), 1))


class ShuffleV2Unit(nn.Module):
    """ShuffleNet v2 unit; the channel split is two slices (our IR has Slice, not Split)."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.stride = stride
        half = cout // 2
        if stride == 2:
            self.branch1 = nn.Sequential(conv_bn(cin, cin, 3, 2, cin, None), conv_bn(cin, half, 1, 1, 1, "relu"))
            bin_ = cin
        else:
            self.branch1 = None
            bin_ = half
        self.branch2 = nn.Sequential(conv_bn(bin_, half, 1, 1, 1, "relu"), conv_bn(half, half, 3, stride, half, None),
                                     conv_bn(half, half, 1, 1, 1, "relu"))
        self.shuffle = ChannelShuffle(2)

    def forward(self, x):
        if self.stride == 2:
            y = torch.cat([self.branch1(x), self.branch2(x)], 1)
        else:
            c = x.shape[1] // 2
            y = torch.cat([x[:, :c], self.branch2(x[:, c:])], 1)
        return self.shuffle(y)


class ShuffleNetV2(nn.Module):
    def __init__(self, classes=1000):
        super().__init__()
        layers = [conv_bn(3, 24, 3, 2, 1, "relu"), nn.MaxPool2d(3, 2, 1)]
        cin = 24
        for cout, repeat in zip([116, 232, 464], [4, 8, 4]):
            for i in range(repeat):
                layers.append(ShuffleV2Unit(cin, cout, 2 if i == 0 else 1))
                cin = cout
        layers.append(conv_bn(cin, 1024, 1, 1, 1, "relu"))
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(1024, classes)

    def forward(self, x):
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(self.features(x), 1), 1))


def squeezenet():
    return tvm.squeezenet1_1()


# name -> (constructor, input size)
MODELS = {
    "mobilenet_v1": (lambda: MobileNetV1(), [224]),
    "mobilenet_v2": (lambda: tvm.mobilenet_v2(), [224]),
    "resnet18": (lambda: tvm.resnet18(), [224, 256]),
    "squeezenet1_1": (squeezenet, [224, 227]),
    "vgg16": (lambda: tvm.vgg16(), [224]),
    "vgg19": (lambda: tvm.vgg19(), [224]),
    "resnet152": (lambda: tvm.resnet152(), [299]),
    "alexnet": (lambda: tvm.alexnet(), [224]),
    "mnasnet1_0": (lambda: tvm.mnasnet1_0(), [224]),
    "regnety_400mf": (lambda: tvm.regnet_y_400mf(), [224]),
    "shufflenet_v1_g3": (lambda: ShuffleNetV1(3), [224]),
    "shufflenet_v2": (lambda: ShuffleNetV2(), [224]),
    "ssd_mobilenet_v1": (lambda: SSDMobileNetV1(), [300]),
    "ssd_mobilenet_v1_075": (lambda: SSDMobileNetV1(alpha=0.75), [300]),
    "ssdlite_mobilenet_v1": (lambda: SSDMobileNetV1(kind="lite"), [300]),
    "mobilenet_ssd_caffe": (lambda: SSDMobileNetV1(classes=21, kind="caffe"), [300]),
    "ssd_mobilenet_v2": (lambda: SSDMobileNetV2(), [300]),
    "ssd_mobilenet_v2_quant": (lambda: SSDMobileNetV2(head_kernel=1), [300]),
    "ssdlite_mobilenet_v2": (lambda: SSDMobileNetV2(lite=True), [300]),
    "ssdlite_mobilenet_v3_large": (lambda: SSDLiteMobileNetV3(True), [320]),
    "ssdlite_mobilenet_v3_small": (lambda: SSDLiteMobileNetV3(False), [320]),
    "ssd_resnet50_fpn": (lambda: SSDResNet50FPN(), [640]),
    "ssd_resnet34": (lambda: SSDResNet34(), [1200]),
    "efficientdet_lite0": (lambda: EfficientDetLite(0), [320]),
    "efficientdet_lite1": (lambda: EfficientDetLite(1), [384]),
    "efficientdet_lite2": (lambda: EfficientDetLite(2), [448]),
    "efficientdet_lite4": (lambda: EfficientDetLite(4), [640]),
    "yolov3_tiny": (lambda: YOLOv3Tiny(), [416]),
    "yolov4_tiny": (lambda: YOLOv4Tiny(), [416]),
    "yolov3": (lambda: YOLOv3(), [608]),
    "yolov4": (lambda: YOLOv4(), [416, 608]),
    "unet_mobilenet_v2": (lambda: UNetMobileNetV2(), [128]),
    "deeplabv3_mobilenet_v2": (lambda: DeepLabV3MobileNetV2(), [513]),
}


def main():
    out = sys.argv[1]
    names = sys.argv[2:] or list(MODELS)
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    for name in names:
        ctor, sizes = MODELS[name]
        model = ctor().eval()
        for size in sizes:
            path = os.path.join(out, f"{name}_{size}.onnx")
            if os.path.exists(path):
                continue
            x = torch.randn(1, 3, size, size)
            with torch.no_grad():
                torch.onnx.export(model, x, path, opset_version=13, do_constant_folding=True,
                                  input_names=["input"])
            print("wrote", path, flush=True)


if __name__ == "__main__":
    main()
