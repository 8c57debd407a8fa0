"""A Python MLP and CNN trained with kronfac.KFACOptimizer reach a lower loss than the best of a few SGD learning rates
in the same number of steps (Fashion-MNIST, the same batches and initial weights)."""
import pytest
import torch
import torch.nn.functional as F

import kronfac
from kronfac.data import fashion_mnist

STEPS, BATCH = 60, 250


def mlp():
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 128), torch.nn.Tanh(), torch.nn.Linear(128, 10))


def cnn():
    return torch.nn.Sequential(torch.nn.Conv2d(1, 8, 5, stride=2), torch.nn.ReLU(), torch.nn.Conv2d(8, 16, 5, stride=2),
                               torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(256, 10))


def train(make, optimizer, use_kfac):
    torch.manual_seed(0)
    model = make()
    opt = optimizer(model)
    x_all, y_all = fashion_mnist(STEPS * BATCH // 4)
    losses = []
    for step in range(STEPS):
        i = (step * BATCH) % x_all.shape[0]
        x, y = x_all[i:i + BATCH], y_all[i:i + BATCH]
        opt.zero_grad()
        if use_kfac:
            opt.update_statistics(x)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    with torch.no_grad():  # the training loss at the end, on everything seen
        return F.cross_entropy(model(x_all), y_all).item()


@pytest.mark.parametrize("make", [mlp, cnn], ids=["mlp", "cnn"])
def test_kfac_beats_the_best_sgd(make):
    sgd = {lr: train(make, lambda m, lr=lr: torch.optim.SGD(m.parameters(), lr=lr, momentum=0.9), False)
           for lr in (0.03, 0.1, 0.3)}
    natural = train(make, lambda m: kronfac.KFACOptimizer(m, lr=0.1, damping=3e-2, kl_clip=1e-2, momentum=0.9,
                                                        loss="softmax-cross-entropy", stats_fraction=0.25,
                                                        refresh_period=10), True)
    print(f"{make.__name__}: kfac {natural:.4f}, sgd {sgd}")
    assert natural < min(sgd.values())
