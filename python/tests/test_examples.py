"""pytorch/examples' mnist/main.py, its train() and test() as they are, with one line changed: the optimizer.

    - optimizer = optim.Adadelta(model.parameters(), lr=args.lr)
    + optimizer = kronfac.KFACOptimizer(model, lr=0.1, loss="nll")

and K-FAC must end below the example's own optimizer at the example's settings (2 epochs, StepLR).

The network is the example's with fewer channels (for the test's time) and BatchNorm added after each convolution,
whose running statistics the optimizer must leave to the user's forwards; the data are the bundled Fashion-MNIST."""
import types

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.optim.lr_scheduler import StepLR

import kronfac
from kronfac.data import fashion_mnist


class Net(nn.Module):
    def __init__(self):
        super(Net, self).__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, 1)
        self.bn1 = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 8, 3, 1)
        self.bn2 = nn.BatchNorm2d(8)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(1152, 32)
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x):
        x = self.conv1(x)
        x = F.relu(self.bn1(x))
        x = self.conv2(x)
        x = F.relu(self.bn2(x))
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = self.fc1(x)
        x = F.relu(x)
        x = self.dropout2(x)
        x = self.fc2(x)
        output = F.log_softmax(x, dim=1)
        return output


def train(args, model, device, train_loader, optimizer, epoch):
    model.train()
    for batch_idx, (data, target) in enumerate(train_loader):
        data, target = data.to(device), target.to(device)
        optimizer.zero_grad()
        output = model(data)
        loss = F.nll_loss(output, target)
        loss.backward()
        optimizer.step()
        if args.dry_run:
            break


def test(model, device, test_loader):
    model.eval()
    test_loss = 0
    with torch.no_grad():
        for data, target in test_loader:
            data, target = data.to(device), target.to(device)
            output = model(data)
            test_loss += F.nll_loss(output, target, reduction='sum').item()  # sum up batch loss
    return test_loss / sum(len(t) for _, t in test_loader)


test.__test__ = False  # the example's name; not a pytest test


def loaders():
    images, labels = fashion_mnist(1200)
    images = images.view(-1, 1, 28, 28)
    train_loader = [(images[i:i + 64], labels[i:i + 64]) for i in range(0, 1024, 64)]
    test_loader = [(images[1024:], labels[1024:])]
    return train_loader, test_loader


def main(make_optimizer):
    """The example's main() from the model on, for 2 epochs; returns the test loss before and after, and the model."""
    args = types.SimpleNamespace(lr=1.0, gamma=0.7, epochs=2, dry_run=False)  # the example's defaults
    torch.manual_seed(1)
    device = torch.device("cpu")
    train_loader, test_loader = loaders()
    model = Net().to(device)
    optimizer = make_optimizer(model, args)
    scheduler = StepLR(optimizer, step_size=1, gamma=args.gamma)
    before = test(model, device, test_loader)
    for epoch in range(1, args.epochs + 1):
        train(args, model, device, train_loader, optimizer, epoch)
        scheduler.step()
    return before, test(model, device, test_loader), model, optimizer


def test_mnist_main_with_the_optimizer_line_changed():
    _, adadelta, _, _ = main(lambda model, args: optim.Adadelta(model.parameters(), lr=args.lr))
    before, kfac, model, optimizer = main(lambda model, args: kronfac.KFACOptimizer(model, lr=0.1, loss="nll"))
    assert "no fallback parameters" in str(optimizer.preconditioner.registration)  # every weight is K-FAC's
    assert kfac < 0.7 * before and kfac < 0.95 * adadelta, (before, kfac, adadelta)  # 2.31 -> 1.44; Adadelta 1.61
    assert abs(optimizer.param_groups[0]["lr"] - 0.1 * 0.7 ** 2) < 1e-12  # StepLR drove it
    # BatchNorm saw the user's forwards only: one per batch.
    assert int(model.bn1.num_batches_tracked) == 2 * 16
