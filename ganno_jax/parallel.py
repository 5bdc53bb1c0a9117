"""Placing arrays on every device of every process: the one helper the trainer and the evaluator
share (both replicate the dataset; the trainer also its behaviour-cloned agent)."""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P


def device_mesh(axis: str) -> Mesh:
    """A 1-D mesh over every device of every process (jax.distributed), the local ones otherwise."""
    return Mesh(np.array(jax.devices()), (axis,))


def replicate(tree, mesh: Mesh):
    """Every leaf as a global array replicated over `mesh`. With several processes each passes the
    same values (every process loads the same dataset). A leaf already replicated over the mesh's
    devices is returned as is, so placing data once before a loop costs no copy per iteration."""
    sharding = NamedSharding(mesh, P())
    devices = set(mesh.devices.flat)

    def place(x):
        if isinstance(x, jax.Array) and x.sharding.is_fully_replicated and x.sharding.device_set == devices:
            return x
        return jax.make_array_from_process_local_data(sharding, np.asarray(x))

    return jax.tree.map(place, tree)
