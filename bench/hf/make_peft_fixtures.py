#!/usr/bin/python3
"""Builds the PEFT-format adapter fixtures of tests/MoraEngine.Tests/TestData/hf/adapters/ (LoRA and MoRA adapters
on the tiny Hugging Face model fixtures made by make_hf_fixtures.py).

Usage: /usr/bin/python3 bench/hf/make_peft_fixtures.py [--hf DIR] [--out DIR] [--vectors FILE]

--hf DIR       the base fixtures (default tests/MoraEngine.Tests/TestData/hf)
--out DIR      where the adapter directories go (default DIR_OF_--hf/adapters)
--vectors FILE MoRA golden vectors to cross-check the operators against, if present
               (default ../shared/testdata/mora-vectors.json next to the repository)

Each adapter directory holds adapter_config.json and adapter_model.safetensors as PEFT's save_pretrained writes them
(adapter name "default" stripped from the keys), and reference.safetensors with the logits of base model + adapter
on the base fixture's input_ids.

How the reference logits are computed (nothing here uses the C# code):
  1. The base weights are read back from the base fixture with make_hf_fixtures.py's own safetensors reader, and
     run through make_hf_fixtures.py's HF-convention forward (hf_gpt2_forward / hf_llama_forward), imported, not
     copied. The adapter is applied *inside* that forward: each targeted weight is replaced by a stand-in object
     (AdaptedWeight) whose `x @ W` / `x @ W.t()` returns the base product plus the adapter's output for x, i.e.
     PEFT's `result = base_layer(x) + lora_B(lora_A(x)) * scaling` (LoRA) or `result = base_layer(x) +
     _apply_mora(x, ...)` (MoRA), from the layer.py of the official MoRA code (github.com/kongds/MoRA, peft-mora).
  2. Independently, ΔW is merged into the base weights (LoRA: scaling·B·A; MoRA: the adapter's output for each
     unit vector e_j, ΔW[:, j] = adapter(e_j)) and the plain base forward is run. Both must agree to 1e-5.
  For MoRA, ΔW is also built two more ways and must agree to 1e-6: a transcription of the official closed form
  (Linear.get_delta_weight of peft-mora's layer.py), and an index-by-index construction from the formulas of
  shared/docs/MORA.md (float64). If the golden vectors file is present, the operators are checked against it too.

Needs Debian's python3-torch (1.13) and python3-numpy only (same as make_hf_fixtures.py).
"""
import argparse
import json
import math
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # leave no __pycache__ in bench/hf
import make_hf_fixtures as hf  # noqa: E402  (importing it sets 1 thread and deterministic algorithms)

REPO = hf.REPO
FORWARD_TOL = 1e-5  # adapted forward vs merged forward, absolute, on logits
DELTA_TOL = 1e-6  # the MoRA ΔW constructions against each other, absolute
MIN_MOVE = 1e-3  # the adapter must move the logits at least this much
PEFT_VERSION_NOTE = "peft 0.9.0 (kongds/MoRA peft-mora, setup.py VERSION)"

log = hf.log


# ----------------------------------------------------------------------------------------------- adapter maths
def lora_forward(x, A, B, scaling):
    """peft-mora layer.py Linear.forward, LoRA branch: `result + lora_B(lora_A(dropout(x))) * scaling`
    (lora_A = nn.Linear(in, r, bias=False), lora_B = nn.Linear(r, out, bias=False); dropout is Identity at 0.0).
    The same for nn.Linear and GPT-2's Conv1D targets: fan_in_fan_out only matters when merging."""
    return ((x @ A.t()) @ B.t()) * scaling


def mora_r_hat(in_f, out_f, r, mora_type):
    """peft-mora layer.py LoraLayer.update_layer, use_mora branch."""
    new_r = int(math.sqrt((in_f + out_f) * r) + 0.5)
    if mora_type == 6:
        new_r = new_r // 2 * 2  # "type 6 require new_r to be even for RoPE"
    return new_r


def mora_rope_cos_sin(r, rb1, dtype):
    """The cos/sin tables of peft-mora layer.py LoraLayer._apply_mora (type 6), also used by get_delta_weight."""
    inv_freq = 1.0 / (10000 ** (torch.arange(0, r, 2).float() / r))
    t = torch.arange(rb1)
    freqs = torch.outer(t, inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos().unsqueeze(0).to(dtype), emb.sin().unsqueeze(0).to(dtype)


def mora_forward(x, M, in_f, out_f, mora_type, pad="wrap", rotate=True):
    """Transcription of peft-mora layer.py LoraLayer._apply_mora for mora_type 1 and 6 (lora_A(in_x) = in_x @ M.T;
    scaling is 1.0 and unused). `pad` and `rotate` exist only for the sensitivity report (plausible mistakes):
    pad="zero" is the commented-out zero padding of the official code; rotate=False skips type 6's RoPE."""
    r = M.shape[0]
    if mora_type == 1:
        # compression: sharing (sum of the r-long groups), padded with the input's own first elements
        sum_inter = in_f // r
        if in_f % r != 0:
            pad_size = r - in_f % r
            x = torch.cat([x, x[..., :pad_size] if pad == "wrap" else torch.zeros_like(x)[..., :pad_size]], dim=-1)
            sum_inter += 1
        in_x = x.view(*x.shape[:-1], sum_inter, r).sum(dim=-2)
    elif mora_type == 6:
        # compression: the padded input as rb1 chunks of r, chunk g rotated by RoPE at position g (rotate-half)
        sum_inter = in_f // r
        rb1 = in_f // r if in_f % r == 0 else in_f // r + 1
        if in_f % r != 0:
            pad_size = r - in_f % r
            x = torch.cat([x, x[..., :pad_size] if pad == "wrap" else torch.zeros_like(x)[..., :pad_size]], dim=-1)
            sum_inter += 1
        in_x = x.view(*x.shape[:-1], sum_inter, r)
        cos, sin = mora_rope_cos_sin(r, rb1, x.dtype)
        rh_in_x = torch.cat((-in_x[..., r // 2:], in_x[..., :r // 2]), dim=-1)
        if rotate:
            in_x = in_x * cos + rh_in_x * sin
    else:
        raise NotImplementedError(f"mora_type {mora_type}")

    out_x = in_x @ M.t()  # lora_A(in_x); lora_B is the same module and is not called

    if mora_type == 1:
        # decompression: tile the r outputs and cut to out_f
        repeat_time = out_f // r
        if out_f % r != 0:
            repeat_time += 1
        out_x = torch.cat([out_x] * repeat_time, dim=-1)[..., :out_f]
    elif mora_type == 6:
        # decompression: concatenate the chunks' outputs, cut to out_f; tile first when there are too few
        out_x = out_x.view(*x.shape[:-1], -1)[..., :out_f]
        if out_x.shape[-1] < out_f:
            repeat_time = out_f // out_x.shape[-1]
            if out_f % out_x.shape[-1] != 0:
                repeat_time += 1
            out_x = torch.cat([out_x] * repeat_time, dim=-1)[..., :out_f]
    return out_x


def mora_delta_official(M, in_f, out_f, mora_type):
    """Transcription of peft-mora layer.py Linear.get_delta_weight, use_mora branch, types 1 and 6: ΔW [out_f, in_f].
    (The official code returns this [out, in] matrix unchanged also for Conv1D targets, whose weight is [in, out];
    see merge_into below.)"""
    r = M.shape[0]
    dtype = M.dtype
    pad_size = r - in_f % r if in_f % r != 0 else 0
    repeat_time = out_f // r
    if out_f % r != 0:
        repeat_time += 1
    aw = M
    if mora_type == 1:
        w = torch.zeros(r, in_f, dtype=dtype)
        for i in range(in_f + pad_size):
            w[:, i % in_f] += aw[:, i % r]
        w = torch.cat([w] * repeat_time, dim=0)[:out_f]
    elif mora_type == 6:
        w = torch.zeros(in_f + pad_size, in_f, dtype=dtype)
        rb1 = in_f // r if in_f % r == 0 else in_f // r + 1
        rb2 = out_f // r if out_f % r == 0 else out_f // r + 1
        sum_inter, repeat_time = rb1, rb2
        cos, sin = mora_rope_cos_sin(r, rb1, dtype)
        aw2 = torch.cat((aw[:, r // 2:], -aw[:, :r // 2]), dim=-1)
        assert sum_inter >= 2, "the official type 6 get_delta_weight fails (unbound i) when in_f <= r_hat"
        for i in range(sum_inter - 1):
            w[i * r:(i + 1) * r, i * r:(i + 1) * r] = aw2 * sin[:, i] + aw * cos[:, i]
        i += 1  # noqa: F821 (as in the official code)
        w[i * r:, i * r:] = (aw2 * sin[:, i] + aw * cos[:, i])[:, :r - pad_size]
        if pad_size > 0:
            w[i * r:, :pad_size] = (aw2 * sin[:, i] + aw * cos[:, i])[:, r - pad_size:]
        if in_f < out_f:
            w = torch.cat([w] * repeat_time, dim=0)[:out_f]
        else:
            w = w[:out_f]
    else:
        raise NotImplementedError(f"mora_type {mora_type}")
    return w


def mora_delta_doc(M, in_f, out_f, mora_type):
    """ΔW [out_f, in_f] built entry by entry (float64) from the formulas of shared/docs/MORA.md, not from the
    official code: G = ceil(in / r̂), pad = G·r̂ − in, wrap padding x[0 .. pad); type 1 sums the G rows and tiles
    the output; type 6 rotates chunk g by angles g·θ_{j mod h}, θ_k = 10000^(−2k/r̂), rot(c)_j = c_j cos + rh(c)_j sin
    with rh(c) = (−c[h..r̂), c[0..h)), applies M to every chunk, concatenates, cuts to out (tiling if short)."""
    M = M.to(torch.float64)
    rh = M.shape[0]
    G = -(-in_f // rh)

    def src(p):  # input index feeding padded position p
        return p if p < in_f else p - in_f

    if mora_type == 1:
        C = torch.zeros(rh, in_f, dtype=torch.float64)
        for p in range(G * rh):
            C[p % rh, src(p)] += 1.0
        full = M @ C  # [r̂, in]
    elif mora_type == 6:
        h = rh // 2
        rows = []
        for g in range(G):
            R = torch.zeros(rh, rh, dtype=torch.float64)
            for j in range(rh):
                a = g * 10000.0 ** (-2.0 * (j % h) / rh)
                R[j, j] += math.cos(a)
                if j < h:
                    R[j, j + h] += -math.sin(a)
                else:
                    R[j, j - h] += math.sin(a)
            P = torch.zeros(rh, in_f, dtype=torch.float64)
            for j in range(rh):
                P[j, src(g * rh + j)] += 1.0
            rows.append(M @ R @ P)
        full = torch.cat(rows, dim=0)  # [G·r̂, in]
    else:
        raise NotImplementedError(f"mora_type {mora_type}")
    return torch.stack([full[i % full.shape[0]] for i in range(out_f)])


def delta_by_identity(fn, in_f):
    """ΔW [out, in] of a linear adapter function: column j is fn(e_j)."""
    return fn(torch.eye(in_f)).t().contiguous()


# ----------------------------------------------------------------------------------------------- hooking the forward
class AdaptedWeight:
    """Stands in for one weight tensor inside make_hf_fixtures.py's HF forward, so that the very same forward code
    runs with the adapter applied to that layer's input (nothing else in the forward changes).
    layout "in_out" (GPT-2 Conv1D, used as `x @ W`); "out_in" (nn.Linear, used as `x @ W.t()`).
    Any other use of the weight raises (AttributeError), so a forward that touched it otherwise would be noticed."""

    def __init__(self, name, weight, layout, delta_fn, uses):
        self._name, self._w, self._layout, self._fn, self._uses = name, weight, layout, delta_fn, uses
        self._transposed = False

    def t(self):
        assert self._layout == "out_in" and not self._transposed
        o = AdaptedWeight(self._name, self._w, self._layout, self._fn, self._uses)
        o._transposed = True
        return o

    def __rmatmul__(self, x):
        assert (self._layout == "in_out") != self._transposed, f"{self._name}: unexpected use"
        self._uses[self._name] = self._uses.get(self._name, 0) + 1
        base = x @ (self._w if self._layout == "in_out" else self._w.t())
        return base + self._fn(x)


# ----------------------------------------------------------------------------------------------- fixtures
# The Linear / Conv1D modules of the two HF classes (what PEFT's target_modules are matched against).
def gpt2_modules(n_layer):
    return [f"transformer.h.{i}.{m}" for i in range(n_layer)
            for m in ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")] + ["lm_head"]


def llama_modules(n_layer):
    return [f"model.layers.{i}.{m}" for i in range(n_layer)
            for m in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                      "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")] + ["lm_head"]


def peft_matches(module_name, target_modules):
    """peft-mora tuners_utils.py check_target_module_exists, list case: exact name or suffix after a dot."""
    return any(module_name == t or module_name.endswith("." + t) for t in target_modules)


def adapter_config(base, kind, r, alpha, targets, fan_in_fan_out, mora_type=None):
    """The dict PEFT's PeftConfigMixin.save_pretrained dumps (asdict of LoraConfig, sort_keys, indent 2).
    LoRA fixtures: the fields of upstream PEFT 0.9's LoraConfig (no use_mora / mora_type, which a loader must
    default to LoRA). MoRA fixtures: the peft-mora fork's LoraConfig, which adds use_mora and mora_type."""
    c = {
        "alpha_pattern": {},
        "auto_mapping": None,
        "base_model_name_or_path": base,
        "bias": "none",
        "fan_in_fan_out": fan_in_fan_out,
        "inference_mode": True,
        "init_lora_weights": True,
        "layers_pattern": None,
        "layers_to_transform": None,
        "loftq_config": {},
        "lora_alpha": alpha,
        "lora_dropout": 0.0,
        "megatron_config": None,
        "megatron_core": "megatron.core",
        "modules_to_save": None,
        "peft_type": "LORA",
        "r": r,
        "rank_pattern": {},
        "revision": None,
        "target_modules": list(targets),
        "task_type": "CAUSAL_LM",
        "use_dora": False,
        "use_rslora": False,
    }
    if kind == "mora":
        c["use_mora"] = True
        c["mora_type"] = mora_type
    return c


def build_adapter(spec, w, arch, gen):
    """Random adapter tensors for every targeted module. Returns {module: layer dict} and the PEFT state dict."""
    n_layer = 2
    modules = gpt2_modules(n_layer) if arch == "gpt2" else llama_modules(n_layer)
    layers, state = {}, {}
    for m in modules:
        if not peft_matches(m, spec["targets"]):
            continue
        wt = w[m + ".weight"][0]
        layout = "in_out" if arch == "gpt2" else "out_in"  # Conv1D [in, out]; nn.Linear [out, in]
        in_f, out_f = (wt.shape[0], wt.shape[1]) if layout == "in_out" else (wt.shape[1], wt.shape[0])
        key = "base_model.model." + m
        L = {"layout": layout, "in": in_f, "out": out_f}
        if spec["kind"] == "lora":
            r = spec["r"]
            # A as PEFT initialises it (kaiming_uniform_(a=sqrt(5)) = U(-1/sqrt(in), 1/sqrt(in))); B, which PEFT
            # zero-initialises, random too so that the adapter changes the output
            bound = 1.0 / math.sqrt(in_f)
            A = (torch.rand(r, in_f, generator=gen) * 2 - 1) * bound
            B = spec["b_std"] * torch.randn(out_f, r, generator=gen)
            L.update(A=A, B=B, scaling=spec["alpha"] / r)
            state[key + ".lora_A.weight"] = A
            state[key + ".lora_B.weight"] = B
        else:
            rh = mora_r_hat(in_f, out_f, spec["r"], spec["mora_type"])
            Mm = spec["m_std"] * torch.randn(rh, rh, generator=gen)
            L.update(M=Mm, r_hat=rh, mora_type=spec["mora_type"])
            # lora_B is the same nn.Linear as lora_A: the state dict has both names; save_pretrained clones the
            # alias (safetensors forbids shared storage), so the file holds two equal tensors
            state[key + ".lora_A.weight"] = Mm
            state[key + ".lora_B.weight"] = Mm.clone()
        layers[m] = L
    return layers, state


def layer_fn(L, **variant):
    if "A" in L:
        scaling = variant.get("scaling", L["scaling"])
        return lambda x: lora_forward(x, L["A"], L["B"], scaling)
    Mm = L["M"].t() if variant.get("transpose_m") else L["M"]
    return lambda x: mora_forward(x, Mm, L["in"], L["out"], L["mora_type"], pad=variant.get("pad", "wrap"),
                                  rotate=variant.get("rotate", True))


def adapted_weights(w, layers, uses, skip=(), **variant):
    out = dict(w)
    for m, L in layers.items():
        if m in skip:
            continue
        k = m + ".weight"
        out[k] = (AdaptedWeight(m, w[k][0], L["layout"], layer_fn(L, **variant), uses), w[k][1])
    return out


def merged_weights(w, deltas):
    """deltas: {module: ΔW [out, in]}. Conv1D weights are [in, out], so ΔW goes in transposed: what PEFT's
    transpose(ΔW, fan_in_fan_out) does for LoRA (the official MoRA get_delta_weight does not; see README)."""
    out = dict(w)
    for m, (dW, layout) in deltas.items():
        k = m + ".weight"
        out[k] = (w[k][0] + (dW.t() if layout == "in_out" else dW), w[k][1])
    return out


def check_golden_vectors(path):
    if not path or not os.path.exists(path):
        log(f"  (golden vectors {path} not found: skipped)")
        return
    cases = json.load(open(path))["cases"]
    n = 0
    for c in cases:
        t = c["mora_type"]
        if t not in (1, 6):
            continue
        in_f, out_f, rh = c["in_features"], c["out_features"], c["r_hat"]
        assert rh == mora_r_hat(in_f, out_f, c["lora_rank"], t)
        x = torch.tensor(c["x"], dtype=torch.float64).reshape(-1, in_f)
        M = torch.tensor(c["M"], dtype=torch.float64).reshape(rh, rh)
        want_y = torch.tensor(c["delta_output"], dtype=torch.float64).reshape(-1, out_f)
        want_w = torch.tensor(c["delta_weight"], dtype=torch.float64).reshape(out_f, in_f)
        d1 = float((mora_forward(x, M, in_f, out_f, t) - want_y).abs().max())
        d2 = float((mora_delta_doc(M, in_f, out_f, t) - want_w).abs().max())
        d3 = float((mora_delta_official(M, in_f, out_f, t) - want_w).abs().max())
        log(f"  golden vectors type {t} in {in_f} out {out_f} r̂ {rh}: forward {d1:.1e}, MORA.md ΔW {d2:.1e}, "
            f"official ΔW {d3:.1e}")
        # type 6: the official code builds its cos/sin tables in float32 (`.float()`) even for float64 inputs, so it
        # differs from float64 vectors by ~1e-8 relative; types 1 (no tables) must match to float64 rounding
        assert max(d1, d3) < (1e-6 if t == 6 else 1e-12) and d2 < 1e-12, (d1, d2, d3)
        n += 1
    assert n > 0


FIXTURES = [
    # name, base fixture, arch, spec
    ("gpt2-lora", "gpt2-tiny", "gpt2", dict(kind="lora", r=4, alpha=8, targets=["c_attn", "c_proj"],
                                            fan_in_fan_out=True, seed=101, b_std=0.01)),
    ("llama-lora", "llama-tiny-gqa", "llama", dict(kind="lora", r=4, alpha=16, targets=[
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"], fan_in_fan_out=False,
        seed=102, b_std=0.006)),
    ("llama-mora1", "llama-tiny-gqa", "llama", dict(kind="mora", r=4, alpha=8, mora_type=1, targets=[
        "q_proj", "k_proj", "down_proj"], fan_in_fan_out=False, seed=103, m_std=0.02)),
    ("gpt2-mora6", "gpt2-tiny", "gpt2", dict(kind="mora", r=4, alpha=8, mora_type=6, targets=["c_attn", "c_fc"],
                                             fan_in_fan_out=True, seed=104, m_std=0.02)),
]


def make_fixture(name, base, arch, spec, hf_dir, out):
    log(f"== {name}: {'LoRA' if spec['kind'] == 'lora' else 'MoRA type %d' % spec['mora_type']} r={spec['r']} "
        f"on {base}, target_modules {spec['targets']}, seed {spec['seed']}")
    bd = os.path.join(hf_dir, base)
    w = hf.load_hf_dir(bd)
    conf = json.load(open(os.path.join(bd, "config.json")))
    ref, _ = hf.load_safetensors(os.path.join(bd, "reference.safetensors"))
    ids = ref["input_ids"][0].to(torch.int64)
    assert torch.equal(ids.to(torch.float32), ref["input_ids"][0])
    base_logits = ref["logits"][0]
    fwd = hf.hf_gpt2_forward if arch == "gpt2" else hf.hf_llama_forward

    with torch.no_grad():
        plain = fwd(w, conf, ids)
        log(f"  base forward vs {base}/reference.safetensors logits: {float((plain - base_logits).abs().max()):.2e}")

        gen = torch.Generator().manual_seed(spec["seed"])
        layers, state = build_adapter(spec, w, arch, gen)

        # 1. adapter applied inside the forward
        uses = {}
        logits = fwd(adapted_weights(w, layers, uses), conf, ids)
        assert set(uses) == set(layers) and all(v == 1 for v in uses.values()), uses

        # 2. ΔW merged into the weights
        deltas = {}
        for m, L in layers.items():
            if spec["kind"] == "lora":
                dW = L["scaling"] * (L["B"] @ L["A"])  # get_delta_weight: transpose(B @ A, fan_in_fan_out) * scaling
            else:
                dW = delta_by_identity(layer_fn(L), L["in"])
                off = mora_delta_official(L["M"], L["in"], L["out"], L["mora_type"])
                doc = mora_delta_doc(L["M"], L["in"], L["out"], L["mora_type"]).to(torch.float32)
                e1, e2 = float((dW - off).abs().max()), float((dW - doc).abs().max())
                log(f"  {m:36s} in {L['in']:3d} out {L['out']:3d} r̂ {L['r_hat']:2d} "
                    f"(G {-(-L['in'] // L['r_hat'])}, pad {(-L['in']) % L['r_hat']:2d}): ΔW by identity vs official "
                    f"get_delta_weight {e1:.1e}, vs MORA.md {e2:.1e}, rank {int(torch.linalg.matrix_rank(dW))}")
                assert max(e1, e2) <= DELTA_TOL, (m, e1, e2)
            assert dW.shape == (L["out"], L["in"])
            deltas[m] = (dW, L["layout"])
        merged = fwd(merged_weights(w, deltas), conf, ids)

    diff = float((logits - merged).abs().max())
    move = float((logits - base_logits).abs().max())
    log(f"  adapted forward vs merged forward: max |diff| = {diff:.3e}; the adapter moves the logits by "
        f"{move:.3e} (max |logit| {float(logits.abs().max()):.4f})")
    assert diff <= FORWARD_TOL, f"{name}: forward and merged disagree ({diff})"
    assert move >= MIN_MOVE, f"{name}: the adapter hardly moves the logits ({move})"

    # plausible loader mistakes must move the logits by far more than the float32 noise
    variants = []
    if spec["kind"] == "lora":
        variants.append((f"scaling 1 instead of lora_alpha / r = {spec['alpha'] / spec['r']:g}", {"scaling": 1.0}))
        variants.append(("scaling lora_alpha / sqrt(r) (rsLoRA)", {"scaling": spec["alpha"] / math.sqrt(spec["r"])}))
    else:
        variants.append(("M transposed", {"transpose_m": True}))
        variants.append(("zero padding instead of wrap padding", {"pad": "zero"}))
        if spec["mora_type"] == 6:
            variants.append(("type 6 without the RoPE rotation", {"rotate": False}))
    for m in layers:
        if m.endswith("mlp.c_proj") or m.endswith("self_attn.k_proj"):
            variants.append((f"{m} adapter not applied", {"skip": (m,)}))
            break
    log(f"  sensitivity (max |logit diff| from the reference; forward vs merged differs by {diff:.1e}):")
    with torch.no_grad():
        for label, v in variants:
            skip = v.pop("skip", ())
            d = float((fwd(adapted_weights(w, layers, {}, skip=skip, **v), conf, ids) - logits).abs().max())
            log(f"    {label:60s} {d:.3e}")
            assert d > 100 * max(diff, 1e-7), f"{name}: the fixture does not detect: {label}"

    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    for fn in os.listdir(d):
        os.remove(os.path.join(d, fn))
    cfg = adapter_config(base, spec["kind"], spec["r"], spec["alpha"], spec["targets"], spec["fan_in_fan_out"],
                         spec.get("mora_type"))
    with open(os.path.join(d, "adapter_config.json"), "w") as f:
        f.write(json.dumps(cfg, indent=2, sort_keys=True))  # as PEFT writes it (no trailing newline)
    hf.save_safetensors(os.path.join(d, "adapter_model.safetensors"), {k: (v, "F32") for k, v in state.items()},
                        metadata={"format": "pt"})
    hf.save_safetensors(os.path.join(d, "reference.safetensors"), {
        "input_ids": (ids.to(torch.float32), "F32"), "logits": (logits, "F32")},
        metadata={"generator": "bench/hf/make_peft_fixtures.py", "fixture": name, "base": base,
                  "torch": torch.__version__, "reference": "make_hf_fixtures.py HF-convention forward + adapter "
                  "(peft-mora layer.py forward / _apply_mora), checked against the merged weights"})

    # read back what was written
    back, meta = hf.load_safetensors(os.path.join(d, "adapter_model.safetensors"))
    assert meta == {"format": "pt"} and set(back) == set(state)
    for k in state:
        assert torch.equal(back[k][0], state[k])
        if spec["kind"] == "mora" and k.endswith("lora_A.weight"):
            assert torch.equal(back[k][0], back[k.replace("lora_A", "lora_B")][0])
    rb, _ = hf.load_safetensors(os.path.join(d, "reference.safetensors"))
    assert torch.equal(rb["logits"][0], logits)
    log("  adapter_model.safetensors:")
    hf.list_tensors(back)
    hf.list_dir(d)
    return diff, move


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hf", default=os.path.join(REPO, "tests", "MoraEngine.Tests", "TestData", "hf"))
    ap.add_argument("--out", default=None)
    ap.add_argument("--vectors", default=os.path.join(REPO, "..", "shared", "testdata", "mora-vectors.json"))
    a = ap.parse_args()
    out = a.out or os.path.join(a.hf, "adapters")
    os.makedirs(out, exist_ok=True)
    log(f"make_peft_fixtures.py: PyTorch {torch.__version__}, float32 on CPU, 1 thread; adapter maths transcribed "
        f"from {PEFT_VERSION_NOTE}")
    log("MoRA operators against the golden vectors:")
    check_golden_vectors(os.path.abspath(a.vectors))
    results = {}
    for name, base, arch, spec in FIXTURES:
        log()
        results[name] = make_fixture(name, base, arch, dict(spec), a.hf, out)
    log()
    total = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(out) for f in fs)
    log("summary (adapted forward vs merged forward, max |diff|; how far the adapter moves the logits):")
    for k, (diff, move) in results.items():
        log(f"  {k:14s} {diff:.3e}  {move:.3e}")
    log(f"adapters total: {total} bytes")


if __name__ == "__main__":
    main()
