"""Which parameters belong to which agent, derived from any Flax linen parameter tree.

Rules (SPEC §1–2), applied to the modules in the order they are first called (`model_layer_table`
records it; `jax.eval_shape` and other pytree round trips sort dict keys, and alphabetical order
puts `Conv_10` before `Conv_2` and `BasicBlock_0` before the stem `ConvBN_0`). Without a recorded
order, the tree's own insertion order is used (what `model.init` returns):
- a module holding a `kernel` leaf is a layer: rank-2 kernel → "linear", rank ≥ 3 → "conv";
- a module whose children include `query`, `key` and `value` (e.g. `nn.MultiHeadDotProductAttention`)
  is one "attention" layer owning all its projections;
- any other parameters (normalisation scale/bias, embeddings, free parameters) belong to the layer
  before them, or to the first layer if none comes before;
- depth position: the first layer is "first", the last is "final", the rest "intermediate"
  (a one-layer network's only layer is "first").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import jax

LAYER_TYPES = ("linear", "conv", "attention")
DEPTH_POSITIONS = ("first", "intermediate", "final")
_ATTENTION_CHILDREN = {"query", "key", "value"}


@dataclasses.dataclass(frozen=True)
class Layer:
    """One agent's layer."""

    name: str  # module path, e.g. "Conv_0" or "block1/Dense_0"
    kind: str  # one of LAYER_TYPES
    depth: str  # one of DEPTH_POSITIONS
    leaves: tuple[str, ...]  # parameter paths it owns, e.g. ("Conv_0/kernel", "Conv_0/bias")


@dataclasses.dataclass(frozen=True)
class LayerTable:
    """The agents of a network, in depth order, and the layer of every parameter leaf."""

    layers: tuple[Layer, ...]
    # Layer index of each leaf in `jax.tree.leaves(params)` order (the flattening order, which is
    # the same for every tree with these keys, whatever the dict insertion order).
    leaf_layer: tuple[int, ...]

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    def type_ids(self) -> tuple[int, ...]:
        return tuple(LAYER_TYPES.index(layer.kind) for layer in self.layers)

    def depth_ids(self) -> tuple[int, ...]:
        return tuple(DEPTH_POSITIONS.index(layer.depth) for layer in self.layers)


def _walk(tree: Mapping[str, Any], prefix: str, groups: list[tuple[str, str | None, list[str]]]):
    """Appends (module path, kind or None, leaf paths) groups in creation order."""
    own_leaves = [k for k, v in tree.items() if not isinstance(v, Mapping)]
    if _ATTENTION_CHILDREN <= set(tree):
        groups.append((prefix, "attention", _leaf_paths(tree, prefix)))
        return
    if own_leaves:
        kind = None
        if "kernel" in tree and not isinstance(tree["kernel"], Mapping):
            kind = "linear" if len(tree["kernel"].shape) == 2 else "conv"
        groups.append((prefix, kind, [_join(prefix, k) for k in own_leaves]))
    for k, v in tree.items():
        if isinstance(v, Mapping):
            _walk(v, _join(prefix, k), groups)


def _leaf_paths(tree: Mapping[str, Any], prefix: str) -> list[str]:
    out = []
    for k, v in tree.items():
        out.extend(_leaf_paths(v, _join(prefix, k)) if isinstance(v, Mapping) else [_join(prefix, k)])
    return out


def _join(prefix: str, key: str) -> str:
    return f"{prefix}/{key}" if prefix else str(key)


def _path_str(path) -> str:
    return "/".join(str(getattr(p, "key", getattr(p, "name", p))) for p in path)


def init_rngs(key: jax.Array) -> dict[str, jax.Array]:
    """The rng streams `model.init` is given: "params", and "dropout" for models whose dropout is
    active when called without a `train`/`deterministic` flag."""
    params_key, dropout_key = jax.random.split(key)
    return {"params": params_key, "dropout": dropout_key}


def abstract_variables(model, *args, **kwargs):
    """Shapes of every variable collection `model.init(rngs, *args, **kwargs)` creates ("params",
    "batch_stats", ...), traced abstractly."""
    return jax.eval_shape(lambda k: model.init(init_rngs(k), *args, **kwargs), jax.random.PRNGKey(0))


def module_call_order(model, *args, **kwargs) -> list[str]:
    """Paths ("block/Conv_0") of the modules `model.init(rngs, *args, **kwargs)` calls, first call
    first. Traced abstractly: no parameters are materialised."""
    import flax.linen as nn

    order: dict[str, None] = {}

    def record(next_fun, fun_args, fun_kwargs, context):
        if context.method_name == "__call__":
            order.setdefault("/".join(context.module.path), None)
        return next_fun(*fun_args, **fun_kwargs)

    with nn.intercept_methods(record):
        abstract_variables(model, *args, **kwargs)
    return list(order)


def model_layer_table(model, *args, **kwargs) -> LayerTable:
    """The layer table of a linen `model` called as `model.init(rngs, *args, **kwargs)`; raises
    ValueError for a model without parameters."""
    shapes = abstract_variables(model, *args, **kwargs)
    if not shapes.get("params"):
        raise ValueError("the model has no parameters (no 'params' collection) to control")
    return build_layer_table(shapes["params"], module_call_order(model, *args, **kwargs))


def build_layer_table(params: Mapping[str, Any], call_order: list[str] | None = None) -> LayerTable:
    """Derives the layer table from a parameter tree.

    Args:
      params: nested mapping of parameter arrays (or shape structs).
      call_order: module paths in first-call order (`module_call_order`); if omitted, the tree's
        insertion order stands for it (right for `model.init(...)["params"]` as returned).

    Returns:
      The LayerTable; raises ValueError if the tree has no Dense/Conv/attention layer.
    """
    groups: list[tuple[str, str | None, list[str]]] = []
    _walk(params, "", groups)
    if call_order is not None:
        rank = {path: i for i, path in enumerate(call_order)}
        groups.sort(key=lambda g: rank.get(g[0], len(rank)))  # stable: unknown paths keep order
    layers: list[dict] = []
    orphans: list[str] = []  # parameters seen before any layer
    for name, kind, leaves in groups:
        if kind is None:
            (layers[-1]["leaves"].extend(leaves) if layers else orphans.extend(leaves))
        else:
            layers.append({"name": name, "kind": kind, "leaves": list(leaves)})
    if not layers:
        raise ValueError("the parameter tree has no Dense, Conv or attention layer to control")
    layers[0]["leaves"][:0] = orphans
    n = len(layers)
    table_layers = tuple(
        Layer(
            name=d["name"],
            kind=d["kind"],
            depth="first" if i == 0 else ("final" if i == n - 1 else "intermediate"),
            leaves=tuple(d["leaves"]),
        )
        for i, d in enumerate(layers)
    )
    owner = {leaf: i for i, layer in enumerate(table_layers) for leaf in layer.leaves}
    flat = jax.tree_util.tree_flatten_with_path(params)[0]
    leaf_layer = tuple(owner[_path_str(path)] for path, _ in flat)
    return LayerTable(table_layers, leaf_layer)
