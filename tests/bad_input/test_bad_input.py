"""Every bad input, across every command: exit status 2, one line on stderr, no traceback, no file touched.

Each case runs ``sciprune`` in-process on a shared workspace of prepared inputs (``workspace.py``); the
workspace is hashed before and after every case, and the case's own ``--out`` must not appear.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from sciprune.runner.results import LOCK
from tests.bad_input import workspace
from tests.runner.helpers import cli

F = "{w}"   # the workspace
O = "{o}"   # a fresh output path of the case
TINY = ["--preset", "demo", "--set", "repeats=1", "--set", "model.hidden=[8]", "--set", "train.epochs=1",
        "--set", "prune.sparsities=[0.0, 0.5]", "--set", "timing_batch=64"]
AMR = ["--preset", "demo", "--set", "max_it=2", "--set", "rmse_points=1024"]

CASES: list[tuple[str, str, list[str]]] = []


def case(name: str, pattern: str, *argv: str) -> None:
    CASES.append((name, pattern, list(argv)))


# -- usage errors (click/typer) ----------------------------------------------------------------
case("unknown-command", r"No such command 'clasify'", "clasify")
case("unknown-option", r"No such option: --prset", "classify", "--prset", "demo")
case("preset-choice", r"--preset", "classify", "--preset", "huge", "--out", O)
case("int-flag-text", r"--train-epochs", "classify", "--train-epochs", "many", "--out", O)
case("int-flag-float", r"--train-epochs", "classify", "--train-epochs", "1.5", "--out", O)
case("float-flag-text", r"--train-lr", "classify", "--train-lr", "fast", "--out", O)
case("choice-flag", r"--dataset", "classify", "--dataset", "cifar", "--out", O)
case("workers-text", r"--workers", "classify", "--workers", "two", "--out", O)
case("missing-value", r"--out", "classify", "--out")
case("run-no-config", r"Missing argument", "run")
case("inspect-no-file", r"Missing argument", "inspect")
case("report-no-dir", r"Missing argument", "report")
case("report-extra-arg", r"unexpected extra argument", "report", F + "/results/done", "extra")
case("amr-mode-choice", r"--mode", "amr", "--mode", "adaptive", "--out", O)
case("amr-int-flag", r"--max-it", "amr", "--max-it", "x", "--out", O)
case("amr-bool-flag-value", r"unexpected extra argument|No such", "amr", "--paraview", "yes", "--out", O)
case("demo-unknown-option", r"No such option", "demo", "--preset", "quick")
case("inspect-unknown-option", r"No such option", "inspect", F + "/ckpt/good.safetensors", "--trust")

# -- config files (sciprune run) ------------------------------------------------------------------
for name, pattern in {
    "notutf8.yaml": r"not UTF-8 text \(byte \d+ is 0xff\)", "latin1.yaml": r"not UTF-8",
    "dup.yaml": r"duplicate key 'seed' \(first at line 2\)", "dupnested.yaml": r"duplicate key 'epochs'",
    "bomb.yaml": r"expands \(through its aliases\) to more than", "selfref.yaml": r"not valid YAML|expands",
    "deep.yaml": r"nested too deeply|not valid YAML", "big.yaml": r"bytes; expected at most",
    "list.yaml": r"holds a list; expected a mapping", "scalar.yaml": r"holds a str; expected a mapping",
    "empty.yaml": r"holds a NoneType; expected a mapping", "nostudy.yaml": r"no 'study' field; expected one of",
    "unknownstudy.yaml": r"unknown study 'regress'; expected one of", "typostudy.yaml": r"did you mean 'classify'",
    "studynum.yaml": r"unknown study 3", "syntax.yaml": r"not valid YAML at line \d+",
    "tabs.yaml": r"not valid YAML", "pyobj.yaml": r"not valid YAML.*python/object",
    "unhashable.yaml": r"not valid YAML|unhashable", "unknownfield.yaml": r"unknown field 'epochs'.*expected one of",
    "unknownnested.yaml": r"unknown field 'train.epochz'; expected one of epochs, batch_size, lr \(did you mean 'epochs'\?\)",
    "sectionscalar.yaml": r"field 'train' got 3", "boolint.yaml": r"field 'repeats' got True: expected a number",
    "floatint.yaml": r"field 'train.epochs' got 1e\+29: expected an integer", "inf.yaml": r"'train.lr' got inf: expected a finite",
    "nan.yaml": r"'train.lr' got nan", "amrbad.yaml": r"max_it=1 is smaller than num_uniform_ref=2",
    "amrmode.yaml": r"field 'mode' got 'adaptive'", "nul.yaml": r"not valid YAML|special characters",
}.items():
    case(f"run-{name}", pattern, "run", f"{F}/cfg/{name}", "--out", O)
case("run-dir-as-config", r"is a directory; expected a file", "run", F + "/cfg/adir.yaml", "--out", O)
case("run-missing-config", r"does not exist", "run", F + "/cfg/none.yaml", "--out", O)
case("run-empty-path", r"config file is the empty string", "run", "", "--out", O)
case("run-below-file", r"cannot exist: .*afile' is a file", "run", F + "/afile/x.yaml", "--out", O)
case("run-proc", r"system folder", "run", "/proc/self/status", "--out", O)
case("run-dev", r"system folder", "run", "/dev/null", "--out", O)
case("run-bad-set", r"not of the form field=value", "run", F + "/good.yaml", "--set", "seed", "--out", O)

# -- classify: --set values -----------------------------------------------------------------------
for name, setting, pattern in [
    ("repeats-bool", "repeats=true", r"'repeats' got True"), ("repeats-zero", "repeats=0", r"'repeats' got 0"),
    ("repeats-huge", "repeats=100000000", r"'repeats'"), ("repeats-float", "repeats=2.0", r"expected an integer"),
    ("repeats-text", "repeats=three", r"'repeats' got 'three'"), ("seed-float", "seed=0.5", r"'seed' got 0.5"),
    ("seed-bool", "seed=false", r"'seed' got False"), ("seed-list", "seed=[1]", r"'seed'"),
    ("epochs-neg", "train.epochs=-1", r"'train.epochs' got -1"), ("epochs-1e29", "train.epochs=1e29", r"expected an integer"),
    ("epochs-huge", "train.epochs=10000000", r"'train.epochs'"), ("epochs-null", "train.epochs=null", r"'train.epochs' got None"),
    ("lr-zero", "train.lr=0", r"'train.lr' got 0"), ("lr-neg", "train.lr=-1e-3", r"'train.lr'"),
    ("lr-inf", "train.lr=.inf", r"expected a finite number"), ("lr-nan", "train.lr=.nan", r"'train.lr' got nan"),
    ("lr-bool", "train.lr=true", r"expected a number, not a true/false"), ("lr-text", "train.lr=fast", r"'train.lr' got 'fast'"),
    ("batch-zero", "train.batch_size=0", r"'train.batch_size'"), ("batch-huge", "train.batch_size=1000000000000", r"train.batch_size"),
    ("hidden-empty", "model.hidden=[]", r"'model.hidden'"), ("hidden-zero", "model.hidden=[16, 0]", r"hidden widths must be in"),
    ("hidden-1e12", "model.hidden=[1000000000000]", r"hidden widths must be in"),
    ("hidden-memory", "model.hidden=[900000, 900000]", r"needs about .* of memory; this machine has"),
    ("hidden-float", "model.hidden=[16.5]", r"'model.hidden.0' got 16.5"), ("hidden-bool", "model.hidden=[true]", r"'model.hidden.0' got True"),
    ("hidden-scalar", "model.hidden=16", r"'model.hidden' got 16"), ("hidden-deep", "model.hidden=[" + ", ".join(["4"] * 65) + "]", r"'model.hidden'"),
    ("activation", "model.activation=swishy", r"'model.activation' got 'swishy'"),
    ("activation-empty", "model.activation=''", r"'model.activation'"),
    ("sparsity-one", "prune.sparsities=[0.5, 1.0]", r"\[0, 1\)"), ("sparsity-neg", "prune.sparsities=[-0.1]", r"\[0, 1\)"),
    ("sparsity-nan", "prune.sparsities=[.nan]", r"expected a finite number|\[0, 1\)"), ("sparsity-empty", "prune.sparsities=[]", r"prune.sparsities"),
    ("sparsity-text", "prune.sparsities=[half]", r"prune.sparsities.0"), ("sparsity-bool", "prune.sparsities=[true]", r"not a true/false"),
    ("method", "prune.methods=[l3]", r"unknown pruning method 'l3'; expected a method or criterion: .*unit, weight"), ("methods-empty", "prune.methods=[]", r"prune.methods"),
    ("retrain-policy", "prune.retrain=sometimes", r"'prune.retrain' got 'sometimes'"),
    ("retrain-epochs-neg", "prune.retrain_epochs=-2", r"prune.retrain_epochs"),
    ("id-samples-zero", "prune.id_samples=0", r"prune.id_samples"), ("heatmap-one", "prune.heatmap_sparsity=1.0", r"heatmap_sparsity"),
    ("timing-1e12", "timing_batch=1000000000000", r"'timing_batch'"), ("timing-memory", "timing_batch=90000000", r"timing_batch=90000000 .*needs about"),
    ("test-fraction", "data.test_fraction=1.5", r"data.test_fraction"), ("limit-train-zero", "data.limit_train=0", r"data.limit_train"),
    ("dataset", "data.name=cifar10", r"'data.name' got 'cifar10'"), ("data-dir-digits", "data.data_dir=/tmp", r"data.data_dir='/tmp' is given but data.name is 'digits'"),
    ("data-dir-empty", "data.data_dir=''", r"data_dir=''"),
    ("unknown-top", "epochs=3", r"unknown field 'epochs'.*expected one of"), ("unknown-typo", "reapeats=2", r"did you mean 'repeats'"),
    ("unknown-nested", "train.lrr=1", r"did you mean 'lr'"), ("unknown-section", "optim.lr=1", r"unknown field 'optim'"),
    ("section-scalar", "train=3", r"field 'train' got 3"), ("set-into-scalar", "seed.x=1", r"field 'seed' is not a section"),
    ("set-empty-key", "=3", r"not of the form field=value"), ("set-empty-part", "train..lr=1", r"empty field name"),
    ("set-bad-yaml", "train.lr=[1, 2", r"not valid YAML"), ("set-dup-keys", "train={lr: 1, lr: 2}", r"duplicate key 'lr'"),
    ("study-switch", "study=amr", r"unknown field|invalid config"),
]:
    case(f"classify-set-{name}", pattern, "classify", *TINY, "--set", setting, "--out", O)

# -- classify: flags, data, output ----------------------------------------------------------------
case("classify-flag-batch-zero", r"'train.batch_size' got 0", "classify", *TINY, "--train-batch-size", "0", "--out", O)
case("classify-flag-lr-inf", r"expected a finite number", "classify", *TINY, "--train-lr", "inf", "--out", O)
case("classify-flag-lr-nan", r"'train.lr' got nan", "classify", *TINY, "--train-lr", "nan", "--out", O)
case("classify-flag-hidden-yaml", r"not valid YAML", "classify", *TINY, "--model-hidden", "[8, 8", "--out", O)
case("classify-flag-data-dir-digits", r"is given but data.name is 'digits'", "classify", *TINY, "--data-dir", F + "/idx/good", "--out", O)
case("classify-mnist-no-dir", r"pass --data-dir", "classify", *TINY, "--dataset", "mnist", "--out", O)
for name, pattern in {
    "images1d": r"holds a 1-D array; expected images \(3-D", "labels3d": r"holds a 3-D array; expected labels \(1-D",
    "testsize": r"differ in size: training 4x4, test 5x5", "zero": r"no data; expected at least one",
    "overflow": r"holds 64 values; its header promises", "missing": r"missing data file t10k-labels-idx1-ubyte",
    "count": r"differ in count: 20 vs 19", "magic": r"magic number 2052", "truncated": r"holds 100 values; its header promises 320",
    "short": r"is truncated \(2 bytes\)", "badgz": r"not a valid gzip file", "notgz": r"not a valid gzip file",
    "isdir": r"is a directory|missing data file",
}.items():
    case(f"classify-idx-{name}", pattern, "classify", *TINY, "--dataset", "mnist", "--data-dir", f"{F}/idx/{name}", "--out", O)
case("classify-idx-dir-missing", r"data directory .* does not exist", "classify", *TINY, "--dataset", "fashion-mnist", "--data-dir", F + "/idx/none", "--out", O)
case("classify-idx-dir-file", r"data directory .*afile' is a file", "classify", *TINY, "--dataset", "mnist", "--data-dir", F + "/afile", "--out", O)
case("classify-idx-dir-proc", r"system folder", "classify", *TINY, "--dataset", "mnist", "--data-dir", "/proc", "--out", O)
case("classify-out-empty", r"--out is the empty string", "classify", *TINY, "--out", "")
case("classify-out-file", r"is an existing file; expected a results folder", "classify", *TINY, "--out", F + "/afile")
case("classify-out-below-file", r"cannot be created: .*afile' is a file", "classify", *TINY, "--out", F + "/afile/sub")
case("classify-out-proc", r"lies under /proc", "classify", *TINY, "--out", "/proc/sciprune")
case("classify-out-sys", r"lies under /sys", "classify", *TINY, "--out", "/sys/sciprune")
case("classify-out-userdir", r"files that are not a sciprune run \(metrics.csv, notes.txt, plots, \.\.\.; no config.yaml\)",
     "classify", *TINY, "--out", F + "/userdir")
case("classify-out-existing-run", r"already holds a run; pass --resume", "classify", *TINY, "--out", F + "/results/done")
case("classify-resume-other-config", r"--resume: the config differs", "classify", *TINY, "--resume", "--out", F + "/results/done")
case("classify-resume-corrupt-config", r"saved config .* is not valid YAML", "classify", *TINY, "--resume", "--out", F + "/results/corruptconfig")
case("classify-resume-notutf8-config", r"saved config .* is not UTF-8", "classify", *TINY, "--resume", "--out", F + "/results/notutf8config")
case("classify-resume-list-config", r"holds a list; expected a mapping", "classify", *TINY, "--resume", "--out", F + "/results/listconfig")
case("classify-workers-zero", r"--workers must be an integer in \[1, 1024\]; got 0", "classify", *TINY, "--workers", "0", "--out", O)
case("classify-workers-neg", r"--workers must be", "classify", *TINY, "--workers", "-3", "--out", O)
case("classify-workers-huge", r"--workers must be", "classify", *TINY, "--workers", "100000", "--out", O)
case("classify-device", r"unknown device 'gpu0'", "classify", *TINY, "--device", "gpu0", "--out", O)
case("classify-device-empty", r"unknown device", "classify", *TINY, "--device", "", "--out", O)
for name, address in {"notaurl": "notaurl", "http": "http://127.0.0.1:8786", "noport": "tcp://127.0.0.1",
                      "port0": "tcp://127.0.0.1:0", "port-huge": "tcp://127.0.0.1:99999", "space": "tcp://a b:1",
                      "empty": ""}.items():
    case(f"classify-scheduler-{name}", r"is not a scheduler address; expected tcp://host:port", "classify", *TINY,
         "--scheduler", address, "--out", O)

case("classify-scheduler-unreachable", r"cannot reach the dask scheduler 'tcp://127.0.0.1:1'", "classify", *TINY,
     "--scheduler", "tcp://127.0.0.1:1", "--out", O)
case("classify-scheduler-unknown-host", r"cannot reach the dask scheduler", "classify", *TINY,
     "--scheduler", "tcp://no-such-host.invalid:8786", "--out", O)

# -- amr ---------------------------------------------------------------------------------------------
for name, setting, pattern in [
    ("max-it-zero", "max_it=0", r"'max_it' got 0"), ("max-it-below-uniform", "max_it=1", r"max_it=1 is smaller"),
    ("threshold-zero", "threshold=0", r"'threshold' got 0"), ("threshold-inf", "threshold=.inf", r"finite"),
    ("epsilon-one", "epsilon=1", r"'epsilon' got 1"), ("prop-threshold", "prop_threshold=1.5", r"'prop_threshold'"),
    ("id-samples-one", "id_samples=1", r"'id_samples' got 1"), ("error-samples-huge", "error_samples=10000000", r"'error_samples'"),
    ("id-samples-bool", "id_samples=true", r"not a true/false"), ("max-dofs-float", "max_dofs=5e3", r"expected an integer"),
    ("rmse-points", "rmse_points=3", r"'rmse_points' got 3"), ("time-slice-nan", "time_slice=.nan", r"finite"),
    ("component-neg", "component=-1", r"'component' got -1"), ("offset-neg", "error_offset=-1", r"'error_offset'"),
    ("inr-empty", "inr=''", r"'inr' got ''"), ("mesh-empty", "mesh=''", r"'mesh' got ''"),
    ("mode", "mode=adaptive", r"'mode' got 'adaptive'"), ("paraview-int", "paraview=2", r"'paraview' got 2"),
    ("unknown", "max_iter=3", r"did you mean 'max_it'"), ("baseline-typo", "uniform_baselin=false", r"did you mean 'uniform_baseline'"),
    ("tolerance-zero", "tolerance=0", r"'tolerance' got 0"), ("indicator", "indicator=interp", r"'indicator' got 'interp'"),
    ("surrogate-epsilon-one", "surrogate_epsilon=1", r"'surrogate_epsilon' got 1"),
]:
    case(f"amr-set-{name}", pattern, "amr", *AMR, "--set", setting, "--out", O)
case("amr-tolerance-seed-mode", r"tolerance=0.01 needs mode=bulk", "amr", *AMR, "--mode", "pruning", "--set", "tolerance=0.01",
     "--out", O)
case("amr-time-slice-space-only-inr", r"--time-slice 0.5 is read only by a space-time INR \(3 inputs\); INR 'corner' takes 2",
     "amr", *AMR, "--inr", "corner", "--time-slice", "0.5", "--out", O)
case("amr-scheduler", r"does not run on a dask scheduler", "amr", *AMR, "--scheduler", "tcp://127.0.0.1:8786", "--out", O)
case("amr-device", r"unknown device", "amr", *AMR, "--device", "tpu", "--out", O)
case("amr-out-userdir", r"not a sciprune run", "amr", *AMR, "--out", F + "/userdir")
case("amr-out-file", r"is an existing file", "amr", *AMR, "--out", F + "/afile")
case("amr-inr-missing", r"INR checkpoint .* does not exist; expected corner, front, spacetime, hos", "amr", *AMR, "--inr", F + "/ckpt/none.ckpt", "--out", O)
case("amr-inr-dir", r"is a directory", "amr", *AMR, "--inr", F + "/ckpt/adir.safetensors", "--out", O)
for name, pattern in {
    "random.safetensors": r"neither a safetensors nor a torch file|corrupt or truncated",
    "truncated.safetensors": r"corrupt or truncated", "empty.safetensors": r"neither a safetensors|truncated|too short",
    "short.safetensors": r"neither a safetensors|truncated|too short", "liar.safetensors": r"claims bytes .* \(truncated or corrupt\)",
    "dtype.safetensors": r"malformed header entry", "metalist.safetensors": r"could not be read|metadata",
    "nosizes.safetensors": r"could not be read \(KeyError: 'sizes'\)", "sizesstr.safetensors": r"could not be read|architecture",
    "metanotjson.safetensors": r"corrupt or truncated|could not be read", "noarch.safetensors": r"no architecture metadata",
    "mismatch.safetensors": r"does not match its architecture", "int64.ckpt": r"holds torch.int64 weights; expected floating-point",
    "naninr.ckpt": r"layer 0 holds 16 NaN or infinite values", "infinr.ckpt": r"layer 0 holds 16 NaN or infinite values",
    "chain.ckpt": r"expected \(out, in\) weights chained", "leaky.ckpt": r"unknown activation 'LeakyReLU'",
    "otherdict.ckpt": r"expected a PruningAMR dict", "module.pt": r"not an allowlisted INR pickle",
    "legacy.ckpt": r"legacy \(non-zip\) format", "zipjunk.pt": r"could not be read|not an allowlisted|corrupt or truncated",
    "pickletrunc.pt": r"could not be read|not an allowlisted|corrupt", "text.pt": r"neither a safetensors nor a torch file",
}.items():
    case(f"amr-inr-{name}", pattern, "amr", *AMR, "--inr", f"{F}/ckpt/{name}", "--out", O)
for name, pattern in {
    "vertex99.mesh": r"elements 0 names vertex 99, but the mesh has 4 vertices; expected vertex ids 0..3",
    "negative.mesh": r"a vertex of elements 0 is -1; expected an integer in \[0,",
    "nanvertex.mesh": r"vertex 3 has coordinates \[nan, 1.0\]; expected finite", "infvertex.mesh": r"expected finite numbers",
    "fewids.mesh": r"a vertex of elements 0 is 'boundary'; expected an integer", "badgeom.mesh": r"the geometry of elements 0 is 42",
    "textid.mesh": r"a vertex of elements 0 is 'two'", "badcoord.mesh": r"a vertex coordinate is not a number",
    "dim4.mesh": r"the dimension is 4; expected an integer in \[1, 3\]",
    "shortvertices.mesh": r"ends where vertex coordinates \(4 x 2\) was expected \(truncated\?\)",
    "hugecount.mesh": r"the number of elements is 99999999999",
    "repeated.mesh": r"has vertices \[0, 1, 1, 3\], one repeated", "bdrgeom.mesh": r"boundary 0 has geometry 3 of dimension 2; expected dimension 1",
    "order.mesh": r"found 'vertices' where the section 'elements' was expected",
    "tri.mesh": r"expected an all-quad", "notutf8.mesh": r"not UTF-8 text", "empty.mesh": r"mesh file .* is empty",
    "garbage.mesh": r"could not be read: .*Unknown input mesh format", "nc_truncated.mesh": r"without its closing 'mfem_mesh_end'",
    "adir.mesh": r"is a directory",
}.items():
    case(f"amr-mesh-{name}", pattern, "amr", *AMR, "--mesh", f"{F}/mesh/{name}", "--out", O)
case("amr-mesh-missing", r"mesh file .* does not exist; expected an MFEM mesh file, or square\[:N\]", "amr", *AMR, "--mesh", F + "/mesh/none.mesh", "--out", O)
case("amr-mesh-named-n", r"N must be in \[1, 1024\]|does not exist", "amr", *AMR, "--mesh", "square:0", "--out", O)

# -- report ------------------------------------------------------------------------------------------
for name, pattern in {
    "binary": r"metrics file .* is not UTF-8", "nocolumns": r"lacks the columns method, seed, sparsity, params_nnz",
    "headeronly": r"has no recorded rows", "nometrics": r"has no recorded rows", "emptymetrics": r"has no recorded rows",
    "ragged": r"row 1 has 3 fields, the header 8", "corruptconfig": r"saved config .* is not valid YAML",
    "unknownstudy": r"unknown study 'regress'", "listconfig": r"holds a list; expected a mapping",
    "badfield": r"'repeats' got 0", "notutf8config": r"not UTF-8", "noconfig": r"is not a results directory \(no config.yaml\)",
    "amrtruncmesh": r"without its closing 'mfem_mesh_end'", "amrbadvertex": r"names vertex 99",
    "amrshortgf": r"grid function file .* holds 2 values",
}.items():
    case(f"report-{name}", pattern, "report", f"{F}/results/{name}")
case("report-missing", r"results directory .* does not exist", "report", F + "/results/none")
case("report-file", r"is a file; expected the --out folder", "report", F + "/afile")
case("report-empty", r"is the empty string", "report", "")
case("report-userdir", r"is not a results directory", "report", F + "/userdir")
case("report-proc", r"system folder", "report", "/proc")

# -- inspect -----------------------------------------------------------------------------------------
for name, pattern in {
    "random.safetensors": r"neither a safetensors nor a torch file|corrupt", "truncated.safetensors": r"corrupt or truncated",
    "empty.safetensors": r"neither a safetensors|truncated", "liar.safetensors": r"claims bytes",
    "dtype.safetensors": r"malformed header entry", "listheader.safetensors": r"header of type list|neither a safetensors nor a torch file",
    "metalist.safetensors": r"metadata of type list", "metanotjson.safetensors": r"corrupt or truncated|could not be read",
    "module.pt": r"refusing to load it.*--trust-pickle", "zipjunk.pt": r"corrupt or truncated|could not be read",
    "pickletrunc.pt": r"corrupt|could not be read", "text.pt": r"neither a safetensors nor a torch file",
    "legacy.ckpt": r"refusing to load it|legacy", "adir.safetensors": r"is a directory; expected a file",
}.items():
    case(f"inspect-{name}", pattern, "inspect", f"{F}/ckpt/{name}")
case("inspect-missing", r"does not exist", "inspect", F + "/ckpt/none.pt")
case("inspect-empty", r"is the empty string", "inspect", "")
case("inspect-proc", r"system folder", "inspect", "/proc/self/environ")
case("inspect-below-file", r"cannot exist", "inspect", F + "/afile/x.pt")

# -- demo --------------------------------------------------------------------------------------------
case("demo-out-file", r"is an existing file", "demo", "--out", F + "/afile")
case("demo-out-userdir", r"not a sciprune demo", "demo", "--out", F + "/userdir")
case("demo-out-empty", r"is the empty string", "demo", "--out", "")
case("demo-out-proc", r"system folder", "demo", "--out", "/proc/demo")
case("demo-out-below-file", r"cannot be created", "demo", "--out", F + "/afile/demo")

# -- the new studies: unknown names, bounds (a count that would run for ever or exhaust memory) --------
case("flows-epochs-huge", r"field 'densities.train.epochs' got 1000000000000000: Input should be less than or equal to 1000000",
     "flows", "--preset", "demo", "--set", "densities.train.epochs=1000000000000000", "--out", O)
case("flows-hidden-huge", r"field 'densities.field.hidden' got 10000000: Input should be less than or equal to \d+", "flows",
     "--preset", "demo", "--set", "densities.field.hidden=10000000", "--out", O)
case("flows-density-unknown", r"field 'densities.names' got \['ring8'\]: unknown density 'ring8'; expected one of gaussians",
     "flows", "--preset", "demo", "--set", "densities.names=[ring8]", "--out", O)
case("flows-solver-unknown", r"field 'densities.solver.method' got 'euler3': unknown ODE solver; expected one of .*rk4",
     "flows", "--preset", "demo", "--set", "densities.solver.method=euler3", "--out", O)
case("flows-atol-zero", r"field 'densities.solver.atol' got 0: solver tolerances must be > 0", "flows", "--preset", "demo",
     "--set", "densities.solver.atol=0", "--out", O)
case("nif-units-huge", r"field 'model.shape.units' got 100000000: Input should be less than or equal to \d+", "nif",
     "--preset", "demo", "--set", "model.shape.units=100000000", "--out", O)
case("nif-epochs-negative", r"field 'train.epochs' got -1: Input should be greater than or equal to 0", "nif", "--preset", "demo",
     "--set", "train.epochs=-1", "--out", O)
case("moth-members-huge", r"field 'members' got 100000000: Input should be less than or equal to \d+", "moth", "train",
     "--preset", "demo", "--members", "100000000", "--out", O)
case("moth-threshold-negative", r"field 'threshold' got -1.0: Input should be greater than 0", "moth", "train", "--preset", "demo",
     "--threshold", "-1", "--out", O)
case("moth-samples-zero", r"--samples .*got 0|--samples 0", "moth", "simulate", "--samples", "0", "--out", F + "/new.h5")

# -- round 2: strict values in every study (quoted numbers, 1 for a bool, seeds, workers, ranges) ------
PRESET = {"classify": ["classify", *TINY], "amr": ["amr", *AMR], "flows": ["flows", "--preset", "demo"],
          "nif": ["nif", "--preset", "demo"], "moth": ["moth", "train", "--preset", "demo"]}
QUOTED_INT = r"field '{f}' got '{v}': expected an integer, not text \(write it without quotes\)"
QUOTED_NUM = r"field '{f}' got '{v}': expected a number, not text \(write it without quotes\)"
BOOL = r"field '{f}' got {v}: expected true or false"
SEED = r"field '{f}' got {v}: expected a seed, an integer in \[0, 2\*\*63\)"
for study, field, value, pattern in [
    ("classify", "train.epochs", '"5"', QUOTED_INT.format(f="train.epochs", v="5")),
    ("classify", "train.lr", "'0.01'", QUOTED_NUM.format(f="train.lr", v="0.01")),
    ("classify", "prune.sparsities", '["0.5"]', QUOTED_NUM.format(f="prune.sparsities.0", v="0.5")),
    ("classify", "seed", "-1", SEED.format(f="seed", v="-1")),
    ("classify", "seed", "9223372036854775808", SEED.format(f="seed", v="9223372036854775808")),
    ("amr", "paraview", "1", BOOL.format(f="paraview", v="1")),
    ("amr", "uniform_baseline", "0", BOOL.format(f="uniform_baseline", v="0")),
    ("amr", "uniform_baseline", "'yes'", BOOL.format(f="uniform_baseline", v="'yes'")),
    ("amr", "max_it", '"3"', QUOTED_INT.format(f="max_it", v="3")),
    ("amr", "seed", "18446744073709551616", SEED.format(f="seed", v="18446744073709551616")),
    ("flows", "densities.train.epochs", '"5"', QUOTED_INT.format(f="densities.train.epochs", v="5")),
    ("flows", "densities.train.lr", '"1e-3"', QUOTED_NUM.format(f="densities.train.lr", v="1e-3")),
    ("flows", "analysis.hessian", "1", BOOL.format(f="analysis.hessian", v="1")),
    ("flows", "seed", "-5", SEED.format(f="seed", v="-5")),
    ("flows", "analysis.ratios", "[5.0, -1]", r"field 'analysis.ratios' got \[5.0, -1\]: each analysis ratio \(a prune ratio: the nearest stage is analysed\) must be in \[0, 1\), got 5.0"),
    ("flows", "analysis.ratios", "[0.5, 1.0]", r"field 'analysis.ratios' got \[0.5, 1.0\]: each analysis ratio .* must be in \[0, 1\), got 1.0"),
    ("flows", "nets", '"2"', QUOTED_INT.format(f="nets", v="2")),
    ("nif", "train.epochs", '"5"', QUOTED_INT.format(f="train.epochs", v="5")),
    ("nif", "train.lr", "'0.001'", QUOTED_NUM.format(f="train.lr", v="0.001")),
    ("nif", "data.columns.weight", "1", BOOL.format(f="data.columns.weight", v="1")),
    ("nif", "seed", "18446744073709551616", SEED.format(f="seed", v="18446744073709551616")),
    ("moth", "members", '"4"', QUOTED_INT.format(f="members", v="4")),
    ("moth", "threshold", "'0.03'", QUOTED_NUM.format(f="threshold", v="0.03")),
    ("moth", "data.sim_seed", "9223372036854775808", SEED.format(f="data.sim_seed", v="9223372036854775808")),
    ("moth", "seed", "-1", SEED.format(f="seed", v="-1")),
]:
    case(f"{study}-strict-{field}={value}", pattern, *PRESET[study], "--set", f"{field}={value}", "--out", O)
for flag, value, pattern in [("--workers", "0", r"--workers must be an integer in \[1, 1024\]; got 0"),
                             ("--workers", "-3", r"--workers must be an integer in \[1, 1024\]; got -3"),
                             ("--seed", "-1", r"--seed got -1: expected a seed, an integer in \[0, 2\*\*63\)"),
                             ("--seed", "18446744073709551616", r"--seed got 18446744073709551616: expected a seed")]:
    case(f"moth-simulate{flag}={value}", pattern, "moth", "simulate", "--samples", "10", flag, value, "--out", O)
case("moth-analyze-nif-folder", r"holds a 'nif' run; expected a 'moth' run \(use sciprune report", "moth", "analyze",
     F + "/results2/nif-good")
case("flows-nothing-to-run", r"densities.names and classifiers.names are both empty: the run would train nothing", "flows",
     "--preset", "demo", "--set", "densities.names=[]", "--set", "classifiers.names=[]", "--out", O)
for study in ("classify", "amr", "flows", "nif", "moth"):
    for workers in ("0", "-2"):
        case(f"{study}-workers{workers}", rf"--workers must be an integer in \[1, 1024\]; got {workers}", *PRESET[study],
             "--workers", workers, "--out", O)
for name, pattern in {
    "quotedint.yaml": QUOTED_INT.format(f="train.epochs", v="5"), "quotedfloat.yaml": QUOTED_NUM.format(f="train.lr", v="0.01"),
    "boolone.yaml": BOOL.format(f="paraview", v="1"), "boolyes.yaml": BOOL.format(f="uniform_baseline", v="'yes'"),
    "seedneg.yaml": SEED.format(f="seed", v="-1"), "seedhuge.yaml": SEED.format(f="seed", v="18446744073709551616"),
    "flowsratios.yaml": r"'analysis.ratios' got \[5.0, -1\]: each analysis ratio .* must be in \[0, 1\), got 5.0",
    "flowsnothing.yaml": r"both empty: the run would train nothing", "nifquoted.yaml": QUOTED_INT.format(f="model.shape.units", v="16"),
}.items():
    case(f"run-{name}", pattern, "run", f"{F}/cfg/{name}", "--out", O)

# -- round 2: a folder is sciprune's only with its marker; refused runs write nothing ---------------
COMPOSE = r"--out '.*compose' holds a config.yaml but no sciprune marker \(.sciprune/run.json\) and is not an earlier sciprune run"
for study in ("classify", "amr", "flows", "nif", "moth"):
    case(f"{study}-out-compose", COMPOSE, *PRESET[study], "--out", F + "/compose")
    case(f"{study}-out-compose-resume", COMPOSE, *PRESET[study], "--resume", "--out", F + "/compose")
    case(f"{study}-out-user-temporary", r"is a folder with files that are not a sciprune run \(.data.csv.ab12cd34.tmp; no config.yaml\)",
         *PRESET[study], "--out", F + "/usertmp")
case("report-compose", r"has no sciprune marker \(.sciprune/run.json\) and is not an earlier sciprune run: config has no 'study' field",
     "report", F + "/compose")
case("report-usertmp", r"is not a results directory \(no config.yaml\)", "report", F + "/usertmp")
case("report-badmarker", r"has a damaged sciprune marker '.sciprune/run.json' \(it cannot be read \(UnicodeDecodeError\)\)",
     "report", F + "/results2/badmarker")
case("report-othermarker", r"has a damaged sciprune marker .* \(it does not hold sciprune's run identity\)",
     "report", F + "/results2/othermarker")
case("classify-resume-badmarker", r"has a damaged sciprune marker", "classify", *TINY, "--resume", "--out", F + "/results2/badmarker")
case("report-marker-other-study", r"its marker names the 'moth' study, its config.yaml the 'amr' study", "report",
     F + "/results2/amr-marker-moth")
# a data file refused inside the run (nif, moth read theirs there): --out is left absent
case("nif-data-missing", r"data file '.*none.npz' does not exist; expected a .npz \(array 'data'\), .npy or .csv file", "nif", "--preset", "demo",
     "--set", "data.kind=file", "--set", f"data.path={F}/none.npz", "--out", O)
case("nif-data-text", r"data file '.*text.npz' is not .*\.npz", "nif", "--preset", "demo", "--set", "data.kind=file",
     "--set", f"data.path={F}/text.npz", "--out", O)
case("nif-data-columns", r"data file '.*afile' has suffix ''; expected a .npz, .npy or .csv file", "nif", "--preset", "demo", "--set", "data.kind=file",
     "--set", f"data.path={F}/afile", "--out", O)
case("moth-data-missing", r"data file '.*none.h5' does not exist; make one with: sciprune moth simulate", "moth", "train",
     "--preset", "demo", "--data", F + "/none.h5", "--out", O)
case("moth-data-not-hdf5", r"text.npz' is not an HDF5 file \(no HDF5 signature.*\); expected the output of sciprune moth simulate", "moth", "train", "--preset", "demo", "--data", F + "/text.npz", "--out", O)
case("moth-data-empty-hdf5", r"moth.h5' is a damaged or truncated HDF5 file \(.*\); expected the output of sciprune moth simulate", "moth", "train", "--preset", "demo", "--data", F + "/moth.h5", "--out", O)

# -- round 2: report on damaged results of every study: one line naming the file and what is expected ---
DAMAGED = r"is damaged \({why}\); expected {what} written by sciprune"
for name, pattern in {
    "moth-datajson-garbage": r"moth data summary '.*data.json' " + DAMAGED.format(why="not valid JSON: .*", what="a JSON object"),
    "moth-datajson-list": r"moth data summary .* " + DAMAGED.format(why="it holds a JSON list", what="a JSON object"),
    "moth-datajson-binary": r"moth data summary .* " + DAMAGED.format(why="not UTF-8 text", what="a JSON object"),
    "moth-datajson-nan": r"moth data summary .* " + DAMAGED.format(why="not valid JSON: .*", what="a JSON object"),
    "moth-optimum-nokeys": r"checkpoint '.*optimum.pt' is damaged \(no 'stage' list and 'state' dict\); expected a member's optimum",
    "moth-optimum-stagefloat": r"optimum.pt' is damaged \(its 'stage' entries are not integers\)",
    "moth-optimum-flatweights": r"optimum.pt' is damaged \(its weights are not \[members, out, in\] tensors",
    "moth-optimum-random": r"optimum.pt' is (neither a safetensors nor a torch file|damaged).*expected a file written by sciprune",
    "moth-foreign-method": r"row 3 has method='weight'; expected one of magnitude for this moth run",
    "moth-member-text": r"row 2 has member='first'; expected an integer",
    "moth-nif-metrics": r"lacks the columns member, test_mse; expected the metrics.csv of a sciprune moth run",
    "nif-meta-garbage": r"NIF field metadata '.*meta.json' " + DAMAGED.format(why="not UTF-8 text|not valid JSON.*", what="a JSON object"),
    "nif-meta-grid": r"NIF field metadata .* is damaged \(grid \[-1, 'a'\]\); expected a list of 1 to 3 positive integers",
    "nif-meta-list": r"NIF field metadata .* " + DAMAGED.format(why="it holds a JSON list", what="a JSON object"),
    "nif-field-object": r"NIF field '.*truth.npy' " + DAMAGED.format(why="an array of Python objects, which needs a pickle", what="a numeric .npy array"),
    "nif-field-torchzip": r"NIF field .* " + DAMAGED.format(why="not a .npy file", what="a numeric .npy array"),
    "nif-field-text": r"NIF field .* " + DAMAGED.format(why="not a .npy file", what="a numeric .npy array"),
    "nif-field-shape": r"NIF field .* is damaged \(shape \(7,\)\); expected \(2000, k\) values",
    "nif-field-strings": r"NIF field .* " + DAMAGED.format(why="'truth.npy' holds <U1 values, not numbers", what="a numeric .npy array"),
    "nif-field-truncated": r"NIF field .* " + DAMAGED.format(why="truncated or unreadable .npy data", what="a numeric .npy array"),
    "nif-classify-row": r"row 17 has method='weight'; expected one of id, l2, nif, pod for this nif run",
    "nif-classify-metrics": r"lacks the columns rel_l2, params_total, compression; expected the metrics.csv of a sciprune nif run",
    "nif-timing-binary": r"results table '.*timing.csv' " + DAMAGED.format(why="not UTF-8 text", what="a CSV table"),
    "flows-analysis-random": r"density-gaussians analysis '.*density-gaussians.npz' " + DAMAGED.format(why="not a zip archive", what="a .npz archive of numeric arrays"),
    "flows-analysis-torchzip": r"density-gaussians analysis .* is damaged \(member '.*' is not a .npy array \(another program's archive\?\)\)",
    "flows-analysis-object": r"density-gaussians analysis .* is damaged \(an array of Python objects, which needs a pickle\)",
    "flows-analysis-nokeys": r"density-gaussians analysis .* is damaged \(no 'thresholds' array\)",
    "flows-analysis-json": r"density-gaussians analysis .* is damaged \(not a zip archive\)",
    "flows-analysis-shape": r"density-gaussians analysis .* is damaged \(array 'dense\|0.0\|hessian' of shape \(5,\)\)",
    "flows-analysis-truncated": r"density-gaussians analysis .* is damaged \(a truncated or corrupt zip archive\)",
    "flows-timing-ragged": r"results table '.*timing.csv' is damaged \(a row's number of values differs from the header's\)",
    "flows-sparsity-negative": r"row 1 has sparsity=-1.0; expected a number in \[0, 1\]",
    "flows-seed-text": r"row 1 has seed='zero'; expected an integer",
    "flows-ratios-config": r"'analysis.ratios' got \[5.0, -1\]: each analysis ratio .* must be in \[0, 1\), got 5.0",
    "flows-quoted-epochs": r"field 'densities.train.epochs' got '1': expected an integer, not text",
    "classify-heatmap-random": r"heatmap-weight.safetensors' is (neither a safetensors nor a torch file|damaged).*expected a file written by sciprune",
    "classify-seed-text": r"row 1 has seed='abc'; expected an integer",
    "classify-amr-row": r"row 1 has method='bulk'; expected one of dense, .*weight for this classify run",
    "classify-bool-config": r"field 'repeats' got '1': expected an integer, not text",
    "amr-rmse-text": r"row 1 has rmse='small'; expected a number",
    "amr-it-float": r"row 1 has it=0.5; expected an integer",
}.items():
    case(f"report-r2-{name}", pattern, "report", f"{F}/results2/{name}")

# -- prune: a user's network and samples (the factory is imported and run; every failure one line) --
PR = ["prune", "--preset", "demo", "--set", "train.epochs=0"]
U = "tests.bad_input.usernets"
for name, model, pattern in [
    ("no-module", "nosuch_pkg.nets:build", r"no module named 'nosuch_pkg'"),
    ("broken-module", "tests.bad_input.usernets_broken:build", r"importing 'tests.bad_input.usernets_broken' failed \(ImportError: this module is broken"),
    ("no-attr", U + ":nothing", r"has no attribute 'nothing'; expected a function .*callables there: .*raises"),
    ("not-callable", U + ":NOT_CALLABLE", r"'NOT_CALLABLE' is a int, not callable"),
    ("raises", U + ":raises", r"raised RuntimeError: the user's factory failed on purpose"),
    ("returns-dict", U + ":returns_dict", r"returned a dict; expected a torch.nn.Module"),
    ("no-params", U + ":no_parameters", r"returned a Tanh without floating-point parameters"),
    ("returns-tuple", U + ":returns_tuple", r"returned a tuple; expected one tensor"),
    ("syntax", "nets.build", r"expected a factory as pkg.module:function"),
    ("syntax-colons", "a:b:c", r"expected a factory as pkg.module:function"),
]:
    case(f"prune-model-{name}", pattern, *PR, "--model", model, "--data", F + "/prune/good.npz", "--out", O)
case("prune-model-kwargs-wrong", r"raised TypeError: .*unexpected keyword argument 'widht'", *PR,
     "--model-kwargs", "{widht: 3}", "--out", O)
case("prune-model-kwargs-value", r"raised RuntimeError", *PR, "--model-kwargs", "{width: -1}", "--out", O)
case("prune-model-kwargs-scalar", r"'model_kwargs' got 3", *PR, "--model-kwargs", "3", "--out", O)
case("prune-model-needs-data", r"needs --data", *PR, "--model", U + ":two_inputs", "--out", O)
case("prune-two-inputs-tuple", r"raised TypeError.*--inputs args", *PR, "--model", U + ":two_inputs",
     "--data", F + "/prune/two.npz", "--inputs", "tuple", "--out", O)
for name, pattern in {
    "noy": r"has no array y \(the targets\)", "nox": r"has no inputs \(x, or x0, x1, \.\.\.\)",
    "extra": r"holds arrays named z; expected only y and x", "both": r"holds both x and x0",
    "gap": r"numbers its inputs x0, x2; expected x0, x1, \.\.\. without gaps", "rows": r"x has 40 rows but y has 30",
    "nan": r"array x holds 1 NaN or infinite values", "text": r"array x has dtype <U1; expected real numbers",
    "bool": r"array x has dtype bool; expected real numbers", "scalar": r"array x has shape \(\); expected at least one row",
    "wide": r"raised RuntimeError.*check the data's shapes", "twoout": r"gives shape \(4, 1\) but y has \(4, 2\)",
    "tiny": r"the data has 1 samples", "notnpz": r"data file .* could not be read", "objects": r"could not be read|dtype object",
    "plain.npy": r"could not be read|holds arrays named|has no array y", "none": r"data file .* does not exist",
}.items():
    file = name if name.endswith(".npy") else name + ".npz"
    case(f"prune-data-{name.replace('.', '-')}", pattern, *PR, "--data", f"{F}/prune/{file}", "--out", O)
case("prune-data-dir", r"data file .* is a directory", *PR, "--data", F + "/prune", "--out", O)
case("prune-data-empty", r"'data' got ''", *PR, "--data", "", "--out", O)
case("prune-shared-unknown", r"--shared names x3, which data file .* does not hold", *PR, "--data", F + "/prune/good.npz",
     "--shared", "x3", "--out", O)
case("prune-shared-all", r"--shared names every input", *PR, "--data", F + "/prune/good.npz", "--shared", "x", "--out", O)
case("prune-iterative-order", r"mode=iterative prunes each stage further: sparsities must increase", *PR, "--mode", "iterative",
     "--sparsities", "0.5,0.25", "--out", O)
case("prune-shared-name", r"'y' is not an input array's name", *PR, "--shared", "y", "--out", O)
for name, pattern in {
    "missing": r"lacks head.bias", "extra": r"has unknown extra.weight", "shape": r"lift.weight has shape \(16, 2\); the network's is \(32, 2\)",
    "nan": r"holds NaN or infinite values", "random": r"corrupt or truncated|neither a safetensors", "none": r"weights file .* does not exist",
}.items():
    case(f"prune-weights-{name}", pattern, *PR, "--data", F + "/prune/good.npz", "--weights", f"{F}/prune/{name}.safetensors", "--out", O)
case("prune-weights-pickle", r"pickled Python objects that could run code", *PR, "--data", F + "/prune/good.npz",
     "--weights", F + "/prune/module.pt", "--out", O)
for name, flag, value, pattern in [
    ("method", "--method", "l3", r"unknown pruning method 'l3'; expected one of .*neuron"), ("method-twice", "--method", "id,id", r"named twice"),
    ("method-empty", "--method", "''", r"'methods'"), ("sparsity-one", "--sparsities", "0.5,1.0", r"\[0, 1\)"),
    ("sparsity-text", "--sparsities", "half", r"'sparsities.0' got 'half'"), ("mode", "--mode", "greedy", r"--mode.*'greedy' is not one of"),
    ("retrain", "--retrain", "sometimes", r"'retrain' got 'sometimes'"), ("inputs", "--inputs", "list", r"--inputs"),
    ("test-fraction", "--test-fraction", "1.0", r"'test_fraction' got 1.0"), ("id-samples", "--id-samples", "0", r"'id_samples' got 0"),
    ("retrain-unused", "--retrain", "reset", r"retrain='reset' is given but retrain_epochs=0"),
    ("scheduler", "--scheduler", "tcp://127.0.0.1:8786", r"does not run on a dask scheduler"),
    ("workers", "--workers", "2", r"the prune study runs in one process; got --workers 2\. Leave it out"),
]:
    case(f"prune-{name}", pattern, *PR, flag, value, "--out", O)

# -- an ID that would keep more neurons than it has activation rows; a memory limit the run exceeds ----
ROWS = r"method 'id' keeps {k} neurons of group '{g}' at sparsity {s}, but its ID sees {r} activation rows .*; expected {fix}"
case("classify-id-rows", ROWS.format(k=8, g="layers.0", s="0.0", r=5, fix=r"prune.id_samples >= 8"), "classify", *TINY,
     "--set", "prune.id_samples=5", "--out", O)
case("flows-id-rows", ROWS.format(k=10, g="layers.0", s="0.5", r=2, fix=r"prune.id_samples x prune.id_times >= 10"), "flows",
     "--preset", "demo", "--set", "prune.id_samples=1", "--set", "prune.id_times=2", "--out", O)
case("prune-id-rows", ROWS.format(k=16, g=r"lift\+blocks.0\+blocks.1", s="0.5", r=9, fix=r"id_samples >= 6"),
     *PR, "--id-samples", "3", "--method", "id", "--sparsities", "0.5", "--out", O)
case("prune-id-rows-split", ROWS.format(k=16, g=r"lift\+blocks.0\+blocks.1", s="0.5", r=3, fix=r"6 training samples for the ID, "
     r"of which the split has 1 \(or a larger sparsity\)"), *PR, "--test-fraction", "0.5", "--data", F + "/prune/two_rows.npz",
     "--method", "id", "--sparsities", "0.5", "--out", O)
case("nif-id-rows", r"method 'id' keeps 12 nodes of a ShapeNet layer at sparsity 0.25, but its ID sees 1 activation rows "
     r"\(prune.id_samples=1 x 1 position\), .*; expected prune.id_samples >= 12", "nif", "--preset", "demo",
     "--set", "prune.id_samples=1", "--out", O)
# -- a field the config does not read, given by a flag or --set: it would do nothing -------------------
UNUSED = r"{f}={v} is given but no method of {m} is an ID method, so it would do nothing; drop it"
case("classify-unused-id-samples", UNUSED.format(f="prune.id_samples", v=7, m=r"prune.methods=\['weight'\]"), "classify",
     *TINY, "--set", "prune.methods=[weight]", "--set", "prune.id_samples=7", "--out", O)
case("classify-unused-id-samples-section", UNUSED.format(f="prune.id_samples", v=7, m=r"prune.methods=\['unit'\]"),
     "classify", *TINY, "--set", "prune={methods: [unit], id_samples: 7}", "--out", O)
case("classify-unused-retrain", r"prune.retrain='reset' is given but prune.retrain_epochs=0 \(no retraining\)", "classify",
     *TINY, "--set", "prune.retrain_epochs=0", "--set", "prune.retrain=reset", "--out", O)
case("flows-unused-id-times", UNUSED.format(f="prune.id_times", v=3, m=r"prune.methods=\['wt'\]"), "flows", "--preset", "demo",
     "--set", "prune.methods=[wt]", "--set", "prune.id_times=3", "--out", O)
case("nif-unused-id-samples", UNUSED.format(f="prune.id_samples", v=7, m=r"prune.methods=\['l2'\]"), "nif", "--preset", "demo",
     "--set", "prune.methods=[l2]", "--set", "prune.id_samples=7", "--out", O)
case("prune-unused-id-samples", UNUSED.format(f="id_samples", v=7, m=r"methods=\['weight'\]"), *PR, "--method", "weight",
     "--id-samples", "7", "--out", O)
case("moth-unused-sim-seed", r"data.sim_seed=3 is given but data.path='.*none.h5' names a file \(nothing is simulated\)",
     "moth", "train", "--preset", "demo", "--data", F + "/none.h5", "--set", "data.sim_seed=3", "--out", O)
case("flows-unused-hessian", r"analysis.hessian_iters=3 is given but analysis.hessian=false \(no Hessian is measured\)",
     "flows", "--preset", "demo", "--set", "analysis.hessian=false", "--set", "analysis.hessian_iters=3", "--out", O)
case("nif-unused-lr-steps", r"prune.retrain_lr_steps=\{10: 0.0001\} is given but prune.retrain_lr is not set", "nif",
     "--preset", "demo", "--set", "prune.retrain_lr_steps={10: 0.0001}", "--out", O)
case("prune-memory-limit", r"the run \(its largest term: .*\) needs about .* of memory; the limit is memory_limit=1 KB", *PR,
     "--memory-limit", "1KB", "--out", O)

MFEM = ("amr-mesh-", "report-amr", "amr-inr-")


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    w = tmp_path_factory.mktemp("bad_input")
    workspace.build(w)
    return w


def _digest(folder: Path) -> dict[str, tuple[str, int]]:
    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mode)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_there_are_enough_distinct_cases() -> None:
    assert len({c[0] for c in CASES}) == len(CASES) >= 350
    assert {c[2][0] for c in CASES} >= {"run", "classify", "amr", "report", "inspect", "demo"}


@pytest.mark.parametrize("name, pattern, argv", CASES, ids=[c[0] for c in CASES])
def test_bad_input(capsys, monkeypatch, tmp_path, ws, name, pattern, argv) -> None:
    if name.startswith(MFEM):
        pytest.importorskip("mfem.ser")
    out = tmp_path / "out"
    args = [a.replace(F, str(ws)).replace(O, str(out)) for a in argv]
    before = _digest(ws)
    code, _, err = cli(capsys, monkeypatch, *args)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2, f"exit {code}: {err}"
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    assert re.search(pattern, lines[0]), lines[0]
    after = _digest(ws)
    assert {k: after.get(k) for k in before} == before, "a pre-existing file was changed"
    new = set(after) - set(before)  # only `report`, which refuses a damaged file while it holds the lock, may leave one
    assert all(Path(k).name == LOCK for k in new) and (not new or argv[0] == "report"), new
    assert not out.exists(), "a refused run created its results folder"
