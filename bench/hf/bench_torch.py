#!/usr/bin/env python3
"""PyTorch side of `mora bench generate` and the GPT-2 124M fine-tuning step, on the same shapes and random weights.

Run with Debian's torch (CPU):  OPENBLAS_NUM_THREADS=2 OMP_NUM_THREADS=1 /usr/bin/python3 bench/hf/bench_torch.py
(unset OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE for this command: the image's setting halves OpenBLAS here).

generate: GPT-2 124M (vocab 50257, d 768, 12 layers, 12 heads, tied head, tanh GELU), batch 1, a 128-token random
prompt, then greedy decoding with a key/value cache (the prefix is never recomputed); tokens/s over 64 tokens.
step: LoRA r=8 (alpha 16) and MoRA r=8 type 1 on every linear layer of the blocks (c_attn, c_proj, c_fc), base frozen,
AdamW, batch 4 x 256 tokens; median ms/step and the process's peak RSS. One JSON line per measurement.
"""
import json, math, os, resource, statistics, sys, time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "parity"))
from reference import MoraOp, rank_hat  # noqa: E402  (the MoRA operators checked against the official code's vectors)

V, D, L, H, CTX = 50257, 768, 12, 12, 1024
HD = D // H


class Adapter(nn.Module):
    def __init__(self, n_in, n_out, method, r=8):
        super().__init__()
        self.method = method
        if method == "lora":
            self.A = nn.Parameter(torch.randn(r, n_in) / math.sqrt(n_in))
            self.B = nn.Parameter(torch.zeros(n_out, r))
            self.scale = 16 / r
        else:
            rh = rank_hat(n_in, n_out, r, 1)
            self.op = MoraOp(n_in, n_out, rh, 1)
            self.M = nn.Parameter(torch.zeros(rh, rh))

    def forward(self, x):
        if self.method == "lora":
            return F.linear(F.linear(x, self.A), self.B) * self.scale
        return self.op(x, self.M)


class Lin(nn.Module):
    def __init__(self, n_in, n_out):
        super().__init__()
        self.w = nn.Parameter(torch.randn(n_out, n_in) * 0.02)
        self.b = nn.Parameter(torch.zeros(n_out))
        self.adapter = None

    def forward(self, x):
        y = F.linear(x, self.w, self.b)
        return y if self.adapter is None else y + self.adapter(x)


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(D), nn.LayerNorm(D)
        self.c_attn, self.a_proj = Lin(D, 3 * D), Lin(D, D)
        self.c_fc, self.m_proj = Lin(D, 4 * D), Lin(4 * D, D)

    def forward(self, x, cache=None, pos=0):
        B, T, _ = x.shape
        q, k, v = self.c_attn(self.ln1(x)).split(D, dim=2)
        q, k, v = (t.view(B, T, H, HD).transpose(1, 2) for t in (q, k, v))
        if cache is not None:
            cache[0][:, :, pos:pos + T] = k
            cache[1][:, :, pos:pos + T] = v
            k, v = cache[0][:, :, :pos + T], cache[1][:, :, :pos + T]
        att = (q @ k.transpose(-2, -1)) / math.sqrt(HD)
        if T > 1:
            mask = torch.ones(T, k.shape[2], dtype=torch.bool).tril(k.shape[2] - T)
            att = att.masked_fill(~mask, float("-inf"))
        y = (att.softmax(-1) @ v).transpose(1, 2).reshape(B, T, D)
        x = x + self.a_proj(y)
        return x + self.m_proj(F.gelu(self.c_fc(self.ln2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte = nn.Parameter(torch.randn(V, D) * 0.02)
        self.wpe = nn.Parameter(torch.randn(CTX, D) * 0.01)
        self.h = nn.ModuleList(Block() for _ in range(L))
        self.ln_f = nn.LayerNorm(D)

    def forward(self, ids, caches=None, pos=0):
        x = self.wte[ids] + self.wpe[pos:pos + ids.shape[1]]
        for i, b in enumerate(self.h):
            x = b(x, None if caches is None else caches[i], pos)
        return F.linear(self.ln_f(x), self.wte)


def bench_generate(model, prompt=128, tokens=64):
    g = torch.Generator().manual_seed(5)
    ids = torch.randint(0, V, (1, prompt), generator=g)
    with torch.no_grad():
        def run(n):
            caches = [(torch.empty(1, H, CTX, HD), torch.empty(1, H, CTX, HD)) for _ in range(L)]
            t0 = time.perf_counter()
            logits = model(ids, caches, 0)
            prefill = time.perf_counter() - t0
            nxt = logits[:, -1].argmax(-1, keepdim=True)
            t0 = time.perf_counter()
            for i in range(n):
                logits = model(nxt, caches, prompt + i)
                nxt = logits[:, -1].argmax(-1, keepdim=True)
            return prefill, (time.perf_counter() - t0) / n
        run(3)
        prefill, per_token = run(tokens)
    print(json.dumps({"benchmark": "generate", "impl": "pytorch", "torch": torch.__version__, "prompt_tokens": prompt, "tokens": tokens,
                      "prefill_ms": round(prefill * 1e3, 1), "tokens_per_s": round(1 / per_token, 2)}), flush=True)


def bench_step(method, batch=4, seq=256, warmup=2, steps=5):
    torch.manual_seed(1)
    model = GPT()
    for p in model.parameters():
        p.requires_grad_(False)
    for b in model.h:
        for lin in (b.c_attn, b.a_proj, b.c_fc, b.m_proj):
            lin.adapter = Adapter(lin.w.shape[1], lin.w.shape[0], method)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.0)
    g = torch.Generator().manual_seed(3)
    times = []
    for i in range(warmup + steps):
        ids = torch.randint(0, 256, (batch, seq + 1), generator=g)
        t0 = time.perf_counter()
        logits = model(ids[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, V), ids[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i >= warmup:
            times.append((time.perf_counter() - t0) * 1e3)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"benchmark": "step", "impl": "pytorch", "method": method, "rank": 8, "batch": batch, "seq": seq,
                      "trainable_params": sum(p.numel() for p in params), "ms_per_step": round(statistics.median(times), 1),
                      "peak_bytes": peak}), flush=True)


if __name__ == "__main__":
    torch.manual_seed(1)
    what = sys.argv[1:] or ["generate", "lora", "mora"]
    if "generate" in what:
        bench_generate(GPT().eval())
    for m in ("lora", "mora"):
        if m in what:
            bench_step(m)
