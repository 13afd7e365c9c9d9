#!/usr/bin/python3
"""PyTorch reference for the parity harness: redoes an engine run from what `parity run` wrote.

Usage: /usr/bin/python3 bench/parity/reference.py [--double] DIR [DIR ...]

Reads DIR/case.json, init.safetensors, batches.safetensors (and restarts.safetensors, eval.safetensors), builds
the same model in plain PyTorch (GPT-2 style: LayerNorm, learned positions, tanh GELU; LLaMA style: RMSNorm,
rotate-half RoPE, SwiGLU), attaches LoRA or MoRA as the MoRA paper's official code defines them, trains with
torch.optim.AdamW, clip_grad_norm_ and the case's warm-up + cosine schedule on the same batches, and writes
DIR/torch.json (per-step losses, learning rates, gradient norms, final character accuracy) and
DIR/torch_grads.safetensors (raw gradients at the recorded steps). Nothing here comes from the engine's code:
the model, the adapters, the schedule and the restarts are written from their published definitions.

With --double the same run is done in float64 (torch64.json, torch64_grads.safetensors): the exact-arithmetic
yardstick against which both float32 runs, the engine's and PyTorch's, show how far float32 rounding alone drifts.

Needs Debian's python3-torch and python3-numpy only (no safetensors package: the format is read directly).
"""
import json
import math
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

torch.set_num_threads(max(1, torch.get_num_threads()))
torch.use_deterministic_algorithms(True)
DTYPE = torch.float32


# ----------------------------------------------------------------------------------------------- safetensors
def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] != "F32":
            raise ValueError(f"{path}: tensor {name} is {info['dtype']}, expected F32")
        b, e = info["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(data[b:e], dtype="<f4").copy()).reshape(info["shape"])
    return out


def save_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        a = tensors[name].detach().to(torch.float32).contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape), "data_offsets": [offset, offset + len(a)]}
        blobs.append(a)
        offset += len(a)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for a in blobs:
            f.write(a)


# ----------------------------------------------------------------------------------------------- MoRA operators
def rank_hat(n_in, n_out, r, mora_type):
    rh = int(math.floor(math.sqrt((n_in + n_out) * r) + 0.5))
    if mora_type == 6:
        rh = rh // 2 * 2
    return rh


def interleave_groups(n, rh):
    """Group sizes of the interleaved (consecutive-block) compression / repeat-interleave decompression."""
    nr = n // rh
    m = n - rh * nr
    return [nr + 1] * m + [nr] * (rh - m)


def rope_tables(rh, chunks):
    h = rh // 2
    k = torch.arange(h, dtype=torch.float64)
    theta = 10000.0 ** (-2.0 * k / rh)
    g = torch.arange(chunks, dtype=torch.float64)[:, None]
    ang = g * theta[None, :]                       # [G, h]
    ang = torch.cat([ang, ang], dim=1)             # angle of element j uses theta[j mod h]
    return torch.cos(ang).to(DTYPE), torch.sin(ang).to(DTYPE)


class MoraOp:
    """f_decomp(M · f_comp(x)) for one layer (MoRA paper, official code's types 0, 1, 2, 3, 4, 6)."""

    def __init__(self, n_in, n_out, rh, mora_type):
        self.n_in, self.n_out, self.rh, self.type = n_in, n_out, rh, mora_type
        self.G = -(-n_in // rh)
        self.pad = self.G * rh - n_in
        if mora_type == 6:
            self.cos, self.sin = rope_tables(rh, self.G)
        if mora_type in (2, 3):
            sizes = interleave_groups(n_in, rh)
            self.comp_index = torch.repeat_interleave(torch.arange(rh), torch.tensor(sizes))
        if mora_type in (2, 4):
            self.decomp_repeats = torch.tensor(interleave_groups(n_out, rh))

    def wrap_pad(self, x):
        return torch.cat([x, x[..., : self.pad]], dim=-1) if self.pad else x

    def __call__(self, x, M):
        t, rh = self.type, self.rh
        if t == 0:
            y = F.linear(x[..., :rh], M)
        elif t in (1, 4):
            xh = self.wrap_pad(x).reshape(*x.shape[:-1], self.G, rh).sum(-2)
            y = F.linear(xh, M)
        elif t in (2, 3):
            xh = torch.zeros(*x.shape[:-1], rh, dtype=x.dtype).index_add(-1, self.comp_index, x)
            y = F.linear(xh, M)
        elif t == 6:
            c = self.wrap_pad(x).reshape(*x.shape[:-1], self.G, rh)
            h = rh // 2
            rot = torch.cat([-c[..., h:], c[..., :h]], dim=-1)
            c = c * self.cos + rot * self.sin
            y = F.linear(c, M).reshape(*x.shape[:-1], self.G * rh)
        else:
            raise ValueError(f"MoRA type {t}")
        # decompression
        if t == 0:
            return torch.cat([y, torch.zeros(*y.shape[:-1], self.n_out - rh, dtype=y.dtype)], dim=-1)
        if t in (1, 3):
            reps = -(-self.n_out // rh)
            return y.repeat(*([1] * (y.dim() - 1)), reps)[..., : self.n_out]
        if t in (2, 4):
            return torch.repeat_interleave(y, self.decomp_repeats, dim=-1)
        n = y.shape[-1]
        if n < self.n_out:
            y = y.repeat(*([1] * (y.dim() - 1)), -(-self.n_out // n))
        return y[..., : self.n_out]

    def delta_weight(self, M):
        with torch.no_grad():
            eye = torch.eye(self.n_in, dtype=torch.float64)
            op = MoraOp(self.n_in, self.n_out, self.rh, self.type)
            if self.type == 6:
                op.cos, op.sin = self.cos.double(), self.sin.double()
            return op(eye, M.double()).t().to(DTYPE)    # [out, in]: column j is ΔW e_j


# ----------------------------------------------------------------------------------------------- model
class Model:
    def __init__(self, case, params):
        self.case = case
        self.cfg = case["model"]
        self.p = params
        self.arch = self.cfg["architecture"].lower()
        self.layers = self.cfg["layers"]
        self.heads = self.cfg["heads"]
        self.d = self.cfg["d_model"]
        self.eps = self.cfg["norm_eps"]
        self.theta = self.cfg["rope_theta"]
        self.method = case["method"]
        self.scaling = case["scaling"]
        self.mora_ops = {}

    def set_mora_type(self, t):
        for name in list(self.mora_ops):
            op = self.mora_ops[name]
            self.mora_ops[name] = MoraOp(op.n_in, op.n_out, op.rh, t)

    def linear(self, name, x):
        w = self.p[name + ".weight"]
        y = F.linear(x, w, self.p.get(name + ".bias"))
        a = self.p.get(name + ".lora_A.weight")
        if a is None:
            return y
        if self.method in ("lora", "relora"):
            b = self.p[name + ".lora_B.weight"]
            return y + self.scaling * F.linear(F.linear(x, a), b)
        return y + self.mora_ops[name](x, a)

    def norm(self, name, x):
        w = self.p[name + ".weight"]
        if self.arch == "gpt2":
            return F.layer_norm(x, (self.d,), w, self.p.get(name + ".bias"), self.eps)
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * w

    def rope(self, x):
        B, T, D = x.shape
        hd = D // self.heads
        h = hd // 2
        j = torch.arange(h, dtype=torch.float64)
        freq = self.theta ** (-2.0 * j / hd)
        ang = torch.arange(T, dtype=torch.float64)[:, None] * freq[None, :]
        ang = torch.cat([ang, ang], dim=1)
        cos, sin = torch.cos(ang).to(x.dtype), torch.sin(ang).to(x.dtype)
        x = x.view(B, T, self.heads, hd)
        rot = torch.cat([-x[..., h:], x[..., :h]], dim=-1)
        return (x * cos[None, :, None, :] + rot * sin[None, :, None, :]).view(B, T, D)

    def attention(self, pre, x):
        B, T, D = x.shape
        q, k, v = (self.linear(f"{pre}.{n}", x) for n in "qkv")
        if self.arch == "llama":
            q, k = self.rope(q), self.rope(k)
        hd = D // self.heads
        q, k, v = (t.view(B, T, self.heads, hd).transpose(1, 2) for t in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(hd)
        mask = torch.ones(T, T, dtype=torch.bool).tril()
        att = att.masked_fill(~mask, float("-inf")).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, D)
        return self.linear(f"{pre}.o", y)

    def mlp(self, pre, x):
        if self.arch == "gpt2":
            return self.linear(f"{pre}.down", F.gelu(self.linear(f"{pre}.up", x), approximate="tanh"))
        return self.linear(f"{pre}.down", F.silu(self.linear(f"{pre}.gate", x)) * self.linear(f"{pre}.up", x))

    def logits(self, ids):
        B, T = ids.shape
        x = self.p["tok_emb.weight"][ids]
        if self.arch == "gpt2":
            x = x + self.p["pos_emb.weight"][:T][None]
        for i in range(self.layers):
            pre = f"blocks.{i}"
            x = x + self.attention(f"{pre}.attn", self.norm(f"{pre}.ln1", x))
            x = x + self.mlp(f"{pre}.mlp", self.norm(f"{pre}.ln2", x))
        return F.linear(self.norm("ln_f", x), self.p["head.weight"])

    def loss(self, ids, targets):
        lg = self.logits(ids)
        return F.cross_entropy(lg.reshape(-1, lg.shape[-1]), targets.reshape(-1), ignore_index=-100)


def lr_at(case, step, last_restart):
    """Linear warm-up to the peak, cosine to min_lr at schedule_steps; after a restart, a fresh linear ramp."""
    peak, warm, total, lo = case["lr"], case["warmup"], case["schedule_steps"], case["min_lr"]
    if step < warm:
        lr = peak * (step + 1) / warm
    else:
        progress = min(1.0, (step - warm) / max(1, total - warm))
        lr = lo + 0.5 * (peak - lo) * (1 + math.cos(math.pi * progress))
    rw = case["restart_warmup"]
    if last_restart >= 0 and rw > 0 and last_restart <= step < last_restart + rw:
        lr *= (step - last_restart + 1) / rw
    return lr


def run(dir, tag="torch"):
    case = json.load(open(f"{dir}/case.json"))
    init = {k: v.to(DTYPE) for k, v in load_safetensors(f"{dir}/init.safetensors").items()}
    batches = load_safetensors(f"{dir}/batches.safetensors")
    engine = json.load(open(f"{dir}/engine.json"))
    trainable_names = engine["trainable"]   # which parameters the method trains (checked below)
    method = case["method"]
    params = {k: v.clone() for k, v in init.items()}
    adapted = sorted({k[: -len(".lora_A.weight")] for k in params if k.endswith(".lora_A.weight")})
    if method == "fft":
        expect = set(params)
    else:
        expect = {k for k in params if ".lora_" in k}
        targets = set(case["targets"])
        for name in (k[: -len(".weight")] for k in params if k.endswith(".weight") and ".lora_" not in k):
            leaf = name.rsplit(".", 1)[-1]
            if name != "head" and leaf in targets and name not in adapted:
                raise ValueError(f"{dir}: layer {name} is a target but has no adapter in init.safetensors")
    if set(trainable_names) != expect:
        raise ValueError(f"{dir}: the engine trained {sorted(set(trainable_names) ^ expect)} differently from the method's definition")
    model = Model(case, params)
    for name in adapted:
        w = params[name + ".weight"]
        if method in ("mora", "remora"):
            rh = params[name + ".lora_A.weight"].shape[0]
            if rh != rank_hat(w.shape[1], w.shape[0], case["rank"], case["mora_type"]):
                raise ValueError(f"{dir}: {name}: r̂ {rh} is not the paper's rule for r = {case['rank']}")
            model.mora_ops[name] = MoraOp(w.shape[1], w.shape[0], rh, case["mora_type"])
    train = [k for k in sorted(expect)]
    for k in train:
        params[k].requires_grad_(True)
    opt = torch.optim.AdamW([params[k] for k in train], lr=case["lr"], betas=(case["beta1"], case["beta2"]),
                            eps=case["eps"], weight_decay=case["weight_decay"])
    restarts = {k: v.to(DTYPE) for k, v in load_safetensors(f"{dir}/restarts.safetensors").items()} if case["restart_every"] else {}
    ids_all = batches["ids"].long()
    tg_all = batches["targets"].long()
    grad_steps = set(case["grad_steps"])
    losses, lrs, norms, grads = [], [], [], {}
    last_restart, cycle, cycle_next = -1, case["mora_cycle"], None
    if method == "remora":
        cycle_next = (cycle.index(case["mora_type"]) + 1) if case["mora_type"] in cycle else 1
    for step in range(case["steps"]):
        opt.zero_grad(set_to_none=True)
        loss = model.loss(ids_all[step], tg_all[step])
        loss.backward()
        if step in grad_steps:
            for k in train:
                g = params[k].grad
                grads[f"step{step}.{k}"] = g.clone() if g is not None else torch.zeros_like(params[k])
        norm = torch.nn.utils.clip_grad_norm_([params[k] for k in train], case["clip"] if case["clip"] > 0 else float("inf"))
        lr = lr_at(case, step, last_restart)
        for g in opt.param_groups:
            g["lr"] = lr
        opt.step()
        losses.append(loss.item())
        lrs.append(lr)
        norms.append(float(norm))
        done = step + 1
        if case["restart_every"] and done % case["restart_every"] == 0:
            # ReLoRA / ReMoRA: merge ΔW into W, re-initialise the adapter, reset its optimizer state, re-warm the rate.
            with torch.no_grad():
                for name in adapted:
                    a = params[name + ".lora_A.weight"]
                    if method == "relora":
                        b = params[name + ".lora_B.weight"]
                        params[name + ".weight"] += case["scaling"] * (b @ a)
                        a.copy_(restarts[f"step{done}.{name}.lora_A.weight"])
                        b.zero_()
                    else:
                        params[name + ".weight"] += model.mora_ops[name].delta_weight(a)
                        a.zero_()
                for k in train:
                    if ".lora_" in k:
                        opt.state.pop(params[k], None)
            if method == "remora":
                model.set_mora_type(cycle[cycle_next % len(cycle)])
                cycle_next += 1
            last_restart = done
    out = {"losses": losses, "lrs": lrs, "grad_norms": norms}
    try:
        ev = load_safetensors(f"{dir}/eval.safetensors")
        with torch.no_grad():
            lg = model.logits(ev["ids"].long())
            t = ev["targets"].long()
            m = t != -100
            out["final_eval"] = {"char_accuracy": (lg.argmax(-1)[m] == t[m]).float().mean().item()}
    except FileNotFoundError:
        pass
    json.dump(out, open(f"{dir}/{tag}.json", "w"), indent=1)
    save_safetensors(f"{dir}/{tag}_grads.safetensors", grads)
    acc = f", char accuracy {out['final_eval']['char_accuracy'] * 100:.1f}%" if "final_eval" in out else ""
    print(f"{case['name']} ({tag}): {len(losses)} steps, final loss {losses[-1]:.4f}{acc}")


if __name__ == "__main__":
    args = sys.argv[1:]
    tag = "torch"
    if args[:1] == ["--double"]:
        DTYPE, tag, args = torch.float64, "torch64", args[1:]
        torch.set_default_dtype(torch.float64)
    if not args:
        sys.exit(__doc__)
    for d in args:
        run(d, tag)
