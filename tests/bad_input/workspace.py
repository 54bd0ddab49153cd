"""The files the bad-input cases point at: configs, IDX folders, checkpoints, meshes, results folders."""

from __future__ import annotations

import gzip
import json
import struct
from pathlib import Path

import numpy as np
import torch
import yaml
from safetensors.torch import save_file
from torch import nn

from sciprune.core.io import save_checkpoint
from sciprune.nn.mlp import MLP
from sciprune.runner.config import dump_config, load_preset, validate

QUAD = "MFEM mesh v1.0\ndimension\n2\nelements\n1\n1 3 {ids}\nboundary\n0\nvertices\n4\n2\n0 0\n1 0\n0 1\n{last}\n"


def _idx(dims: list[int], data: bytes, magic: int | None = None) -> bytes:
    magic = magic if magic is not None else (2049 if len(dims) == 1 else 2051)
    return struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in dims) + data


def _mnist(folder: Path, *, n_train: int = 20, n_test: int = 10, side: int = 4, **override: bytes) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    files = {
        "train-images-idx3-ubyte": _idx([n_train, side, side], rng.integers(0, 255, n_train * side * side, dtype=np.uint8).tobytes()),
        "train-labels-idx1-ubyte": _idx([n_train], rng.integers(0, 10, n_train, dtype=np.uint8).tobytes()),
        "t10k-images-idx3-ubyte": _idx([n_test, side, side], rng.integers(0, 255, n_test * side * side, dtype=np.uint8).tobytes()),
        "t10k-labels-idx1-ubyte": _idx([n_test], rng.integers(0, 10, n_test, dtype=np.uint8).tobytes()),
    }
    files.update(override)
    for name, data in files.items():
        if data:
            (folder / name).write_bytes(data)
    return folder


def _results(folder: Path, config: dict, metrics: str | bytes | None) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(config if isinstance(config, str) else dump_config(validate(config)))
    if metrics is not None:
        (folder / "metrics.csv").write_bytes(metrics.encode() if isinstance(metrics, str) else metrics)
    return folder


def build(w: Path) -> None:
    """Write every input of the cases under ``w``."""
    w.mkdir(exist_ok=True)
    (w / "afile").write_text("a regular file\n")
    (w / "emptydir").mkdir()
    user = w / "userdir"
    user.mkdir()
    for name in ("metrics.csv", "summary.json", "report.html", "notes.txt"):
        (user / name).write_text(f"the user's own {name}\n")
    (user / "plots").mkdir()
    (user / "plots" / "fig.png").write_bytes(b"\x89PNG user")

    # configs
    classify = load_preset("classify", "demo")
    (w / "good.yaml").write_text(yaml.safe_dump(classify))
    cfg = w / "cfg"
    cfg.mkdir()
    texts = {
        "notutf8.yaml": b"study: classify\nseed: \xff\xfe\n",
        "latin1.yaml": "study: classify\n# caf\xe9\n".encode("latin-1"),
        "dup.yaml": b"study: classify\nseed: 1\nseed: 2\n",
        "dupnested.yaml": b"study: classify\ntrain: {epochs: 1, epochs: 2}\n",
        "bomb.yaml": ("a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
            f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdef", "bcdefg")) + "study: classify\n").encode(),
        "selfref.yaml": b"study: classify\nx: &x [*x]\n",
        "deep.yaml": b"study: classify\nx: " + b"[" * 5000 + b"]" * 5000 + b"\n",
        "big.yaml": b"study: classify\n" + b"# padding\n" * 120_000,
        "list.yaml": b"- study: classify\n",
        "scalar.yaml": b"classify\n",
        "empty.yaml": b"",
        "nostudy.yaml": b"seed: 1\n",
        "unknownstudy.yaml": b"study: regress\n",
        "typostudy.yaml": b"study: clasify\n",
        "studynum.yaml": b"study: 3\n",
        "syntax.yaml": b"study: classify\ntrain: {epochs: 3\n",
        "tabs.yaml": b"study: classify\n\ttrain: 1\n",
        "pyobj.yaml": b"study: !!python/object/apply:os.system [echo hi]\n",
        "unhashable.yaml": b"study: classify\n? [a, b]\n: 1\n",
        "unknownfield.yaml": b"study: classify\nepochs: 3\n",
        "unknownnested.yaml": b"study: classify\ntrain: {epochz: 3}\n",
        "sectionscalar.yaml": b"study: classify\ntrain: 3\n",
        "boolint.yaml": b"study: classify\nrepeats: true\n",
        "floatint.yaml": b"study: classify\ntrain: {epochs: 1e29}\n",
        "inf.yaml": b"study: classify\ntrain: {lr: .inf}\n",
        "nan.yaml": b"study: classify\ntrain: {lr: .nan}\n",
        "amrbad.yaml": b"study: amr\nmax_it: 1\nnum_uniform_ref: 2\n",
        "amrmode.yaml": b"study: amr\nmode: adaptive\n",
        "nul.yaml": b"study: classify\x00\n",
    }
    for name, data in texts.items():
        (cfg / name).write_bytes(data)
    (cfg / "adir.yaml").mkdir()

    # IDX folders (classify --dataset mnist --data-dir ...)
    idx = w / "idx"
    idx.mkdir()
    _mnist(idx / "good")
    _mnist(idx / "images1d", **{"train-images-idx3-ubyte": _idx([20], bytes(20), magic=2049)})
    _mnist(idx / "labels3d", **{"train-labels-idx1-ubyte": _idx([20, 1, 1], bytes(20), magic=2051)})
    _mnist(idx / "testsize", **{"t10k-images-idx3-ubyte": _idx([10, 5, 5], bytes(250))})
    _mnist(idx / "zero", **{"train-images-idx3-ubyte": _idx([0, 4, 4], b""), "train-labels-idx1-ubyte": _idx([0], b"")})
    _mnist(idx / "overflow", **{"train-images-idx3-ubyte": _idx([2**31, 2**31, 4], bytes(64))})
    _mnist(idx / "missing", **{"t10k-labels-idx1-ubyte": b""})
    _mnist(idx / "count", **{"train-labels-idx1-ubyte": _idx([19], bytes(19))})
    _mnist(idx / "magic", **{"train-images-idx3-ubyte": _idx([20, 4, 4], bytes(320), magic=2052)})
    _mnist(idx / "truncated", **{"train-images-idx3-ubyte": _idx([20, 4, 4], bytes(100))})
    _mnist(idx / "short", **{"train-labels-idx1-ubyte": b"\x00\x00"})
    bad_gz = _mnist(idx / "badgz")
    (bad_gz / "train-images-idx3-ubyte").unlink()
    (bad_gz / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"x" * 100)[:-12] + b"garbage!1234")
    not_gz = _mnist(idx / "notgz")
    (not_gz / "train-images-idx3-ubyte").rename(not_gz / "train-images-idx3-ubyte.gz")
    isdir = _mnist(idx / "isdir", **{"train-labels-idx1-ubyte": b""})
    (isdir / "train-labels-idx1-ubyte").mkdir()

    # checkpoints
    ck = w / "ckpt"
    ck.mkdir()
    mlp = MLP([2, 8, 1], "relu")
    save_checkpoint(ck / "good.safetensors", mlp)
    good = (ck / "good.safetensors").read_bytes()
    (ck / "random.safetensors").write_bytes(np.random.default_rng(1).integers(0, 255, 300, dtype=np.uint8).tobytes())
    (ck / "truncated.safetensors").write_bytes(good[:150])
    (ck / "empty.safetensors").write_bytes(b"")
    (ck / "short.safetensors").write_bytes(b"\x05\x00")
    header = b'{"w":{"dtype":"F32","shape":[1000,1000],"data_offsets":[0,4000000]}}'
    (ck / "liar.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + bytes(16))
    header = b'{"w":{"dtype":"Q99","shape":[1],"data_offsets":[0,4]}}'
    (ck / "dtype.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + bytes(4))
    header = b'[1, 2, 3]'
    (ck / "listheader.safetensors").write_bytes(struct.pack("<Q", len(header)) + header)
    state = {k: v.contiguous() for k, v in mlp.state_dict().items()}
    save_file(state, str(ck / "metalist.safetensors"), metadata={"sciprune": "[1, 2]"})
    save_file(state, str(ck / "nosizes.safetensors"), metadata={"sciprune": json.dumps({"arch": {"class": "MLP"}})})
    save_file(state, str(ck / "sizesstr.safetensors"), metadata={"sciprune": json.dumps({"arch": {"class": "MLP", "sizes": "abc", "activations": ["relu", "identity"]}})})
    save_file(state, str(ck / "metanotjson.safetensors"), metadata={"sciprune": "{not json"})
    save_file(state, str(ck / "noarch.safetensors"), metadata={"other": "x"})
    save_file({"layers.0.weight": torch.zeros(3, 3)}, str(ck / "mismatch.safetensors"),
              metadata={"sciprune": json.dumps({"arch": mlp.arch})})
    acts = [nn.ReLU(), nn.Identity()]
    torch.save({"weights_list": [torch.ones(8, 2, dtype=torch.long), torch.ones(1, 8, dtype=torch.long)],
                "bias_list": [torch.zeros(8, dtype=torch.long), torch.zeros(1, dtype=torch.long)], "act_list": acts}, ck / "int64.ckpt")
    torch.save({"weights_list": [torch.full((8, 2), float("nan")), torch.ones(1, 8)],
                "bias_list": [torch.zeros(8), torch.zeros(1)], "act_list": acts}, ck / "naninr.ckpt")
    torch.save({"weights_list": [torch.full((8, 2), float("inf")), torch.ones(1, 8)],
                "bias_list": [torch.zeros(8), torch.zeros(1)], "act_list": acts}, ck / "infinr.ckpt")
    torch.save({"weights_list": [torch.ones(8, 2), torch.ones(1, 7)],
                "bias_list": [torch.zeros(8), torch.zeros(1)], "act_list": acts}, ck / "chain.ckpt")
    torch.save({"weights_list": [torch.ones(8, 2), torch.ones(1, 8)],
                "bias_list": [torch.zeros(8), torch.zeros(1)], "act_list": [nn.LeakyReLU(), nn.Identity()]}, ck / "leaky.ckpt")
    torch.save({"something": torch.ones(2)}, ck / "otherdict.ckpt")
    torch.save(nn.Linear(2, 2), ck / "module.pt")
    torch.save({"weights_list": nn.ParameterList([nn.Parameter(torch.ones(8, 2)), nn.Parameter(torch.ones(1, 8))]),
                "bias_list": nn.ParameterList([nn.Parameter(torch.zeros(8)), nn.Parameter(torch.zeros(1))]),
                "act_list": acts}, ck / "legacy.ckpt", _use_new_zipfile_serialization=False)
    (ck / "zipjunk.pt").write_bytes(b"PK\x03\x04" + bytes(60))
    (ck / "pickletrunc.pt").write_bytes(b"\x80\x02}q\x00")
    (ck / "text.pt").write_text("hello, I am not a checkpoint\n")
    (ck / "adir.safetensors").mkdir()

    # meshes
    me = w / "mesh"
    me.mkdir()
    (me / "vertex99.mesh").write_text(QUAD.format(ids="0 1 2 99", last="1 1"))
    (me / "negative.mesh").write_text(QUAD.format(ids="0 1 2 -1", last="1 1"))
    (me / "nanvertex.mesh").write_text(QUAD.format(ids="0 1 2 3", last="nan 1"))
    (me / "infvertex.mesh").write_text(QUAD.format(ids="0 1 2 3", last="1 inf"))
    (me / "fewids.mesh").write_text(QUAD.format(ids="0 1 2", last="1 1"))
    (me / "badgeom.mesh").write_text(QUAD.format(ids="0 1 2 3", last="1 1").replace("1 3 0 1 2 3", "1 42 0 1 2 3"))
    (me / "textid.mesh").write_text(QUAD.format(ids="0 1 two 3", last="1 1"))
    (me / "badcoord.mesh").write_text(QUAD.format(ids="0 1 2 3", last="1 one"))
    (me / "dim4.mesh").write_text(QUAD.format(ids="0 1 2 3", last="1 1").replace("dimension\n2", "dimension\n4"))
    (me / "shortvertices.mesh").write_text(QUAD.format(ids="0 1 2 3", last="1 1").rsplit("\n", 3)[0] + "\n")
    (me / "hugecount.mesh").write_text(QUAD.format(ids="0 1 2 3", last="1 1").replace("elements\n1", "elements\n99999999999"))
    (me / "repeated.mesh").write_text(QUAD.format(ids="0 1 1 3", last="1 1"))
    (me / "bdrgeom.mesh").write_text(QUAD.format(ids="0 1 3 2", last="1 1").replace("boundary\n0", "boundary\n1\n1 3 0 1 3 2"))
    (me / "order.mesh").write_text("MFEM mesh v1.0\ndimension\n2\nvertices\n4\n2\n0 0\n1 0\n0 1\n1 1\n")
    (me / "tri.mesh").write_text("MFEM mesh v1.0\ndimension\n2\nelements\n1\n1 2 0 1 2\nboundary\n0\nvertices\n3\n2\n0 0\n1 0\n0 1\n")
    (me / "notutf8.mesh").write_bytes(b"MFEM mesh v1.0\n\xff\xfe\n")
    (me / "empty.mesh").write_bytes(b"")
    (me / "garbage.mesh").write_text("this is not a mesh\n")
    (me / "nc_truncated.mesh").write_text("MFEM NC mesh v1.0\n\ndimension\n2\n\nelements\n4\n-1 1 3 3 4 5\n")
    (me / "adir.mesh").mkdir()

    # results folders for report / --resume
    rs = w / "results"
    rs.mkdir()
    tiny = {**classify, "repeats": 1}
    header = "method,variant,seed,stage,sparsity,params_nnz,accuracy,loss\n"
    _results(rs / "done", tiny, header + "dense,dense,0,-1,0.0,100,90.0,0.3\n")
    _results(rs / "binary", tiny, bytes(range(256)) * 4)
    _results(rs / "nocolumns", tiny, "a,b,c\n1,2,3\n")
    _results(rs / "headeronly", tiny, header)
    _results(rs / "nometrics", tiny, None)
    _results(rs / "ragged", tiny, header + "dense,dense,0\n")
    _results(rs / "emptymetrics", tiny, "")
    _results(rs / "corruptconfig", "study: classify\ntrain: {epochs: 3\n", header + "dense,dense,0,-1,0.0,100,90.0,0.3\n")
    _results(rs / "unknownstudy", "study: regress\n", header)
    _results(rs / "listconfig", "- 1\n- 2\n", header)
    _results(rs / "badfield", "study: classify\nrepeats: 0\n", header)
    _results(rs / "notutf8config", "study: classify\n", header)
    (rs / "notutf8config" / "config.yaml").write_bytes(b"study: classify\nseed: \xff\n")
    (rs / "noconfig").mkdir()
    (rs / "noconfig" / "metrics.csv").write_text(header)

    amr = load_preset("amr", "demo")
    amr_header = "method,role,seed,inr,sparsity,params_nnz,it,dofs,true_dofs,elements,rmse,max_error,seconds,examined,refined,max_level\n"
    row = "pruning,run,0,corner,0.5,100,0,25,25,16,0.1,0.2,0.01,16,4,0\n"
    for name, mesh in (("amrtruncmesh", "MFEM NC mesh v1.0\n\ndimension\n2\n\nelements\n4\n-1 1 3 3 4 5\n"),
                       ("amrbadvertex", QUAD.format(ids="0 1 2 99", last="1 1"))):
        folder = _results(rs / name, amr, amr_header + row)
        (folder / "it_0.mesh").write_text(mesh)
        (folder / "it_0.gf").write_text("FiniteElementSpace\nFiniteElementCollection: H1_2D_P1\nVDim: 1\nOrdering: 0\n\n0\n0\n")
    folder = _results(rs / "amrshortgf", amr, amr_header + row)
    (folder / "it_0.mesh").write_text(QUAD.format(ids="0 1 3 2", last="1 1"))
    (folder / "it_0.gf").write_text("FiniteElementSpace\nFiniteElementCollection: H1_2D_P1\nVDim: 1\nOrdering: 0\n\n0\n0\n")

    _prune_inputs(w / "prune")


def _prune_inputs(pr: Path) -> None:
    """Samples and weights for ``sciprune prune`` (the shipped example: 2 inputs -> 1 output, width 32)."""
    from sciprune.studies.prune.example import residual_mlp

    pr.mkdir()
    rng = np.random.default_rng(0)
    x, y = rng.uniform(-1, 1, (40, 2)), rng.uniform(-1, 1, (40, 1))
    np.savez(pr / "good.npz", x=x, y=y)
    np.savez(pr / "noy.npz", x=x)
    np.savez(pr / "nox.npz", y=y)
    np.savez(pr / "extra.npz", x=x, y=y, z=y)
    np.savez(pr / "both.npz", x=x, x0=x, y=y)
    np.savez(pr / "gap.npz", x0=x, x2=x, y=y)
    np.savez(pr / "rows.npz", x=x, y=y[:30])
    np.savez(pr / "nan.npz", x=np.where(np.arange(80).reshape(40, 2) == 7, np.nan, x), y=y)
    np.savez(pr / "text.npz", x=np.array([["a", "b"]] * 40), y=y)
    np.savez(pr / "bool.npz", x=x > 0, y=y)
    np.savez(pr / "scalar.npz", x=np.float64(1.0), y=y)
    np.savez(pr / "wide.npz", x=rng.uniform(-1, 1, (40, 3)), y=y)
    np.savez(pr / "twoout.npz", x=x, y=rng.uniform(-1, 1, (40, 2)))
    np.savez(pr / "two.npz", x0=x, x1=x, y=y)
    np.savez(pr / "tiny.npz", x=x[:1], y=y[:1])
    np.save(pr / "plain.npy", x)
    (pr / "notnpz.npz").write_bytes(b"PK\x03\x04 not really a zip")
    np.savez(pr / "objects.npz", x=np.array([{"a": 1}] * 40, dtype=object), y=y)
    net = residual_mlp()
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(pr / "good.safetensors"))
    torch.save(net.state_dict(), pr / "good.pt")
    state = net.state_dict()
    save_file({k: v.contiguous() for k, v in list(state.items())[:-1]}, str(pr / "missing.safetensors"))
    save_file({**{k: v.contiguous() for k, v in state.items()}, "extra.weight": torch.zeros(2)}, str(pr / "extra.safetensors"))
    save_file({k: v.contiguous() for k, v in residual_mlp(width=16).state_dict().items()}, str(pr / "shape.safetensors"))
    save_file({k: torch.full_like(v, float("nan")) for k, v in state.items()}, str(pr / "nan.safetensors"))
    torch.save(net, pr / "module.pt")
    (pr / "random.safetensors").write_bytes(bytes(range(256)) * 4)
