#!/usr/bin/python3
"""Builds the tiny Hugging Face-format model fixtures of tests/MoraEngine.Tests/TestData/hf/ from public reference code.

Usage: /usr/bin/python3 bench/hf/make_hf_fixtures.py --nanogpt DIR --llama2c DIR [--out DIR] [--report FILE]

--nanogpt DIR   a checkout of https://github.com/karpathy/nanoGPT (its model.py is imported from there)
--llama2c DIR   a checkout of https://github.com/karpathy/llama2.c (its model.py, and export.py if present)
--out DIR       where the fixture directories go (default tests/MoraEngine.Tests/TestData/hf)
--report FILE   a short printout of what was done (default bench/hf/reference-check.txt)

Nothing of the reference code is copied here: the models are built by importing the checkouts' model.py, and the
reference logits, loss and greedy continuations come from those models' own forward passes (float32, CPU). This
script only re-initialises a few tensors (nonzero biases, norm weights away from 1, an untied head, a RoPE theta),
renames and lays the weights out the way Hugging Face's GPT2LMHeadModel / LlamaForCausalLM checkpoints are laid out,
and writes safetensors files with a small writer of its own (no safetensors package needed).

As an independent check of the HF layout, each written directory is read back with this script's own reader and
run through a minimal forward written from Hugging Face's conventions (Conv1D x@W+b, tanh GELU, tied head for GPT-2;
rotate-half RoPE with inv_freq = 1/theta^(arange(0,hd,2)/hd), repeated kv heads for LLaMA); its logits must match
the reference model's to 1e-5 relative to the logits' largest magnitude. When llama2.c's export.py is present, its
hf_export is also run (with a stand-in for transformers' LlamaConfig) and its state dict compared with ours.

Needs Debian's python3-torch (1.13) and python3-numpy only.
"""
import argparse
import contextlib
import hashlib
import importlib.util
import io
import json
import math
import os
import struct
import subprocess
import sys
import tempfile
import types

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
TRANSFORMERS_VERSION = "4.46.0"
BATCH, SEQ, VOCAB = 2, 16, 512
PROMPT_LEN, NEW_TOKENS = 5, 12
REL_TOL = 1e-5

REPORT = []


def log(msg=""):
    print(msg)
    REPORT.append(msg)


# ----------------------------------------------------------------------------------------------- safetensors I/O
def bf16_bits(t):
    """float32 -> bfloat16 bit patterns (uint16): upper 16 bits of the float32 after round-to-nearest-even."""
    u = t.detach().to(torch.float32).contiguous().numpy().view(np.uint32).astype(np.uint64)
    rounded = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    bits = rounded.astype(np.uint16)
    # cross-check against torch's own float32 -> bfloat16 conversion (also round-to-nearest-even; no NaNs here)
    ref = t.detach().to(torch.float32).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    assert np.array_equal(bits, ref), "bf16 rounding disagrees with torch"
    return bits


def round_to(t, dtype):
    """The float32 values a tensor has after a round trip through dtype ("F32", "F16" or "BF16")."""
    t = t.detach().to(torch.float32)
    if dtype == "F32":
        return t.clone()
    if dtype == "F16":
        return t.to(torch.float16).to(torch.float32)
    if dtype == "BF16":
        bits = bf16_bits(t).astype(np.uint32) << 16
        return torch.from_numpy(bits.view(np.float32).copy()).reshape(t.shape)
    raise ValueError(dtype)


def tensor_bytes(t, dtype):
    t = t.detach().to(torch.float32).contiguous()
    if dtype == "F32":
        return t.numpy().astype("<f4").tobytes()
    if dtype == "F16":
        return t.to(torch.float16).numpy().astype("<f2").tobytes()
    if dtype == "BF16":
        return bf16_bits(t).astype("<u2").tobytes()
    raise ValueError(dtype)


def save_safetensors(path, tensors, metadata=None):
    """tensors: {name: (tensor, dtype)}. Names sorted, data laid out in that order, header padded with spaces to 8."""
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name in sorted(tensors):
        t, dtype = tensors[name]
        b = tensor_bytes(t, dtype)
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    return offset


def load_safetensors(path):
    """{name: (float32 tensor, dtype)}, plus the metadata dict. Written independently of the writer above."""
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    data = raw[8 + n:]
    meta = header.pop("__metadata__", {})
    out = {}
    end = 0
    for name, info in header.items():
        b, e = info["data_offsets"]
        end = max(end, e)
        buf = data[b:e]
        dt = info["dtype"]
        if dt == "F32":
            a = np.frombuffer(buf, dtype="<f4").astype(np.float32)
        elif dt == "F16":
            a = np.frombuffer(buf, dtype="<f2").astype(np.float32)
        elif dt == "BF16":
            a = (np.frombuffer(buf, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            raise ValueError(f"{path}: {name} has dtype {dt}")
        count = int(np.prod(info["shape"])) if info["shape"] else 1
        assert a.size == count, f"{path}: {name} has {a.size} values for shape {info['shape']}"
        out[name] = (torch.from_numpy(a.copy()).reshape(info["shape"]), dt)
    assert end == len(data), f"{path}: {len(data) - end} trailing bytes"
    return out, meta


def load_hf_dir(d):
    """Reads model.safetensors, or the shards that model.safetensors.index.json names."""
    index = os.path.join(d, "model.safetensors.index.json")
    if os.path.exists(index):
        idx = json.load(open(index))
        out, total = {}, 0
        for shard in sorted(set(idx["weight_map"].values())):
            part, _ = load_safetensors(os.path.join(d, shard))
            for k, v in part.items():
                assert idx["weight_map"][k] == shard, f"{k} is in {shard} but the index says {idx['weight_map'][k]}"
                out[k] = v
                total += v[0].numel() * (4 if v[1] == "F32" else 2)
        assert set(out) == set(idx["weight_map"]), "index and shards name different tensors"
        assert total == idx["metadata"]["total_size"], f"total_size {idx['metadata']['total_size']} != {total}"
        return out
    return load_safetensors(os.path.join(d, "model.safetensors"))[0]


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")


# ----------------------------------------------------------------------------------------------- reference code
def sha256(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def git_commit(d):
    try:
        return subprocess.run(["git", "-C", d, "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except Exception:
        return "unknown (not a git checkout)"


def import_file(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


@contextlib.contextmanager
def quiet():
    """The reference models print a parameter count / a 'slow attention' warning (PyTorch < 2.0); keep them short."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        yield buf


# ----------------------------------------------------------------------------------------------- shared pieces
def make_inputs(seed):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, VOCAB, (BATCH, SEQ), generator=g)
    prompt = torch.randint(0, VOCAB, (PROMPT_LEN,), generator=g)
    return ids, prompt


def loss_of(logits, ids):
    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.size(-1)), ids[:, 1:].reshape(-1))


def targets_of(ids):
    """Targets for the reference models' own loss: next token, -1 (their ignore_index) at the last position."""
    return torch.cat([ids[:, 1:], torch.full((ids.size(0), 1), -1, dtype=ids.dtype)], dim=1)


def greedy(last_logits_fn, prompt):
    """Greedy continuation by full recomputation; also returns the smallest top-1/top-2 logit margin seen."""
    seq = prompt.clone()[None, :]
    margin = float("inf")
    for _ in range(NEW_TOKENS):
        last = last_logits_fn(seq)  # [1, vocab]
        top2 = torch.topk(last[0], 2).values
        margin = min(margin, float(top2[0] - top2[1]))
        seq = torch.cat([seq, torch.argmax(last, dim=-1, keepdim=True)], dim=1)
    return seq[0, PROMPT_LEN:], margin


def compare(name, ours, ref):
    diff = float((ours - ref).abs().max())
    scale = float(ref.abs().max())
    rel = diff / scale
    log(f"  independent HF-convention forward vs reference model: max |diff| = {diff:.3e} "
        f"(max |logit| = {scale:.4f}, relative {rel:.3e})")
    assert rel <= REL_TOL, f"{name}: HF-layout forward differs from the reference model ({rel:.3e} > {REL_TOL})"
    return diff, rel


def write_reference(d, ids, logits, loss, prompt, gen, meta):
    f32 = lambda t: (t.detach().to(torch.float32), "F32")  # noqa: E731
    save_safetensors(os.path.join(d, "reference.safetensors"), {
        "input_ids": f32(ids),
        "logits": f32(logits),
        "loss": f32(loss.reshape(1)),
        "greedy_prompt": f32(prompt),
        "greedy_ids": f32(gen),
    }, metadata=meta)


def list_dir(d):
    for fn in sorted(os.listdir(d)):
        log(f"    {fn:40s} {os.path.getsize(os.path.join(d, fn)):8d} bytes")


def list_tensors(tensors):
    for k in sorted(tensors):
        t, dt = tensors[k]
        log(f"    {k:48s} {dt:5s} {list(t.shape)}")


# ----------------------------------------------------------------------------------------------- GPT-2 (nanoGPT)
def gpt2_config(cfg, dtype_name):
    return {
        "activation_function": "gelu_new",
        "architectures": ["GPT2LMHeadModel"],
        "attn_pdrop": 0.0,
        "bos_token_id": VOCAB - 1,
        "embd_pdrop": 0.0,
        "eos_token_id": VOCAB - 1,
        "initializer_range": 0.02,
        "layer_norm_epsilon": 1e-05,
        "model_type": "gpt2",
        "n_embd": cfg.n_embd,
        "n_head": cfg.n_head,
        "n_inner": None,
        "n_layer": cfg.n_layer,
        "n_positions": cfg.block_size,
        "reorder_and_upcast_attn": False,
        "resid_pdrop": 0.0,
        "scale_attn_by_inverse_layer_idx": False,
        "scale_attn_weights": True,
        "summary_activation": None,
        "summary_first_dropout": 0.1,
        "summary_proj_to_labels": True,
        "summary_type": "cls_index",
        "summary_use_proj": True,
        "tie_word_embeddings": True,
        "torch_dtype": dtype_name,
        "transformers_version": TRANSFORMERS_VERSION,
        "use_cache": True,
        "vocab_size": cfg.vocab_size,
    }


def build_nanogpt(ng):
    cfg = ng.GPTConfig(block_size=64, vocab_size=VOCAB, n_layer=2, n_head=4, n_embd=32, dropout=0.0, bias=True)
    torch.manual_seed(1234)
    with quiet():
        model = ng.GPT(cfg)  # nanoGPT's own init: N(0, 0.02) weights, scaled c_proj, zero biases, ones LN weights
    # HF GPT-2 uses gelu_new (tanh approximation); nanoGPT's MLP uses nn.GELU() (erf). Swap it on the instances.
    for block in model.transformer.h:
        block.mlp.gelu = nn.GELU(approximate="tanh")
    # nanoGPT initialises biases to 0 and LayerNorm weights to 1: perturb them so a loader that drops them fails.
    # mlp.c_fc.bias gets N(0, 1) rather than a small value: with nanoGPT's N(0, 0.02) weights the GELU inputs are
    # otherwise ~0.1, where tanh GELU and erf GELU differ by ~1e-7 and the fixture could not tell them apart.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("mlp.c_fc.bias"):
                p.copy_(torch.randn_like(p))
            elif name.endswith(".bias"):
                p.copy_(0.05 * torch.randn_like(p))
            elif ("ln_" in name) and name.endswith(".weight"):
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
    model.eval()
    assert model.lm_head.weight is model.transformer.wte.weight
    return cfg, model


def nanogpt_to_hf(model, prefix, dtype, with_buffers):
    """nanoGPT state -> HF GPT2LMHeadModel names. Conv1D weights are [in, out]: transpose of nn.Linear's [out, in]."""
    transposed = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
    out = {}
    for k, v in model.state_dict().items():
        if k == "lm_head.weight" or k.endswith(".attn.bias"):
            continue  # tied head (HF writes no lm_head for GPT-2); nanoGPT's own mask buffer (added below if wanted)
        assert k.startswith("transformer.")
        hk = prefix + k[len("transformer."):]
        out[hk] = (v.t().contiguous() if k.endswith(transposed) else v.clone(), dtype)
    if with_buffers:
        n = model.config.block_size
        for i in range(model.config.n_layer):
            out[f"{prefix}h.{i}.attn.bias"] = (torch.tril(torch.ones(n, n)).view(1, 1, n, n), "F32")
            out[f"{prefix}h.{i}.attn.masked_bias"] = (torch.tensor(-1e4), "F32")
    return out


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def hf_gpt2_forward(w, conf, ids, erf_gelu=False):
    """Minimal GPT2LMHeadModel forward from the HF checkpoint conventions (accepts 'transformer.' prefix or none).
    erf_gelu only serves the sensitivity report (a loader mistake to measure)."""
    p = "transformer." if "transformer.wte.weight" in w else ""
    g = lambda k: w[p + k][0]  # noqa: E731
    eps, H = conf["layer_norm_epsilon"], conf["n_head"]

    def ln(x, k):
        mu = x.mean(-1, keepdim=True)
        var = ((x - mu) ** 2).mean(-1, keepdim=True)
        return (x - mu) / torch.sqrt(var + eps) * g(k + ".weight") + g(k + ".bias")

    def conv1d(x, k):
        return x @ g(k + ".weight") + g(k + ".bias")

    B, T = ids.shape
    C = conf["n_embd"]
    hd = C // H
    x = g("wte.weight")[ids] + g("wpe.weight")[torch.arange(T)]
    for i in range(conf["n_layer"]):
        if (p + f"h.{i}.attn.bias") in w:
            mask_buf = g(f"h.{i}.attn.bias")
            assert torch.equal(mask_buf, torch.tril(torch.ones_like(mask_buf)))
            causal = mask_buf[0, 0, :T, :T] != 0
        else:
            causal = torch.tril(torch.ones(T, T)) != 0
        a = conv1d(ln(x, f"h.{i}.ln_1"), f"h.{i}.attn.c_attn")
        q, k, v = (t.reshape(B, T, H, hd).transpose(1, 2) for t in a.split(C, dim=-1))
        s = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
        s = torch.where(causal, s, torch.tensor(torch.finfo(torch.float32).min))
        y = (torch.softmax(s, dim=-1) @ v).transpose(1, 2).reshape(B, T, C)
        x = x + conv1d(y, f"h.{i}.attn.c_proj")
        m = conv1d(ln(x, f"h.{i}.ln_2"), f"h.{i}.mlp.c_fc")
        m = F.gelu(m) if erf_gelu else gelu_new(m)
        x = x + conv1d(m, f"h.{i}.mlp.c_proj")
    x = ln(x, "ln_f")
    assert conf["tie_word_embeddings"] and (p + "lm_head.weight") not in w
    return x @ g("wte.weight").t()


def nanogpt_reference(model, ids, prompt):
    with torch.no_grad():
        logits, own_loss = model(ids, targets_of(ids))  # with targets nanoGPT returns every position's logits
        loss = loss_of(logits, ids)
        assert torch.allclose(loss, own_loss, rtol=1e-6, atol=0), (loss, own_loss)
        gen, margin = greedy(lambda s: model(s)[0][:, -1, :], prompt)
    return logits, loss, gen, margin


def make_gpt2_fixtures(ng, out, src_meta):
    results = {}
    cfg, model = build_nanogpt(ng)
    ids, prompt = make_inputs(7)

    # --- gpt2-tiny: F32, 'transformer.' prefix, old-style mask buffers
    name = "gpt2-tiny"
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    log(f"== {name}: nanoGPT GPT(block_size=64, vocab_size=512, n_layer=2, n_head=4, n_embd=32, bias=True), "
        f"seed 1234, tanh GELU, F32")
    tensors = nanogpt_to_hf(model, "transformer.", "F32", with_buffers=True)
    save_safetensors(os.path.join(d, "model.safetensors"), tensors, metadata={"format": "pt"})
    conf = gpt2_config(cfg, "float32")
    write_json(os.path.join(d, "config.json"), conf)
    write_json(os.path.join(d, "generation_config.json"), {
        "_from_model_config": True, "bos_token_id": VOCAB - 1, "eos_token_id": VOCAB - 1,
        "transformers_version": TRANSFORMERS_VERSION})
    logits, loss, gen, margin = nanogpt_reference(model, ids, prompt)
    write_reference(d, ids, logits, loss, prompt, gen, dict(src_meta, fixture=name, reference="nanoGPT model.py"))
    back = load_hf_dir(d)
    conf = json.load(open(os.path.join(d, "config.json")))
    ours = hf_gpt2_forward(back, conf, ids)
    log(f"  logits {list(logits.shape)}  loss {loss.item():.6f} (ln 512 = {math.log(512):.6f})")
    log(f"  greedy from {prompt.tolist()}: {gen.tolist()} (smallest top-1/top-2 margin {margin:.3e})")
    results[name] = compare(name, ours, logits)
    gpt2_sensitivity(back, conf, ids, logits, results[name][0])
    list_tensors(back)
    list_dir(d)

    # --- gpt2-tiny-noprefix-f16: same weights in F16, no prefix, no buffers; reference from the F16-rounded weights
    name = "gpt2-tiny-noprefix-f16"
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    log(f"== {name}: the same nanoGPT model, weights rounded to F16, keys without 'transformer.', no mask buffers")
    with torch.no_grad():
        for p in model.parameters():  # wte/lm_head is one Parameter, rounded once
            p.copy_(round_to(p, "F16"))
    tensors = nanogpt_to_hf(model, "", "F16", with_buffers=False)
    save_safetensors(os.path.join(d, "model.safetensors"), tensors, metadata={"format": "pt"})
    conf = gpt2_config(cfg, "float16")
    write_json(os.path.join(d, "config.json"), conf)
    write_json(os.path.join(d, "generation_config.json"), {
        "_from_model_config": True, "bos_token_id": VOCAB - 1, "eos_token_id": VOCAB - 1,
        "transformers_version": TRANSFORMERS_VERSION})
    logits, loss, gen, margin = nanogpt_reference(model, ids, prompt)
    write_reference(d, ids, logits, loss, prompt, gen,
                    dict(src_meta, fixture=name, reference="nanoGPT model.py, weights rounded to F16"))
    back = load_hf_dir(d)
    conf = json.load(open(os.path.join(d, "config.json")))
    ours = hf_gpt2_forward(back, conf, ids)
    log(f"  logits {list(logits.shape)}  loss {loss.item():.6f}")
    log(f"  greedy from {prompt.tolist()}: {gen.tolist()} (smallest top-1/top-2 margin {margin:.3e})")
    results[name] = compare(name, ours, logits)
    gpt2_sensitivity(back, conf, ids, logits, results[name][0])
    list_tensors(back)
    list_dir(d)
    return results


# ----------------------------------------------------------------------------------------------- LLaMA (llama2.c)
def permute_for_hf(w, n_heads):
    """llama2.c's RoPE rotates interleaved pairs (2j, 2j+1) of each head; HF's rotate_half pairs (j, j + hd/2).
    Within each head, put the even rows first, then the odd rows, so HF row j / j+hd/2 = llama2.c row 2j / 2j+1.
    w is [n_heads * head_dim, in]; for wk, n_heads must be the number of KV heads and the rows n_kv_heads*head_dim."""
    rows, cols = w.shape
    hd = rows // n_heads
    assert rows == n_heads * hd and hd % 2 == 0
    return w.reshape(n_heads, hd // 2, 2, cols).transpose(1, 2).reshape(rows, cols).contiguous()


def llama_config(model, theta, tied, dtype_name):
    p = model.params
    return {
        "architectures": ["LlamaForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "head_dim": p.dim // p.n_heads,
        "hidden_act": "silu",
        "hidden_size": p.dim,
        "initializer_range": 0.02,
        "intermediate_size": model.layers[0].feed_forward.w1.weight.shape[0],
        "max_position_embeddings": p.max_seq_len,
        "mlp_bias": False,
        "model_type": "llama",
        "num_attention_heads": p.n_heads,
        "num_hidden_layers": p.n_layers,
        "num_key_value_heads": p.n_kv_heads,
        "pretraining_tp": 1,
        "rms_norm_eps": p.norm_eps,
        "rope_scaling": None,
        "rope_theta": float(theta),
        "tie_word_embeddings": tied,
        "torch_dtype": dtype_name,
        "transformers_version": TRANSFORMERS_VERSION,
        "use_cache": True,
        "vocab_size": p.vocab_size,
    }


def build_llama(lm, seed, n_kv_heads, untie, theta):
    args = lm.ModelArgs(dim=32, n_layers=2, n_heads=4, n_kv_heads=n_kv_heads, vocab_size=VOCAB, hidden_dim=None,
                        multiple_of=32, norm_eps=1e-5, max_seq_len=64, dropout=0.0)
    torch.manual_seed(seed)
    with quiet():
        model = lm.Transformer(args)  # llama2.c's own init; output.weight is tok_embeddings.weight
    with torch.no_grad():
        if untie:
            model.output.weight = nn.Parameter(0.02 * torch.randn(args.vocab_size, args.dim))
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):  # RMSNorm weights start at 1: move them away
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
    if theta != 10000.0:
        # llama2.c's Transformer always calls precompute_freqs_cis with its default theta (10000) and ModelArgs has
        # no theta field, so recompute the (non-persistent) RoPE buffers with the reference function and our theta.
        cos, sin = lm.precompute_freqs_cis(args.dim // args.n_heads, args.max_seq_len, theta=theta)
        model.freqs_cos = cos
        model.freqs_sin = sin
    model.eval()
    assert (model.output.weight is model.tok_embeddings.weight) == (not untie)
    return model


def llama_to_hf(model, dtype, tied):
    p = model.params
    out = {"model.embed_tokens.weight": (model.tok_embeddings.weight.detach().clone(), dtype),
           "model.norm.weight": (model.norm.weight.detach().clone(), dtype)}
    for i, layer in enumerate(model.layers):
        a, f = layer.attention, layer.feed_forward
        pre = f"model.layers.{i}."
        out[pre + "input_layernorm.weight"] = (layer.attention_norm.weight.detach().clone(), dtype)
        out[pre + "post_attention_layernorm.weight"] = (layer.ffn_norm.weight.detach().clone(), dtype)
        out[pre + "self_attn.q_proj.weight"] = (permute_for_hf(a.wq.weight.detach(), p.n_heads), dtype)
        # k: n_kv_heads heads of head_dim rows each ([n_kv_heads*head_dim, dim]), not n_heads heads. llama2.c's
        # export.py hf_export gets this right too (key_value_dim = dim // n_rep = n_kv_heads*head_dim, permuted with
        # num_key_value_heads heads); check_against_hf_export asserts its output equals ours bit for bit.
        out[pre + "self_attn.k_proj.weight"] = (permute_for_hf(a.wk.weight.detach(), a.n_kv_heads), dtype)
        out[pre + "self_attn.v_proj.weight"] = (a.wv.weight.detach().clone(), dtype)
        out[pre + "self_attn.o_proj.weight"] = (a.wo.weight.detach().clone(), dtype)
        out[pre + "mlp.gate_proj.weight"] = (f.w1.weight.detach().clone(), dtype)
        out[pre + "mlp.down_proj.weight"] = (f.w2.weight.detach().clone(), dtype)
        out[pre + "mlp.up_proj.weight"] = (f.w3.weight.detach().clone(), dtype)
    if not tied:
        out["lm_head.weight"] = (model.output.weight.detach().clone(), dtype)
    return out


def hf_llama_forward(w, conf, ids, kv_tiled=False):
    """Minimal LlamaForCausalLM forward from HF's conventions (rotate-half RoPE, repeat_kv, SwiGLU).
    kv_tiled only serves the sensitivity report: query head h reads kv head h % n_kv instead of h // n_rep."""
    g = lambda k: w[k][0]  # noqa: E731
    H, KV = conf["num_attention_heads"], conf["num_key_value_heads"]
    C = conf["hidden_size"]
    hd = conf.get("head_dim") or C // H
    eps, theta = conf["rms_norm_eps"], conf["rope_theta"]
    B, T = ids.shape

    def rms(x, k):
        return g(k) * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))

    def rotate_half(x):
        x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
        return torch.cat((-x2, x1), dim=-1)

    def repeat_kv(x, n):
        b, kv, t, d = x.shape
        if kv_tiled:
            return x.repeat(1, n, 1, 1)
        return x[:, :, None].expand(b, kv, n, t, d).reshape(b, kv * n, t, d)

    inv_freq = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.int64).float() / hd))
    freqs = torch.arange(T).float()[:, None] * inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos(), emb.sin()
    causal = torch.tril(torch.ones(T, T)) != 0

    x = g("model.embed_tokens.weight")[ids]
    for i in range(conf["num_hidden_layers"]):
        pre = f"model.layers.{i}."
        h = rms(x, pre + "input_layernorm.weight")
        q = (h @ g(pre + "self_attn.q_proj.weight").t()).reshape(B, T, H, hd).transpose(1, 2)
        k = (h @ g(pre + "self_attn.k_proj.weight").t()).reshape(B, T, KV, hd).transpose(1, 2)
        v = (h @ g(pre + "self_attn.v_proj.weight").t()).reshape(B, T, KV, hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k, v = repeat_kv(k, H // KV), repeat_kv(v, H // KV)
        s = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
        s = torch.where(causal, s, torch.tensor(torch.finfo(torch.float32).min))
        y = (torch.softmax(s, dim=-1) @ v).transpose(1, 2).reshape(B, T, H * hd)
        x = x + y @ g(pre + "self_attn.o_proj.weight").t()
        h = rms(x, pre + "post_attention_layernorm.weight")
        m = F.silu(h @ g(pre + "mlp.gate_proj.weight").t()) * (h @ g(pre + "mlp.up_proj.weight").t())
        x = x + m @ g(pre + "mlp.down_proj.weight").t()
    x = rms(x, "model.norm.weight")
    if conf["tie_word_embeddings"]:
        assert "lm_head.weight" not in w
        head = g("model.embed_tokens.weight")
    else:
        head = g("lm_head.weight")
    return x @ head.t()


def unpermute_from_hf(w, n_heads):
    """Inverse of permute_for_hf."""
    rows, cols = w.shape
    hd = rows // n_heads
    return w.reshape(n_heads, 2, hd // 2, cols).transpose(1, 2).reshape(rows, cols).contiguous()


def sensitivity(ref_logits, noise, variants):
    """How far plausible loader mistakes move the logits, next to the float32 difference of a correct forward:
    a C# test's tolerance has to sit between the two."""
    log(f"  sensitivity (max |logit diff| a loader mistake causes; a correct forward differs by {noise:.1e}):")
    for label, fn in variants:
        try:
            d = float((fn() - ref_logits).abs().max())
        except RuntimeError as e:  # a shape mismatch: the mistake cannot go unnoticed
            log(f"    {label:66s} fails outright ({str(e).splitlines()[0][:40]})")
            continue
        log(f"    {label:66s} {d:.3e}")
        # a C# test comparing logits at 1e-5 absolute must see every mistake
        assert d > 100 * max(noise, 1e-7), f"the fixture does not detect: {label}"


def edit(w, fn):
    """A copy of a loaded-weights dict with fn(name, tensor) -> tensor applied."""
    return {k: (fn(k, t), dt) for k, (t, dt) in w.items()}


def gpt2_sensitivity(back, conf, ids, logits, noise):
    p = "transformer." if "transformer.wte.weight" in back else ""
    sensitivity(logits, noise, [
        ("erf GELU instead of gelu_new (tanh)", lambda: hf_gpt2_forward(back, conf, ids, erf_gelu=True)),
        ("linear biases dropped", lambda: hf_gpt2_forward(edit(back, lambda k, t: torch.zeros_like(t) if (
            k.endswith(".bias") and ".ln_" not in k and "ln_f" not in k and not k.endswith("attn.bias")) else t),
            conf, ids)),
        ("LayerNorm weights/biases taken as 1/0", lambda: hf_gpt2_forward(edit(back, lambda k, t: (
            torch.ones_like(t) if k.endswith(".weight") else torch.zeros_like(t)) if ("ln_" in k) else t),
            conf, ids)),
        ("square Conv1D weights (attn.c_proj) not transposed", lambda: hf_gpt2_forward(edit(
            back, lambda k, t: t.t().contiguous() if k.endswith("attn.c_proj.weight") else t), conf, ids)),
        ("position embeddings dropped", lambda: hf_gpt2_forward(edit(
            back, lambda k, t: torch.zeros_like(t) if k == p + "wpe.weight" else t), conf, ids)),
    ])


def llama_sensitivity(back, conf, ids, logits, noise):
    H, KV = conf["num_attention_heads"], conf["num_key_value_heads"]
    v = [
        ("q/k rows not un-permuted (llama2.c/Meta order under rotate-half)", lambda: hf_llama_forward(edit(
            back, lambda k, t: unpermute_from_hf(t, H if "q_proj" in k else KV) if ("q_proj" in k or "k_proj" in k)
            else t), conf, ids)),
        ("interleaved RoPE on HF-order weights", lambda: hf_llama_forward(edit(
            back, lambda k, t: permute_for_hf(t, H if "q_proj" in k else KV) if ("q_proj" in k or "k_proj" in k)
            else t), conf, ids)),
        ("rope_theta 10000" if conf["rope_theta"] != 10000.0 else "rope_theta 500000", lambda: hf_llama_forward(
            back, dict(conf, rope_theta=10000.0 if conf["rope_theta"] != 10000.0 else 500000.0), ids)),
        ("RMSNorm weights taken as 1", lambda: hf_llama_forward(edit(
            back, lambda k, t: torch.ones_like(t) if k.endswith("norm.weight") else t), conf, ids)),
    ]
    if KV != H:
        v += [
            ("GQA: query head h reads kv head h % n_kv (tiled, not h // n_rep)",
             lambda: hf_llama_forward(back, conf, ids, kv_tiled=True)),
            ("k permuted with n_heads instead of n_kv_heads (exporter bug)", lambda: hf_llama_forward(edit(
                back, lambda k, t: permute_for_hf(unpermute_from_hf(t, KV), H) if "k_proj" in k else t), conf, ids)),
        ]
    if not conf["tie_word_embeddings"]:
        v.append(("untied lm_head ignored (embed_tokens used as head)", lambda: hf_llama_forward(
            {k: t for k, t in back.items() if k != "lm_head.weight"}, dict(conf, tie_word_embeddings=True), ids)))
    sensitivity(logits, noise, v)


def llama_reference(model, ids, prompt):
    with torch.no_grad():
        # with targets llama2.c's forward returns every position's logits (and sets last_loss)
        logits = model(ids, targets_of(ids))
        loss = loss_of(logits, ids)
        assert torch.allclose(loss, model.last_loss, rtol=1e-6, atol=0), (loss, model.last_loss)
        gen, margin = greedy(lambda s: model(s)[:, -1, :], prompt)
    return logits, loss, gen, margin


def check_against_hf_export(export_mod, model, ours):
    """Runs llama2.c's own hf_export (transformers stubbed out) and compares its state dict with ours."""
    captured = {}

    class StubLlamaConfig:
        def __init__(self, **kw):
            captured.update(kw)

        def save_pretrained(self, d):
            pass

    mods = {n: types.ModuleType(n) for n in ("transformers", "transformers.models", "transformers.models.llama",
                                             "transformers.models.llama.configuration_llama")}
    mods["transformers.models.llama.configuration_llama"].LlamaConfig = StubLlamaConfig
    saved = {n: sys.modules.get(n) for n in mods}
    sys.modules.update(mods)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            export_mod.hf_export(model, tmp)
            theirs = torch.load(os.path.join(tmp, "pytorch_model.bin"))
    finally:
        for n, m in saved.items():
            if m is None:
                del sys.modules[n]
            else:
                sys.modules[n] = m
    keys_ours = set(ours)
    keys_theirs = set(theirs) - ({"lm_head.weight"} if "lm_head.weight" not in ours else set())
    assert keys_ours == keys_theirs, (keys_ours ^ keys_theirs)
    same = all(torch.equal(ours[k][0], theirs[k].to(torch.float32)) for k in keys_ours)
    log(f"  llama2.c export.py hf_export state dict equals ours (all {len(keys_ours)} tensors, incl. permuted q/k): "
        f"{same}; its LlamaConfig kwargs: num_key_value_heads={captured.get('num_key_value_heads')}, "
        f"rms_norm_eps={captured.get('rms_norm_eps')}, tie_word_embeddings={captured.get('tie_word_embeddings')}, "
        f"rope_theta={captured.get('rope_theta', 'not passed (LlamaConfig default 10000.0)')}")
    assert same, "llama2.c's hf_export disagrees with this script's HF layout"


def make_llama_fixtures(lm, export_mod, out, src_meta):
    results = {}
    ids, prompt = make_inputs(11)

    # --- llama-tiny-gqa: F32, n_kv_heads=2 < n_heads=4, untied head
    name = "llama-tiny-gqa"
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    log(f"== {name}: llama2.c Transformer(dim=32, n_layers=2, n_heads=4, n_kv_heads=2, vocab_size=512, "
        f"multiple_of=32, max_seq_len=64), seed 4321, untied output, RMSNorm weights perturbed, F32")
    model = build_llama(lm, 4321, n_kv_heads=2, untie=True, theta=10000.0)
    tensors = llama_to_hf(model, "F32", tied=False)
    if export_mod is not None:
        check_against_hf_export(export_mod, model, tensors)
    save_safetensors(os.path.join(d, "model.safetensors"), tensors, metadata={"format": "pt"})
    write_json(os.path.join(d, "config.json"), llama_config(model, 10000.0, False, "float32"))
    write_json(os.path.join(d, "generation_config.json"), {
        "_from_model_config": True, "bos_token_id": 1, "eos_token_id": 2, "transformers_version": TRANSFORMERS_VERSION})
    logits, loss, gen, margin = llama_reference(model, ids, prompt)
    write_reference(d, ids, logits, loss, prompt, gen, dict(src_meta, fixture=name, reference="llama2.c model.py"))
    back = load_hf_dir(d)
    conf = json.load(open(os.path.join(d, "config.json")))
    ours = hf_llama_forward(back, conf, ids)
    log(f"  logits {list(logits.shape)}  loss {loss.item():.6f}")
    log(f"  greedy from {prompt.tolist()}: {gen.tolist()} (smallest top-1/top-2 margin {margin:.3e})")
    results[name] = compare(name, ours, logits)
    llama_sensitivity(back, conf, ids, logits, results[name][0])
    list_tensors(back)
    list_dir(d)

    # --- llama-tiny-tied-bf16-sharded: BF16, no GQA, tied head, rope_theta 500000, two shards + index
    name = "llama-tiny-tied-bf16-sharded"
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    theta = 500000.0
    log(f"== {name}: llama2.c Transformer(dim=32, n_layers=2, n_heads=4, n_kv_heads=4, ...), seed 8765, tied output, "
        f"RoPE theta {theta:g}, weights rounded to BF16, two shards")
    model = build_llama(lm, 8765, n_kv_heads=4, untie=False, theta=theta)
    with torch.no_grad():
        for p in model.parameters():  # tok_embeddings/output is one Parameter, rounded once
            p.copy_(round_to(p, "BF16"))
    tensors = llama_to_hf(model, "BF16", tied=True)
    if export_mod is not None:
        check_against_hf_export(export_mod, model, tensors)
    shard_of = lambda k: 1 if (k == "model.embed_tokens.weight" or k.startswith("model.layers.0.")) else 2  # noqa
    files = {1: "model-00001-of-00002.safetensors", 2: "model-00002-of-00002.safetensors"}
    total = 0
    for s in (1, 2):
        part = {k: v for k, v in tensors.items() if shard_of(k) == s}
        total += save_safetensors(os.path.join(d, files[s]), part, metadata={"format": "pt"})
    write_json(os.path.join(d, "model.safetensors.index.json"), {
        "metadata": {"total_size": total}, "weight_map": {k: files[shard_of(k)] for k in sorted(tensors)}})
    write_json(os.path.join(d, "config.json"), llama_config(model, theta, True, "bfloat16"))
    write_json(os.path.join(d, "generation_config.json"), {
        "_from_model_config": True, "bos_token_id": 1, "eos_token_id": 2, "transformers_version": TRANSFORMERS_VERSION})
    logits, loss, gen, margin = llama_reference(model, ids, prompt)
    write_reference(d, ids, logits, loss, prompt, gen,
                    dict(src_meta, fixture=name, reference="llama2.c model.py, RoPE buffers at theta 500000, "
                                                           "weights rounded to BF16"))
    back = load_hf_dir(d)
    conf = json.load(open(os.path.join(d, "config.json")))
    ours = hf_llama_forward(back, conf, ids)
    log(f"  logits {list(logits.shape)}  loss {loss.item():.6f}  (index total_size {total})")
    log(f"  greedy from {prompt.tolist()}: {gen.tolist()} (smallest top-1/top-2 margin {margin:.3e})")
    results[name] = compare(name, ours, logits)
    llama_sensitivity(back, conf, ids, logits, results[name][0])
    list_tensors(back)
    list_dir(d)
    return results


# ----------------------------------------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nanogpt", required=True, help="checkout of github.com/karpathy/nanoGPT")
    ap.add_argument("--llama2c", required=True, help="checkout of github.com/karpathy/llama2.c")
    ap.add_argument("--out", default=os.path.join(REPO, "tests", "MoraEngine.Tests", "TestData", "hf"))
    ap.add_argument("--report", default=os.path.join(REPO, "bench", "hf", "reference-check.txt"))
    ap.add_argument("--nanogpt-commit", default=None, help="record this commit (default: git rev-parse in --nanogpt)")
    ap.add_argument("--llama2c-commit", default=None, help="record this commit (default: git rev-parse in --llama2c)")
    a = ap.parse_args()

    ng_py = os.path.join(a.nanogpt, "model.py")
    lm_py = os.path.join(a.llama2c, "model.py")
    ex_py = os.path.join(a.llama2c, "export.py")
    ng_commit = a.nanogpt_commit or git_commit(a.nanogpt)
    lm_commit = a.llama2c_commit or git_commit(a.llama2c)
    log(f"make_hf_fixtures.py: PyTorch {torch.__version__}, NumPy {np.__version__}, float32 on CPU, 1 thread")
    log(f"nanoGPT  model.py  sha256 {sha256(ng_py)}  commit {ng_commit}")
    log(f"llama2.c model.py  sha256 {sha256(lm_py)}  commit {lm_commit}")
    if os.path.exists(ex_py):
        log(f"llama2.c export.py sha256 {sha256(ex_py)}")
    log(f"reference.safetensors: input_ids [{BATCH},{SEQ}], logits [{BATCH},{SEQ},{VOCAB}], loss [1] "
        f"(mean CE of logits[:, :-1] vs input_ids[:, 1:]), greedy_prompt [{PROMPT_LEN}], greedy_ids [{NEW_TOKENS}]; "
        f"all F32 (ids as exact float values)")
    log()

    ng = import_file("nanogpt_model", ng_py)
    lm = import_file("llama2c_model", lm_py)
    export_mod = None
    if os.path.exists(ex_py):
        # export.py does `from model import ModelArgs, Transformer`: give it llama2.c's model module under that name
        prev = sys.modules.get("model")
        sys.modules["model"] = lm
        try:
            export_mod = import_file("llama2c_export", ex_py)
        finally:
            if prev is None:
                del sys.modules["model"]
            else:
                sys.modules["model"] = prev

    src = {"nanogpt_commit": ng_commit, "llama2c_commit": lm_commit, "generator": "bench/hf/make_hf_fixtures.py",
           "torch": torch.__version__}
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, ".gitattributes"), "w") as f:
        f.write("# written by bench/hf/make_hf_fixtures.py: keep every byte as written (no EOL conversion)\n"
                "* -text\n")
    results = {}
    results.update(make_gpt2_fixtures(ng, a.out, src))
    log()
    results.update(make_llama_fixtures(lm, export_mod, a.out, src))
    log()
    total = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(a.out) for f in fs)
    log("summary (independent HF-convention forward vs reference model, max |diff| / relative to max |logit|):")
    for k, (diff, rel) in results.items():
        log(f"  {k:32s} {diff:.3e}  {rel:.3e}")
    log(f"fixtures total: {total} bytes")
    assert total < 1.5 * 1024 * 1024
    os.makedirs(os.path.dirname(os.path.abspath(a.report)), exist_ok=True)
    with open(a.report, "w") as f:
        f.write("\n".join(REPORT) + "\n")


if __name__ == "__main__":
    main()
