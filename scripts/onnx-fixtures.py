#!/usr/bin/python3
"""Exports the ONNX files the import tests and `make bench` read, with PyTorch (Debian's python3-torch and
python3-torchvision), and PyTorch's own answers to check the import against. Nothing here is committed: `make test`
runs this when the folder is missing (scripts/onnx-fixtures.sh).

Usage: scripts/onnx-fixtures.py OUT_DIR [--bench]

For each model NAME it writes:
  NAME.onnx         torch.onnx.export in training mode (TrainingMode.TRAINING, no constant folding): batch norm stays
                    a BatchNormalization node with its own parameters (an eval-mode export folds it into the
                    convolution, and PyTorch's parameter count no longer matches), dropout stays a Dropout node.
  NAME.json         {"input": [shape], "output": [shape], "parameters": PyTorch's count, "opset": N,
                     "input_dtype": "float32" | "int64"}
  NAME.input.bin    the input, little-endian float32 (int64 for token ids)
  NAME.output.bin   PyTorch's output for it in evaluation mode (float32)
--bench adds a GPT-2-small-sized decoder (import time in make bench; no reference outputs needed).
"""
import json
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from torchvision.models.vision_transformer import VisionTransformer


class Block(nn.Module):
    """A GPT-2-style pre-norm decoder block; the causal mask is an additive buffer (0 on and below the diagonal,
    -inf above), as many exported decoders carry it."""

    def __init__(self, d, heads, seq):
        super().__init__()
        self.heads = heads
        self.ln_1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln_2 = nn.LayerNorm(d)
        self.fc = nn.Linear(d, 4 * d)
        self.out = nn.Linear(4 * d, d)
        self.register_buffer("mask", torch.triu(torch.full((seq, seq), float("-inf")), 1))

    def forward(self, x):
        b, s, d = x.shape
        h = self.heads
        q, k, v = self.qkv(self.ln_1(x)).split(d, dim=-1)
        q = q.reshape(b, s, h, d // h).transpose(1, 2)
        k = k.reshape(b, s, h, d // h).transpose(1, 2)
        v = v.reshape(b, s, h, d // h).transpose(1, 2)
        att = q @ k.transpose(-2, -1) / math.sqrt(d // h) + self.mask
        y = (att.softmax(-1) @ v).transpose(1, 2).reshape(b, s, d)
        x = x + self.proj(y)
        return x + self.out(F.gelu(self.fc(self.ln_2(x))))


class GPT(nn.Module):
    def __init__(self, layers, d, heads, seq, vocab):
        super().__init__()
        self.wte = nn.Embedding(vocab, d)
        self.wpe = nn.Parameter(torch.randn(seq, d) * 0.02)
        self.blocks = nn.ModuleList([Block(d, heads, seq) for _ in range(layers)])
        self.ln_f = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab, bias=False)

    def forward(self, ids):
        x = self.wte(ids) + self.wpe
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.ln_f(x))


class BertStyle(nn.Module):
    """A BERT-style encoder from PyTorch's own layers (nn.TransformerEncoderLayer: nn.MultiheadAttention, GELU, post-norm),
    token and position embeddings, a token-prediction head."""

    def __init__(self, vocab=100, d=32, heads=2, layers=2, seq=16):
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Parameter(torch.randn(1, seq, d) * 0.02)
        layer = nn.TransformerEncoderLayer(d, heads, 4 * d, dropout=0.1, activation="gelu", batch_first=True)
        self.enc = nn.TransformerEncoder(layer, layers)
        self.ln = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab)

    def forward(self, ids):
        return self.head(self.ln(self.enc(self.tok(ids) + self.pos)))


class SmallCNN(nn.Module):
    """A Fashion-MNIST classifier (1x28x28 in, 10 classes out) for dojo train --onnx."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(0.1), nn.Linear(32 * 7 * 7, 10))

    def forward(self, x):
        return self.classifier(self.features(x))


class TinyOccupancy(nn.Module):
    """The occupancy task's shape: 4 cameras x 3 x 32 x 32 in, a 16 x 16 grid of logits out (dojo train --data scenes)."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(12, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
                                  nn.Conv2d(16, 1, 1))

    def forward(self, x):
        b = x.shape[0]
        return self.body(x.reshape(b, 12, 32, 32)).reshape(b, 16, 16)


class UNetTiny(nn.Module):
    """A small encoder-decoder (segmentation-style, one logit per output pixel): nearest upsampling by 2 (a repeat)
    beside a transposed convolution (stride 2, output padding), a skip concatenation, an asymmetric F.pad (not a
    convolution's padding), bilinear resizes with and without align_corners and a nearest resize to a size that is
    not a whole multiple."""

    def __init__(self):
        super().__init__()
        self.enc = nn.Conv2d(3, 8, 3, padding=1)
        self.down = nn.Conv2d(8, 8, 3, padding=1)
        self.up = nn.ConvTranspose2d(8, 4, 3, stride=2, padding=1, output_padding=1)
        self.dec = nn.Conv2d(20, 8, 3)
        self.head = nn.Conv2d(8, 1, 1)

    def forward(self, x):
        e = F.relu(self.enc(x))                                         # 16 x 16
        d = F.relu(self.down(F.max_pool2d(e, 2)))                       # 8 x 8
        u = F.interpolate(d, scale_factor=2, mode="nearest")            # 16 x 16
        t = F.relu(self.up(d))                                          # 16 x 16
        y = F.pad(torch.cat([u, e, t], 1), (1, 2, 0, 1))                # 17 x 19
        y = F.relu(self.dec(y))                                         # 15 x 17
        y = F.interpolate(y, scale_factor=2, mode="bilinear", align_corners=False)   # 30 x 34
        y = F.interpolate(y, size=(20, 23), mode="bilinear", align_corners=True)
        y = F.interpolate(y, size=(13, 11), mode="nearest")
        return self.head(y)


def export(out, name, model, example, opset, reference=True, dynamic=False):
    path = os.path.join(out, name + ".onnx")
    axes = {"input": {0: "batch"}, "output": {0: "batch"}} if dynamic else None
    torch.onnx.export(model, example, path, opset_version=opset, do_constant_folding=False, dynamic_axes=axes,
                      training=torch.onnx.TrainingMode.TRAINING, input_names=["input"], output_names=["output"])
    model.eval()
    with torch.no_grad():
        y = model(example)
    meta = {"input": list(example.shape), "output": list(y.shape), "opset": opset,
            "parameters": sum(p.numel() for p in model.parameters()),
            "input_dtype": "int64" if example.dtype == torch.int64 else "float32"}
    if reference:
        example.numpy().tofile(os.path.join(out, name + ".input.bin"))
        y.numpy().astype("<f4").tofile(os.path.join(out, name + ".output.bin"))
    with open(os.path.join(out, name + ".json"), "w") as f:
        json.dump(meta, f)
    print(f"{path}: {meta['parameters']:,} parameters, opset {opset}")


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else ".fixtures/onnx"
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    image = torch.randn(2, 3, 224, 224)
    # torchvision's classifiers as published (1,000 classes, 224 x 224): what a user exports first.
    export(out, "resnet18", torchvision.models.resnet18(), image, 13)
    export(out, "mobilenet_v2", torchvision.models.mobilenet_v2(), image, 13)
    # a small ViT (torchvision's VisionTransformer: class token, pre-norm, GELU MLP) at opset 17 (LayerNormalization)
    # and at opset 13 (layer norm decomposed into ReduceMean, Sub, Pow, Sqrt, Div)
    vit = dict(image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64, num_classes=10)
    small = torch.randn(2, 3, 32, 32)
    for name, opset in [("vit_tiny", 17), ("vit_tiny_opset13", 13)]:
        torch.manual_seed(1)
        model = VisionTransformer(**vit)
        nn.init.normal_(model.heads.head.weight, std=0.2)   # torchvision zeroes the head: outputs would all be 0
        export(out, name, model, small, opset)
    torch.manual_seed(7)
    export(out, "bert_tiny", BertStyle(), torch.randint(0, 100, (2, 16)), 17)
    torch.manual_seed(2)
    export(out, "gpt_tiny", GPT(layers=2, d=32, heads=2, seq=16, vocab=50), torch.randint(0, 50, (2, 16)), 14)
    # a classifier for Fashion-MNIST with a dynamic batch: what dojo train --onnx trains
    torch.manual_seed(5)
    export(out, "cnn_fmnist", SmallCNN(), torch.randn(4, 1, 28, 28), 13, dynamic=True)
    torch.manual_seed(6)
    export(out, "occupancy_tiny", TinyOccupancy(), torch.randn(2, 4, 3, 32, 32), 13, dynamic=True)
    torch.manual_seed(8)
    export(out, "unet_tiny", UNetTiny(), torch.randn(2, 3, 16, 16), 13)
    # ResNet-50 as torchvision publishes it: its FLOPs and parameters against the zoo's (and its import time in make bench)
    torch.manual_seed(3)
    export(out, "resnet50", torchvision.models.resnet50(), torch.randn(1, 3, 224, 224), 13, reference=False)
    if "--bench" in sys.argv:
        torch.manual_seed(4)
        export(out, "gpt2_small", GPT(layers=12, d=768, heads=12, seq=1024, vocab=50257),
               torch.randint(0, 50257, (1, 1024)), 14, reference=False)


if __name__ == "__main__":
    main()
