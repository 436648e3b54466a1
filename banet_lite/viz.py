"""Pictures: `bl.viz.*` in one namespace, from two files.

    plots.py      static figures: mask overlays, batches, training curves, metric distributions
    explorer.py   the map explorer: BA-Net's internal maps per image and stage, a figure or a widget

Every plotting function returns a matplotlib `Figure` and never calls `plt.show()`.
"""

from . import plots
from .data.transforms import IMAGENET_MEAN, IMAGENET_STD
from .explorer import MAP_CHOICES, MapChoice, MapExplorer, reduce_channels
from .output import foreground_probability
from .plots import figure_to_png, overlay, plot_history, plot_metric_distribution, save_figure, show_batch

GT_COLOUR, PRED_COLOUR = plots.GT_COLOUR, plots.PRED_COLOUR  # the overlay colours

__all__ = [
    "GT_COLOUR", "IMAGENET_MEAN", "IMAGENET_STD", "MAP_CHOICES", "PRED_COLOUR", "MapChoice", "MapExplorer",
    "figure_to_png", "foreground_probability", "overlay", "plot_history", "plot_metric_distribution",
    "reduce_channels", "save_figure", "show_batch",
]
