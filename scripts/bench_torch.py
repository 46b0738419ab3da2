#!/usr/bin/python3
"""PyTorch CPU baseline for `make bench`: the same training steps OpenDojo's `dojo bench` runs, same shapes,
same layers, same optimizer (SGD, momentum 0.9). Prints one JSON object per line: {"name", "samples_per_s", ...}.
Run with Debian's python3-torch and OMP_NUM_THREADS set (scripts/bench.sh does both)."""
import json, sys, time
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)


def small_cnn(c, h, w, classes):
    return nn.Sequential(
        nn.Conv2d(c, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * (h // 4) * (w // 4), classes))


class BasicBlock(nn.Module):
    def __init__(self, cin, c, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, c, 3, stride, 1, bias=False); self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, 1, 1, bias=False); self.bn2 = nn.BatchNorm2d(c)
        self.down = None
        if stride != 1 or cin != c:
            self.down = nn.Sequential(nn.Conv2d(cin, c, 1, stride, bias=False), nn.BatchNorm2d(c))

    def forward(self, x):
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(y + (self.down(x) if self.down is not None else x))


def resnet18(c, classes):
    layers = [nn.Conv2d(c, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
    cin = 64
    for ch, stride in [(64, 1), (128, 2), (256, 2), (512, 2)]:
        layers += [BasicBlock(cin, ch, stride), BasicBlock(ch, ch, 1)]
        cin = ch
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, classes)]
    return nn.Sequential(*layers)


class Occupancy(nn.Module):
    """The same network as OpenDojo's OccupancyNetwork (Sources/DojoNN/Zoo/Occupancy.swift)."""
    def __init__(self, cameras=4, size=32, grid=16, width=16, bev=16):
        super().__init__()
        self.cameras, self.grid, self.bev = cameras, grid, bev
        self.backbone = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1, bias=False), nn.BatchNorm2d(2 * width), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(2 * width, 2 * width, 3, padding=1, bias=False), nn.BatchNorm2d(2 * width), nn.ReLU(), nn.MaxPool2d(2))
        f = size // 8
        half = grid // 2
        self.lift = nn.Linear(cameras * 2 * width * f * f, bev * half * half)
        self.head = nn.Sequential(
            nn.Conv2d(bev, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
            nn.Conv2d(32, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
            nn.Conv2d(32, 4, 1))

    def forward(self, x):
        b = x.shape[0]
        half = self.grid // 2
        f = self.backbone(x.reshape(b * self.cameras, *x.shape[2:])).reshape(b, -1)
        bev = F.relu(self.lift(f)).reshape(b, self.bev, half, half)
        y = self.head(bev)
        return y.reshape(b, 2, 2, half, half).permute(0, 3, 1, 4, 2).reshape(b, self.grid, self.grid)


class Attention(nn.Module):
    """Multi-head self-attention with a fused QKV projection, written as users write it in PyTorch 1.13 (nanoGPT,
    timm): q·kᵀ scaled, masked (causal), softmax, ·v. The same layers as OpenDojo's MultiHeadSelfAttention."""
    def __init__(self, d, heads, causal):
        super().__init__()
        self.heads, self.causal = heads, causal
        self.qkv = nn.Linear(d, 3 * d); self.proj = nn.Linear(d, d)

    def forward(self, x):
        b, t, d = x.shape
        hd = d // self.heads
        q, k, v = self.qkv(x).reshape(b, t, 3, self.heads, hd).permute(2, 0, 3, 1, 4)
        a = (q @ k.transpose(-2, -1)) * hd ** -0.5
        if self.causal:
            a = a.masked_fill(torch.ones(t, t, dtype=torch.bool).triu(1), float("-inf"))
        y = a.softmax(-1) @ v
        return self.proj(y.transpose(1, 2).reshape(b, t, d))


class Block(nn.Module):
    """Pre-norm transformer block (ViT, GPT-2): x + attn(LN(x)), then x + fc2(GELU(fc1(LN(x)))); GELU's tanh form."""
    def __init__(self, d, heads, ffn, causal=False):
        super().__init__()
        self.norm1 = nn.LayerNorm(d); self.attn = Attention(d, heads, causal)
        self.norm2 = nn.LayerNorm(d); self.fc1 = nn.Linear(d, ffn); self.fc2 = nn.Linear(ffn, d)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x)), approximate="tanh"))


class ViT(nn.Module):
    """OpenDojo's VisionTransformer (Sources/DojoNN/Zoo/Classifiers.swift): patch convolution, class token, learned
    positions, pre-norm blocks, final layer norm, a linear head on the class token."""
    def __init__(self, c, size, patch, classes, d=192, depth=12, heads=3):
        super().__init__()
        self.patch = nn.Conv2d(c, d, patch, patch)
        tokens = (size // patch) ** 2 + 1
        self.cls = nn.Parameter(torch.randn(1, 1, d) * 0.02); self.pos = nn.Parameter(torch.randn(1, tokens, d) * 0.02)
        self.blocks = nn.Sequential(*[Block(d, heads, 4 * d) for _ in range(depth)])
        self.norm = nn.LayerNorm(d); self.head = nn.Linear(d, classes)

    def forward(self, x):
        p = self.patch(x).flatten(2).transpose(1, 2)
        h = torch.cat([self.cls.expand(x.shape[0], -1, -1), p], 1) + self.pos
        return self.head(self.norm(self.blocks(h))[:, 0])


class GPT(nn.Module):
    """OpenDojo's GPT (Sources/DojoNN/Zoo/LanguageModels.swift): token and learned position embeddings, causal
    pre-norm blocks, final layer norm, output tied to the token embedding."""
    def __init__(self, layers, d, heads, ffn, seq, vocab):
        super().__init__()
        self.tokens = nn.Embedding(vocab, d); self.pos = nn.Parameter(torch.randn(seq, d) * 0.01)
        self.blocks = nn.Sequential(*[Block(d, heads, ffn, causal=True) for _ in range(layers)])
        self.norm = nn.LayerNorm(d)

    def forward(self, ids):
        h = self.norm(self.blocks(self.tokens(ids) + self.pos[: ids.shape[1]]))
        return h @ self.tokens.weight.t()


def bench(name, model, x, target, loss_fn, steps, warmup=3, adamw=False):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3) if adamw else torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    model.train()
    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), target)
        loss.backward()
        opt.step()
    for _ in range(warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    dt = time.perf_counter() - t0
    print(json.dumps({"name": name, "samples_per_s": x.shape[0] * steps / dt, "seconds_per_step": dt / steps,
                      "torch": torch.__version__, "threads": torch.get_num_threads()}), flush=True)


def main():
    quick = "--quick" in sys.argv
    # --only TEXT: only the workloads whose name contains TEXT (as `dojo bench --only`; scripts/bench.sh runs one
    # network at a time, in turns with OpenDojo's)
    only = sys.argv[sys.argv.index("--only") + 1] if "--only" in sys.argv[:-1] else None
    def want(name): return only is None or only in name
    s = 0.3 if quick else 1.0
    if want("small-cnn 1x28x28 b128"):
        x = torch.randn(128, 1, 28, 28); y = torch.randint(0, 10, (128,))
        bench("small-cnn 1x28x28 b128", small_cnn(1, 28, 28, 10), x, y, F.cross_entropy, max(3, int(20 * s)))
    if want("resnet18 3x64x64 b32"):
        x = torch.randn(32, 3, 64, 64); y = torch.randint(0, 10, (32,))
        bench("resnet18 3x64x64 b32", resnet18(3, 10), x, y, F.cross_entropy, max(3, int(10 * s)))
    if want("occupancy 4x3x32x32 b32"):
        x = torch.randn(32, 4, 3, 32, 32); t = (torch.rand(32, 16, 16) < 0.1).float()
        pw = torch.tensor(2.0)
        bench("occupancy 4x3x32x32 b32", Occupancy(), x, t,
              lambda out, tt: F.binary_cross_entropy_with_logits(out, tt, pos_weight=pw), max(3, int(20 * s)))
    if want("vit-tiny 1x28x28 b64"):
        x = torch.randn(64, 1, 28, 28); y = torch.randint(0, 10, (64,))
        bench("vit-tiny 1x28x28 b64", ViT(1, 28, 4, 10), x, y, F.cross_entropy, max(3, int(10 * s)), adamw=True)
    if want("gpt 6x256 seq256 b16"):
        ids = torch.randint(0, 1024, (16, 256)); y = torch.randint(0, 1024, (16, 256))
        bench("gpt 6x256 seq256 b16", GPT(6, 256, 4, 1024, 256, 1024), ids, y,
              lambda out, tt: F.cross_entropy(out.reshape(-1, out.shape[-1]), tt.reshape(-1)), max(3, int(5 * s)), adamw=True)
    if not want("matmul 1024"):
        return
    a = torch.randn(1024, 1024); b = torch.randn(1024, 1024)
    for _ in range(3): a @ b
    n = 10; t0 = time.perf_counter()
    for _ in range(n): a @ b
    dt = (time.perf_counter() - t0) / n
    print(json.dumps({"name": "matmul 1024", "gflops": 2 * 1024 ** 3 / dt / 1e9}), flush=True)


if __name__ == "__main__":
    main()
