"""Issue 27's slow start: a tiny VisionTransformer under kronfac.KFACOptimizer took 20.5 s for its first 50 steps and
2.4 s for the next 50. This times the two halves of 100 steps on a tiny ViT written like torchvision's
(conv patch embedding, class token, stock nn.TransformerEncoder with its attention replaced by kronfac.nn's), in
fresh processes: as Python starts (torch's threads as Debian sets them, subnormals kept, glibc returning freed
memory), after kronfac.configure_runtime(), and after each of its three settings alone.

    PYTHONPATH=build/python /usr/bin/python3 bench/python_slow_start.py
"""
import subprocess
import sys

RUN = r"""
import sys, time, warnings, torch, torch.nn as nn, torch.nn.functional as F, kronfac
warnings.simplefilter("ignore")
setting = sys.argv[1]
report = ""
if setting == "configure_runtime":
    report = kronfac.configure_runtime()
elif setting == "threads":
    kronfac.configure_runtime(threads=0, flush_subnormals=False, keep_freed_memory=False)
elif setting == "subnormals":
    kronfac.configure_runtime(threads=-1, flush_subnormals=True, keep_freed_memory=False)
elif setting == "freed-memory":
    kronfac.configure_runtime(threads=-1, flush_subnormals=False, keep_freed_memory=True)

class TinyViT(nn.Module):
    def __init__(self, dim=64, heads=4, layers=2):
        super().__init__()
        self.patch = nn.Conv2d(1, dim, 7, 7)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.randn(1, 17, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(dim, heads, 2 * dim, dropout=0.0, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers)
        self.norm, self.head = nn.LayerNorm(dim), nn.Linear(dim, 10)

    def forward(self, x):
        t = self.patch(x).flatten(2).transpose(1, 2)
        t = torch.cat([self.cls.expand(x.size(0), -1, -1), t], 1) + self.pos
        return self.head(self.norm(self.encoder(t))[:, 0])

torch.manual_seed(0)
model = TinyViT()
kronfac.nn.replace_attention(model)
opt = kronfac.KFACOptimizer(model, lr=0.05, loss="cross_entropy")
from kronfac.data import fashion_mnist
images, labels = fashion_mnist(4096)
images = images.view(-1, 1, 28, 28)
halves = []
for half in range(2):
    start = time.perf_counter()
    for step in range(50):
        i = torch.randint(0, 4096, (128,))
        opt.zero_grad()
        F.cross_entropy(model(images[i]), labels[i]).backward()
        opt.step()
    halves.append(time.perf_counter() - start)
print(f"| {setting} | {torch.get_num_threads()} | {halves[0]:.2f} | {halves[1]:.2f} |")
"""


def main():
    print("| setting | threads | steps 0-49 s | steps 50-99 s |\n|---|---|---|---|", flush=True)
    for setting in ("as Python starts", "threads", "subnormals", "freed-memory", "configure_runtime"):
        subprocess.run([sys.executable, "-c", RUN, setting], check=True)


if __name__ == "__main__":
    main()
