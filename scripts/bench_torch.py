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


def bench(name, model, x, target, loss_fn, steps, warmup=3):
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
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
    s = 0.3 if quick else 1.0
    x = torch.randn(128, 1, 28, 28); y = torch.randint(0, 10, (128,))
    bench("small-cnn 1x28x28 b128", small_cnn(1, 28, 28, 10), x, y, F.cross_entropy, max(3, int(20 * s)))
    x = torch.randn(32, 3, 64, 64); y = torch.randint(0, 10, (32,))
    bench("resnet18 3x64x64 b32", resnet18(3, 10), x, y, F.cross_entropy, max(3, int(10 * s)))
    x = torch.randn(32, 4, 3, 32, 32); t = (torch.rand(32, 16, 16) < 0.1).float()
    pw = torch.tensor(2.0)
    bench("occupancy 4x3x32x32 b32", Occupancy(), x, t,
          lambda out, tt: F.binary_cross_entropy_with_logits(out, tt, pos_weight=pw), max(3, int(20 * s)))
    a = torch.randn(1024, 1024); b = torch.randn(1024, 1024)
    for _ in range(3): a @ b
    n = 10; t0 = time.perf_counter()
    for _ in range(n): a @ b
    dt = (time.perf_counter() - t0) / n
    print(json.dumps({"name": "matmul 1024", "gflops": 2 * 1024 ** 3 / dt / 1e9}), flush=True)


if __name__ == "__main__":
    main()
