#!/usr/bin/env python3
"""The PyTorch baseline for `mora bench step --config small-cpu --method fft`.

The same model and step as MoraEngine's small-cpu benchmark: GPT-2 style (pre-LN LayerNorm without bias, learned
positions, GELU tanh MLP with d_ff = 4d, no biases, untied head), vocab 256, d 256, 4 layers, 4 heads, context 128,
batch 16, fp32, AdamW, global-norm clipping at 1.0. Prints one JSON line like the mora command.

    apt-get install python3-torch libopenblas0-pthread      # PyTorch 1.13 on OpenBLAS (Debian 12)
    /usr/bin/python3 bench/pytorch_step.py [--steps 10] [--warmup 3] [--threads N]
"""
import argparse
import json
import math
import os
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class LayerNorm(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x):
        return F.layer_norm(x, self.weight.shape, self.weight, None, 1e-5)


class Attention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(d, d, bias=False)
        self.k = nn.Linear(d, d, bias=False)
        self.v = nn.Linear(d, d, bias=False)
        self.o = nn.Linear(d, d, bias=False)

    def forward(self, x):
        b, t, d = x.shape
        hd = d // self.heads
        q = self.q(x).view(b, t, self.heads, hd).transpose(1, 2)
        k = self.k(x).view(b, t, self.heads, hd).transpose(1, 2)
        v = self.v(x).view(b, t, self.heads, hd).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(hd)
        mask = torch.ones(t, t, dtype=torch.bool).triu(1)
        att = att.masked_fill(mask, float("-inf")).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(b, t, d)
        return self.o(y)


class Block(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.ln1 = LayerNorm(d)
        self.attn = Attention(d, heads)
        self.ln2 = LayerNorm(d)
        self.up = nn.Linear(d, 4 * d, bias=False)
        self.down = nn.Linear(4 * d, d, bias=False)

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.down(F.gelu(self.up(self.ln2(x)), approximate="tanh"))


class Gpt(nn.Module):
    def __init__(self, vocab=256, d=256, layers=4, heads=4, context=128):
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(context, d)
        self.blocks = nn.ModuleList(Block(d, heads) for _ in range(layers))
        self.ln_f = LayerNorm(d)
        self.head = nn.Linear(d, vocab, bias=False)

    def forward(self, idx):
        t = idx.shape[1]
        x = self.tok(idx) + self.pos(torch.arange(t))
        for b in self.blocks:
            x = b(x)
        return self.head(self.ln_f(x))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    # One intra-op thread is PyTorch's fastest setting here: OpenBLAS runs its own pthreads under it, and
    # torch.set_num_threads(2) on top oversubscribes the two cores (884 vs 349 ms/step measured).
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    model = Gpt()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.1)
    batch, t = 16, 128
    data = torch.randint(0, 256, (batch, t + 1))
    times = []
    for i in range(args.warmup + args.steps):
        start = time.perf_counter()
        logits = model(data[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, 256), data[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if i >= args.warmup:
            times.append((time.perf_counter() - start) * 1000)
    print(json.dumps({
        "benchmark": "step", "framework": f"pytorch {torch.__version__}", "config": "small-cpu", "method": "fft",
        "threads": torch.get_num_threads(),
        "trainable_params": sum(p.numel() for p in model.parameters()),
        "ms_per_step": round(statistics.median(times), 2),
    }))


if __name__ == "__main__":
    main()
