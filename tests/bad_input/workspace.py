"""The files the bad-input cases point at: configs, IDX folders, checkpoints, meshes, results folders."""

from __future__ import annotations

import gzip
import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from safetensors.torch import save_file
from torch import nn

from sciprune.core import save_checkpoint
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
        "quotedint.yaml": b"study: classify\ntrain: {epochs: \"5\"}\n",
        "quotedfloat.yaml": b"study: classify\ntrain: {lr: '0.01'}\n",
        "boolone.yaml": b"study: amr\nparaview: 1\n",
        "boolyes.yaml": b"study: amr\nuniform_baseline: 'yes'\n",
        "seedneg.yaml": b"study: moth\nseed: -1\n",
        "seedhuge.yaml": b"study: nif\nseed: 18446744073709551616\n",
        "flowsratios.yaml": b"study: flows\nanalysis: {ratios: [5.0, -1]}\n",
        "flowsnothing.yaml": b"study: flows\ndensities: {names: []}\nclassifiers: {names: []}\n",
        "nifquoted.yaml": b"study: nif\nmodel: {shape: {units: '16'}}\n",
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
    mlp = MLP([2, 8, 1], "relu", generator=None)
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
    row = f"{validate(amr).mode},run,0,corner,0.5,100,0,25,25,16,0.1,0.2,0.01,16,4,0\n"
    for name, mesh in (("amrtruncmesh", "MFEM NC mesh v1.0\n\ndimension\n2\n\nelements\n4\n-1 1 3 3 4 5\n"),
                       ("amrbadvertex", QUAD.format(ids="0 1 2 99", last="1 1"))):
        folder = _results(rs / name, amr, amr_header + row)
        (folder / "it_0.mesh").write_text(mesh)
        (folder / "it_0.gf").write_text("FiniteElementSpace\nFiniteElementCollection: H1_2D_P1\nVDim: 1\nOrdering: 0\n\n0\n0\n")
    folder = _results(rs / "amrshortgf", amr, amr_header + row)
    (folder / "it_0.mesh").write_text(QUAD.format(ids="0 1 3 2", last="1 1"))
    (folder / "it_0.gf").write_text("FiniteElementSpace\nFiniteElementCollection: H1_2D_P1\nVDim: 1\nOrdering: 0\n\n0\n0\n")
    build_round2(w)
    _prune_inputs(w / "prune")


# -- round 2: ownership, damaged results of every study ----------------------------------------------

DATA = Path(__file__).parent / "data"


def _marked(folder: Path, study: str, config: str, metrics: str | bytes | None) -> Path:
    """A results folder as sciprune marks it: ``.sciprune/run.json`` first, then config and metrics."""
    (folder / ".sciprune" / "pending").mkdir(parents=True)
    (folder / ".sciprune" / "run.json").write_text(json.dumps(
        {"format": "sciprune results folder", "study": study, "run_id": "0" * 32, "sciprune": "0.1.0"}))
    (folder / "config.yaml").write_text(config)
    if metrics is not None:
        (folder / "metrics.csv").write_bytes(metrics.encode() if isinstance(metrics, str) else metrics)
    return folder


def _saved(name: str) -> tuple[str, str]:
    """The config and metrics.csv of a real (tiny) run of study ``name``, kept under ``data/``."""
    return (DATA / f"{name}.config.yaml").read_text(), (DATA / f"{name}.metrics.csv").read_text()


def _swap_row_value(metrics: str, row: int, column: str, value: str) -> str:
    lines = metrics.splitlines()
    cols = lines[0].split(",")
    cells = lines[row].split(",")
    cells[cols.index(column)] = value
    lines[row] = ",".join(cells)
    return "\n".join(lines) + "\n"


def build_round2(w: Path) -> None:
    """Folders for the second round: a user's docker-compose folder, a user's temporaries, and damaged
    results folders of every study (marked, so only the damage is refused)."""
    compose = w / "compose"
    compose.mkdir()
    (compose / "config.yaml").write_text("services:\n  web:\n    image: nginx\n    ports: ['80:80']\n")
    (w / "usertmp").mkdir()
    (w / "usertmp" / ".data.csv.ab12cd34.tmp").write_text("the user's half-saved spreadsheet\n")
    (w / "moth.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(40))  # an HDF5 signature and nothing else
    (w / "text.npz").write_text("study notes, not an array archive\n")
    rng = np.random.default_rng(7)
    noise = rng.integers(0, 256, 512, dtype=np.uint8).tobytes()
    rs = w / "results2"
    rs.mkdir()

    # moth
    config, metrics = _saved("moth")
    info = json.dumps({"file": "data.h5", "rows": 300, "dropped_nan": 0, "failed_integrations": 0,
                       "train": 192, "val": 48, "test": 60})
    for name, data in {"garbage": b"{not json", "list": b"[1, 2]", "binary": noise, "nan": b'{"rows": NaN'}.items():
        (_marked(rs / f"moth-datajson-{name}", "moth", config, metrics) / "data.json").write_bytes(data)
    for name, state in {"nokeys": {"members": [0, 1]}, "stagefloat": {"stage": [0.5, 1.5], "state": {}},
                        "flatweights": {"stage": [1, 2], "state": {"layers.0.weight": torch.ones(3)}}}.items():
        folder = _marked(rs / f"moth-optimum-{name}", "moth", config, metrics)
        (folder / "data.json").write_text(info)
        (folder / "checkpoints" / "shard_000").mkdir(parents=True)
        torch.save(state, folder / "checkpoints" / "shard_000" / "optimum.pt")
    folder = _marked(rs / "moth-optimum-random", "moth", config, metrics)
    (folder / "data.json").write_text(info)
    (folder / "checkpoints" / "shard_000").mkdir(parents=True)
    (folder / "checkpoints" / "shard_000" / "optimum.pt").write_bytes(noise)
    _marked(rs / "moth-foreign-method", "moth", config, _swap_row_value(metrics, 3, "method", "weight"))
    _marked(rs / "moth-member-text", "moth", config, _swap_row_value(metrics, 2, "member", "first"))
    _marked(rs / "moth-nif-metrics", "moth", config, _saved("nif")[1])

    # nif
    config, metrics = _saved("nif")
    meta = json.dumps({"grid": [10, 200], "columns": ["t", "x", "u"]})
    for name, data in {"garbage": b"\x00\x01 not json", "grid": b'{"grid": [-1, "a"]}', "list": b"[]"}.items():
        folder = _marked(rs / f"nif-meta-{name}", "nif", config, metrics)
        (folder / "fields").mkdir()
        (folder / "fields" / "meta.json").write_bytes(data)
    fields: dict[str, Any] = {
        "object": lambda p: np.save(p, np.array([{"a": 1}, None], dtype=object), allow_pickle=True),
        "torchzip": lambda p: torch.save({"u": torch.zeros(2000, 1)}, p),
        "shape": lambda p: np.save(p, np.zeros(7)),
        "text": lambda p: p.write_text("0.1 0.2 0.3\n"),
        "strings": lambda p: np.save(p, np.array(["a", "b"])),
        "truncated": lambda p: (np.save(p, np.zeros((2000, 1))), p.write_bytes(p.read_bytes()[:300])),
    }
    for name, write in fields.items():
        folder = _marked(rs / f"nif-field-{name}", "nif", config, metrics)
        (folder / "fields").mkdir()
        (folder / "fields" / "meta.json").write_text(meta)
        write(folder / "fields" / "truth.npy")
    lines = metrics.splitlines()
    width = len(lines[0].split(","))
    classify_row = ",".join(["weight", "oneshot", "0", "1", "0.5", "90.0"] + ["1"] * (width - 6))
    _marked(rs / "nif-classify-row", "nif", config, metrics + classify_row + "\n")
    _marked(rs / "nif-classify-metrics", "nif", config,
            "method,variant,seed,stage,sparsity,params_nnz,accuracy,loss\ndense,dense,0,-1,0.0,100,90.0,0.3\n")
    _marked(rs / "nif-good", "nif", config, metrics)
    folder = _marked(rs / "nif-timing-binary", "nif", config, metrics)
    (folder / "timing.csv").write_bytes(noise)

    # flows
    config, metrics = _saved("flows")
    npz: dict[str, Any] = {
        "random": lambda p: p.write_bytes(noise),
        "torchzip": lambda p: torch.save({"lim": torch.ones(1)}, p),
        "object": lambda p: np.savez(p, lim=np.array(1.0), thresholds=np.array([{"x": 1}], dtype=object)),
        "nokeys": lambda p: np.savez(p, lim=np.array(3.0)),
        "json": lambda p: p.write_text('{"lim": 3}'),
        "shape": lambda p: np.savez(p, lim=np.array(3.0), thresholds=np.zeros(10), x_test=np.zeros((4, 2)), y_test=np.zeros(4),
                                    **{"dense|0.0|hessian": np.zeros(5)}),
        "truncated": lambda p: (np.savez(p, lim=np.array(3.0), thresholds=np.zeros(10)), p.write_bytes(p.read_bytes()[:-40])),
    }
    for name, write in npz.items():
        folder = _marked(rs / f"flows-analysis-{name}", "flows", config, metrics)
        (folder / "analysis").mkdir()
        write(folder / "analysis" / "density-gaussians.npz")
    folder = _marked(rs / "flows-timing-ragged", "flows", config, metrics)
    (folder / "timing.csv").write_text("task,seconds\nmoons,1.0,extra\n")
    _marked(rs / "flows-sparsity-negative", "flows", config, _swap_row_value(metrics, 1, "sparsity", "-1.0"))
    _marked(rs / "flows-seed-text", "flows", config, _swap_row_value(metrics, 1, "seed", "zero"))
    _marked(rs / "flows-ratios-config", "flows", config.replace("ratios:\n  - 0.5", "ratios:\n  - 5.0\n  - -1"), metrics)
    _marked(rs / "flows-quoted-epochs", "flows", config.replace("epochs: 1", "epochs: '1'", 1), metrics)

    # classify and amr
    classify = dump_config(validate({**load_preset("classify", "demo"), "repeats": 1}))
    header = "method,variant,seed,stage,sparsity,params_nnz,accuracy,loss\n"
    folder = _marked(rs / "classify-heatmap-random", "classify", classify, header + "dense,dense,0,-1,0.0,100,90.0,0.3\n")
    (folder / "checkpoints").mkdir()
    (folder / "checkpoints" / "heatmap-weight.safetensors").write_bytes(noise)
    _marked(rs / "classify-seed-text", "classify", classify, header + "dense,dense,abc,-1,0.0,100,90.0,0.3\n")
    _marked(rs / "classify-amr-row", "classify", classify, header + "bulk,run,0,-1,0.0,100,90.0,0.3\n")
    _marked(rs / "classify-bool-config", "classify", classify.replace("repeats: 1", "repeats: '1'"),
            header + "dense,dense,0,-1,0.0,100,90.0,0.3\n")
    amr = dump_config(validate(load_preset("amr", "demo")))
    amr_header = "method,role,seed,inr,sparsity,params_nnz,it,dofs,true_dofs,elements,rmse,max_error,seconds,examined,refined,max_level\n"
    _marked(rs / "amr-rmse-text", "amr", amr, amr_header + "bulk,run,0,corner,0.5,100,0,25,25,16,small,0.2,0.01,16,4,0\n")
    _marked(rs / "amr-it-float", "amr", amr, amr_header + "bulk,run,0,corner,0.5,100,0.5,25,25,16,0.1,0.2,0.01,16,4,0\n")
    _marked(rs / "amr-marker-moth", "moth", amr, amr_header + "bulk,run,0,corner,0.5,100,0,25,25,16,0.1,0.2,0.01,16,4,0\n")
    bad = _marked(rs / "badmarker", "classify", classify, header + "dense,dense,0,-1,0.0,100,90.0,0.3\n")
    (bad / ".sciprune" / "run.json").write_bytes(b"\xff\xfe garbage")
    other = _marked(rs / "othermarker", "classify", classify, header + "dense,dense,0,-1,0.0,100,90.0,0.3\n")
    (other / ".sciprune" / "run.json").write_text('{"format": "docker", "study": 3}')


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
    np.savez(pr / "two_rows.npz", x=x[:2], y=y[:2])
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
