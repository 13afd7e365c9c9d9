#!/usr/bin/python3
"""Condenses a parity case directory (after reference.py) into a small fixture the test suite reads.

Usage: /usr/bin/python3 bench/parity/make_fixture.py DIR OUT.json ARGS...

Keeps only PyTorch's numbers: per-step losses and learning rates, and for every trainable tensor at step 0 the
gradient's L2 norm and its projection on a fixed probe vector p_i = cos(0.7·i) (so a gradient with the right
norm but the wrong direction fails too). ARGS are the `parity run` options that rebuild the case.
"""
import json
import math
import sys

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from reference import load_safetensors  # noqa: E402

import torch  # noqa: E402


def main(dir, out, args):
    torch_run = json.load(open(f"{dir}/torch.json"))
    grads = load_safetensors(f"{dir}/torch_grads.safetensors")
    tensors = {}
    for name, g in sorted(grads.items()):
        if not name.startswith("step0."):
            continue
        flat = g.double().reshape(-1)
        probe = torch.cos(0.7 * torch.arange(flat.numel(), dtype=torch.float64))
        tensors[name[len("step0."):]] = {"norm": math.sqrt(float((flat * flat).sum())), "probe": float((flat * probe).sum())}
    fixture = {
        "source": "bench/parity/reference.py (PyTorch " + torch.__version__ + ") on the case `parity run " + " ".join(args) + "` wrote",
        "args": args,
        "losses": torch_run["losses"],
        "lrs": torch_run["lrs"],
        "step0_gradients": tensors,
    }
    with open(out, "w") as f:
        json.dump(fixture, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
