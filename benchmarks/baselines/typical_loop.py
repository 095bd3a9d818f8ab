"""The loop a typical user writes for the MNIST BN experiment: the speed baseline of `make bench`.

torchvision MNIST with a per-sample ToTensor transform, a shuffling DataLoader, evaluation through a
DataLoader every 250 steps, and torch.quantile percentiles of every hidden layer's sigmoid input every
50 steps (one unit and all units pooled, on a fixed test batch). Same model, optimiser and cadences as
`experiment=mnist_bn`.

    python benchmarks/baselines/typical_loop.py --steps 2000 --root <folder holding MNIST/raw>
"""

import argparse
import time

t_start = time.perf_counter()

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import torchvision  # noqa: E402
import torchvision.transforms as T  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--root", required=True)
    p.add_argument("--steps", type=int, default=20000)
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument("--probe-every", type=int, default=50)
    p.add_argument("--threads", type=int, default=0)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    train_ds = torchvision.datasets.MNIST(args.root, train=True, transform=T.ToTensor())
    test_ds = torchvision.datasets.MNIST(args.root, train=False, transform=T.ToTensor())
    train_loader = DataLoader(train_ds, batch_size=60, shuffle=True, drop_last=True)
    test_loader = DataLoader(test_ds, batch_size=1000)

    layers, width = [nn.Flatten()], 784
    for _ in range(3):
        layers += [nn.Linear(width, 100), nn.BatchNorm1d(100), nn.Sigmoid()]
        width = 100
    model = nn.Sequential(*layers, nn.Linear(width, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    sigmoids = [m for m in model if isinstance(m, nn.Sigmoid)]
    probe_x = next(iter(DataLoader(test_ds, batch_size=256)))[0]
    q = torch.tensor([0.15, 0.5, 0.85])
    history = []

    def evaluate():
        model.eval()
        correct = total = 0
        loss = 0.0
        with torch.no_grad():
            for x, y in test_loader:
                out = model(x)
                loss += F.cross_entropy(out, y, reduction="sum").item()
                correct += (out.argmax(1) == y).sum().item()
                total += len(y)
        model.train()
        return loss / total, correct / total

    def probe():
        acts = []
        hooks = [m.register_forward_hook(lambda m, i, o: acts.append(i[0])) for m in sigmoids]
        with torch.no_grad():
            model(probe_x)
        for h in hooks:
            h.remove()
        return [(torch.quantile(a[:, 0], q).tolist(), torch.quantile(a.flatten(), q).tolist()) for a in acts]

    step = 0
    t_loop = time.perf_counter()
    while step < args.steps:
        for x, y in train_loader:
            step += 1
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            history.append(loss.item())
            if step % args.eval_every == 0:
                history.append(evaluate())
            if step % args.probe_every == 0:
                history.append(probe())
            if step == args.steps:
                break
    end = time.perf_counter()
    print(f"typical_loop steps={args.steps} loop_s={end - t_loop:.3f} process_s={end - t_start:.3f} "
          f"ms_per_step={(end - t_loop) / args.steps * 1e3:.3f}")


if __name__ == "__main__":
    main()
