"""``sciprune nif``: Neural Implicit Flow, pruned by nodes (pNIF), by ID, compacted, against POD."""
