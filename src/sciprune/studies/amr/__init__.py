"""PruningAMR: adaptive meshes for implicit neural representations, refined where ID pruning says
the network is complex (``sciprune amr``; see ``docs/amr.md``).

Modules: :mod:`.config` (parameters), :mod:`.inr` / :mod:`.legacy` (INR sources),
:mod:`.meshing` (MFEM mesh, refinement records, P1 values), :mod:`.meshcheck` (mesh files checked
before MFEM reads them), :mod:`.interp` (vectorised interpolation and point location), :mod:`.sampling` (per-element random samples),
:mod:`.examine` (PruningAMR / BasicAMR verdicts), :mod:`.evaluate` (vertex values, true error),
:mod:`.driver` (the loop), :mod:`.study` (``STUDY``), :mod:`.plots`, :mod:`.cli`,
:mod:`.builtin` / :mod:`.train_builtin` (the shipped INRs).
"""
