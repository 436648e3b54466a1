"""The map explorer (notebook 06): what BA-Net computes inside, per image and stage, as a figure or
an ipywidgets panel.

Per stage (stage 1 at 1/4 of the input, 2-4 at 1/8):
  PEE edge response       |F' - avg_k(F')|      (B, 2R, h, w)  how "edgy" each feature is
  IA seg->boundary mask   1 - sigmoid(A_e(e))   (B, R, h, w)   what the seg branch adds to e
  IA boundary->seg mask   1 - sigmoid(A_s(s))   (B, R, h, w)   what the boundary branch adds to s
  CFF gate                1 - sigmoid(W_i S_i)  (B, R, h, w)   how much stage i takes from others
  side outputs, final prediction: foreground probability
Channel maps are reduced to one (h, w) picture by mean, max or a single channel.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure
from torch import Tensor

from ..model.output import foreground_probability, logits_to_mask
from ..overlay import overlay
from .explorer import ModelExplorer, reduce_channels
from .plots import _denormalize, _new_figure


@dataclass(frozen=True)
class MapChoice:
    source: str  # a key of out.maps, or "side_masks" / "side_boundaries" / "logits"
    absolute: bool = False  # show |value| (signed edge responses)
    channels: bool = True  # a (C, h, w) feature map (reduced) rather than a probability
    per_stage: bool = True


MAP_CHOICES: OrderedDict[str, MapChoice] = OrderedDict(
    [
        ("PEE edge response", MapChoice("pee_edge", absolute=True)),
        ("IA seg->boundary mask", MapChoice("ia_seg_to_boundary")),
        ("IA boundary->seg mask", MapChoice("ia_boundary_to_seg")),
        ("CFF gate", MapChoice("cff_gate")),
        ("Side segmentation", MapChoice("side_masks", channels=False)),
        ("Side boundary", MapChoice("side_boundaries", channels=False)),
        ("Final prediction", MapChoice("logits", channels=False, per_stage=False)),
    ]
)
# drawn on a fixed 0..1 scale; other maps autoscale
_PROBABILITIES = {"side_masks", "side_boundaries", "logits"}



class MapExplorer(ModelExplorer):
    """Browse BA-Net's internal maps per image and stage; a static figure, or an ipywidgets panel.

        # images (N, 3, H, W) normalised, masks (N, 1, H, W)
        explorer = MapExplorer(model, images, masks)
        # any view, by its controls
        explorer.figure(image=0, stage=2, map="CFF gate", reduction="max")
        # widget + a static picture in a notebook
        explorer.display()
    The model is moved to `device`, put in eval mode and run once per image (outputs are cached).
    Its static view is stage 2's side boundary prediction: what BA-Net adds to a plain segmenter.
    """

    name = "map"
    sliders = ("image", "channel")

    def available_maps(self) -> list[str]:
        """Names from MAP_CHOICES this model produces (modules switched off have no map)."""
        out = self._output(0)
        maps = out.maps or {}
        have = {k for k, v in maps.items() if len(v)} | {"logits"}
        have |= {name for name in ("side_masks", "side_boundaries") if len(getattr(out, name, ()))}
        return [name for name, choice in MAP_CHOICES.items() if choice.source in have]

    def _choice(self, map_name: str) -> MapChoice:
        if map_name not in self.available_maps():
            raise ValueError(f"viz.py: map {map_name!r} not available; "
                             f"choose from {self.available_maps()}")
        return MAP_CHOICES[map_name]

    def _stage_tensor(self, image_index: int, stage: int, map_name: str) -> Tensor:
        """The raw per-stage tensor for one image: (C, h, w) maps, or (K, H, W) logits."""
        choice, out = self._choice(map_name), self._output(image_index)
        if choice.source == "logits":
            return out.logits[0]
        if choice.source in ("side_masks", "side_boundaries"):
            stages = getattr(out, choice.source)  # 4 x (1, K, H, W)
        else:
            stages = out.maps[choice.source]  # 4 x (1, C, h, w)
        if not 1 <= stage <= len(stages):
            raise ValueError(f"viz.py: stage must be 1..{len(stages)}, got {stage}")
        return stages[stage - 1][0]

    def num_stages(self) -> int:
        out = self._output(0)
        lengths = ([len(v) for v in (out.maps or {}).values()]
                   + [len(out.side_masks), len(out.side_boundaries)])
        return max(lengths + [1])

    def num_channels(self, image_index: int, stage: int, map_name: str) -> int:
        """Channels the reduction runs over (1 for probability maps)."""
        if not MAP_CHOICES[map_name].channels:
            return 1
        return self._stage_tensor(image_index, stage, map_name).shape[0]

    def map_array(self, image_index: int = 0, stage: int = 1, map_name: str = "PEE edge response",
                  reduction: str | int = "mean") -> np.ndarray:
        """The (h, w) float32 picture `figure` draws in its third panel, at the map's own
        resolution."""
        choice = self._choice(map_name)
        t = self._stage_tensor(image_index, stage, map_name)
        if not choice.channels:  # logits (K, h, w) -> foreground probability, reduction not used
            return foreground_probability(t[None].float().cpu())[0].numpy().astype(np.float32)
        if choice.absolute:
            t = t.abs()
        return reduce_channels(t, reduction)

    # --- pictures ---------------------------------------------------------------------------------

    def _title(self, image_index: int, stage: int, map_name: str, reduction) -> str:
        choice = MAP_CHOICES[map_name]
        where = f"stage {stage}" if choice.per_stage else "all stages"
        if not choice.channels:
            how = ("boundary probability" if choice.source == "side_boundaries"
                   else "foreground probability")
        else:
            is_channel = isinstance(reduction, (int, np.integer))
            how = f"channel {reduction}" if is_channel else f"{reduction} over channels"
            if choice.absolute:
                how = f"|response|, {how}"
        return f"image {image_index} · {where} · {map_name} · {how}"

    # --- the Explorer hooks: controls, static view, drawing ---------------------------------------

    def control_options(self) -> dict[str, list]:
        names = self.available_maps()
        most = max(self.num_channels(0, 1, n) for n in names)
        return {"image": list(range(len(self))), "stage": list(range(1, self.num_stages() + 1)),
                "map": names, "reduction": ["mean", "max", "channel"], "channel": list(range(most))}

    def default_view(self) -> dict:
        names = self.available_maps()
        return {"stage": min(2, self.num_stages()),
                "map": "Side boundary" if "Side boundary" in names else names[0]}

    def _how(self, values: dict) -> str | int:
        return values["channel"] if values["reduction"] == "channel" else values["reduction"]

    def adjust(self, values: dict) -> dict[str, dict]:
        choice = MAP_CHOICES[values["map"]]
        n = self.num_channels(values["image"], values["stage"], values["map"])
        return {"stage": {"disabled": not choice.per_stage},
                "reduction": {"disabled": not choice.channels},
                "channel": {"max": n - 1,
                            "disabled": not choice.channels or values["reduction"] != "channel"}}

    def draw(self, values: dict) -> Figure:
        """Three panels: the image, ground truth (green) and prediction (red), and the chosen
        map."""
        image_index, map_name = values["image"], values["map"]
        arr = self.map_array(image_index, values["stage"], map_name, self._how(values))  # (h, w)
        image = _denormalize(self.images[image_index])  # (H, W, 3) uint8
        H, W = image.shape[:2]
        mask = self.masks[image_index, 0] > 0.5
        pred = logits_to_mask(self._output(image_index).logits)[0].cpu()

        fig = _new_figure(figsize=(12.5, 4.4), layout="constrained")
        ax_img, ax_gt, ax_map = fig.subplots(1, 3)
        ax_img.imshow(image)
        ax_img.set_title("image")
        ax_gt.imshow(overlay(image, mask.numpy(), pred.numpy()))
        ax_gt.set_title("ground truth (green), prediction (red)")
        # probabilities on a fixed 0..1 scale; gates and edge responses autoscale (an untrained gate
        # sits near 0.5 everywhere, and a fixed scale would hide its structure), the colorbar gives
        # the range
        prob = MAP_CHOICES[map_name].source in _PROBABILITIES
        # the map at its own resolution, stretched over the image's extent
        # (stage 1: 1/4, stages 2-4: 1/8)
        im = ax_map.imshow(
            arr, cmap="viridis" if prob else "magma", vmin=0 if prob else None,
            vmax=1 if prob else None, extent=(-0.5, W - 0.5, H - 0.5, -0.5),
            interpolation="nearest",
        )
        ax_map.set_title(f"{map_name} ({arr.shape[0]}×{arr.shape[1]})")
        fig.colorbar(im, ax=ax_map, fraction=0.046, pad=0.02)
        for ax in (ax_img, ax_gt, ax_map):
            ax.set_xticks([])
            ax.set_yticks([])
        fig.suptitle(self.caption(values), fontsize=11)
        return fig

    def headline(self, values: dict) -> tuple[str, np.ndarray, Tensor]:
        arr = self.map_array(values["image"], values["stage"], values["map"], self._how(values))
        return (f"{values['map']}, stage {values['stage']}", arr,
                self.masks[values["image"], 0].float().cpu())

    def caption(self, values: dict) -> str:
        return self._title(values["image"], values["stage"], values["map"], self._how(values))

    def describe(self) -> str:
        return (f"MapExplorer widget: {len(self)} images, {self.num_stages()} stages, "
                f"{len(self.available_maps())} maps")
