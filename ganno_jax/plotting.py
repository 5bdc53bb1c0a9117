"""Matplotlib helpers shared by training plots and evaluation plots."""

from __future__ import annotations

import numpy as np

LR_FLOOR = 1e-8  # an LR of 0 is drawn here on the log axis
MAX_LEGEND_LAYERS = 8


def plot_layer_lrs(ax, steps: np.ndarray, lrs: np.ndarray, step_plot: bool = False, legend: bool = True,
                   fontsize: int = 7):
    """Per-layer learning rates on a log axis, one line per agent.

    Up to 8 layers get one legend entry each. Deeper nets (a ResNet-18 has 21 agents) are drawn
    in a colour ramp from the input to the output layer, with only the first and last layer in
    the legend. Otherwise the legend would cover the axes.

    Args:
      steps: (T,) inner-step positions.
      lrs: (T, num_layers) learning rates.
      step_plot: draw piecewise-constant steps (an LR holds for a block) instead of lines.
      legend: draw the legend (a grid of panels needs it once).
    """
    import matplotlib

    n = lrs.shape[1]
    ramp = n > MAX_LEGEND_LAYERS
    cmap = matplotlib.colormaps["viridis"]
    for layer in range(n):
        kw = {"label": f"layer {layer + 1}"}
        if ramp:
            kw["color"] = cmap(layer / (n - 1))
            if layer not in (0, n - 1):
                kw["label"] = "_nolegend_"
        y = np.maximum(lrs[:, layer], LR_FLOOR)
        if step_plot:
            ax.step(steps, y, where="post", **kw)
        else:
            ax.plot(steps, y, **kw)
    ax.set_yscale("log")
    if legend:
        ax.legend(fontsize=fontsize, title=f"{n} layers, input → output" if ramp else None,
                  title_fontsize=fontsize)
