"""Pictures: `bl.viz.*` in one namespace, from these files.

    ../overlay.py masks drawn on an image (numpy only; evaluate's predictions use it too)
    plots.py      static figures: batches, training curves, metric distributions
    explorer.py   the shared explorer component (Explorer, ModelExplorer)
    regions.py    where a map is strong: its mean on the outline, interior, background and frame
    map_explorer.py  the map explorer of notebook 06
    stage_explorers.py  one explorer per idea: PEE (01), IA (02), CFF (03), side outputs and
                        decoder (04)

Every plotting function returns a matplotlib `Figure` and never calls `plt.show()`.
"""

from ..data.transforms import IMAGENET_MEAN, IMAGENET_STD
from ..model.output import foreground_probability
from ..overlay import GT_COLOUR, PRED_COLOUR, overlay
from .explorer import Explorer, ModelExplorer, lesion_channel, reduce_channels
from .map_explorer import MAP_CHOICES, MapChoice, MapExplorer
from .plots import (
    figure_to_png,
    plot_history,
    plot_metric_distribution,
    save_figure,
    show_batch,
    show_map,
    show_segmentation,
)
from .regions import BOUNDARY_MARGIN, RegionProfile, region_profile
from .stage_explorers import CFFExplorer, DecoderExplorer, IAExplorer, PEEExplorer

__all__ = [
    "CFFExplorer", "DecoderExplorer", "Explorer", "GT_COLOUR", "IAExplorer", "IMAGENET_MEAN",
    "IMAGENET_STD", "MAP_CHOICES", "PEEExplorer", "PRED_COLOUR", "MapChoice", "MapExplorer",
    "ModelExplorer", "BOUNDARY_MARGIN", "RegionProfile", "region_profile", "figure_to_png",
    "foreground_probability", "lesion_channel", "overlay", "plot_history",
    "plot_metric_distribution", "reduce_channels", "save_figure", "show_batch", "show_map",
    "show_segmentation",
]
