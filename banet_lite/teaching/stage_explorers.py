"""One explorer per idea, for the notebook that teaches it; all built on `explorer.Explorer`.

    PEEExplorer      (01)  |F' - AvgPool_k F'| for any stage, window size k, border rule and channel
    IAExplorer       (02)  both IA gates per stage, and what each task borrows from the other:
                           S = s + (1 - sig(A_s s)) * e     E = e + (1 - sig(A_e e)) * s
    CFFExplorer      (03)  for a receiving stage i: what each other stage sends,
                           sig(W_j S_j') * S_j', where the receiving gate 1 - sig(W_i S_i) opens,
                           and what is added
    DecoderExplorer  (04)  the side outputs of each stage, and each decoder step d4 -> d1 read out
                           by the decoder's head, up to the final mask

Each draws one row of panels: the image with the lesion outline (green), then the maps at their own
resolution, stretched over the image, with the outline on top. Titles say where a map is strong: its
mean on the cells the outline crosses, inside the lesion and in the background (regions.py: "o/i/b
0.52/0.31/0.12" is strongest on the outline).
Gates autoscale (an untrained gate sits near 0.5 everywhere; the colorbar gives the range);
probabilities are drawn on 0..1.

    # images (N, 3, H, W) normalised, masks (N, 1, H, W)
    ex = bl.viz.PEEExplorer(model, images, masks)
    ex.figure(stage=2, window=7, border_rule="zero_padding")
    # the widget, and a static picture of its best view
    ex.display()
"""

from __future__ import annotations

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor

from ..model.config import BORDER_RULES
from ..model.output import foreground_probability
from ..model.pee import local_average, pyramid_edges
from .explorer import ModelExplorer, reduce_channels
from .plots import _denormalize, _new_figure
from .regions import region_profile

REDUCTIONS = ["mean", "max"]


class _StageExplorer(ModelExplorer):
    """Shared drawing: a row of panels, the first the image with the lesion outline."""

    sliders = ("image",)
    # which of `panels` the view is about (its region profile is printed under it)
    headline_panel = -1

    def panels(self, values: dict) -> list[tuple[str, np.ndarray, dict]]:
        """The maps of one view after the image: (title, (h, w) array, imshow kwargs) each."""
        raise NotImplementedError

    def draw(self, values: dict) -> Figure:
        return self._panels(values["image"], self.panels(values), self.caption(values))

    def headline(self, values: dict) -> tuple[str, np.ndarray, Tensor]:
        name, arr, _ = self.panels(values)[self.headline_panel]
        return name, arr, self.masks[values["image"], 0].float().cpu()

    def _panels(self, image_index: int, maps: list[tuple[str, np.ndarray, dict]],
                title: str) -> Figure:
        """maps: (title, (h, w) array, imshow kwargs) each; returns the figure, outline on every
        panel."""
        image = _denormalize(self.images[image_index])  # (H, W, 3) uint8
        H, W = image.shape[:2]
        mask = self.masks[image_index, 0].float().cpu()  # (H, W)
        n = 1 + len(maps)
        fig = _new_figure(figsize=(3.0 * n + 0.6, 3.6), layout="constrained")
        axes = fig.subplots(1, n)
        axes[0].imshow(image)
        axes[0].set_title("image, lesion outline", fontsize=9)
        extent = (-0.5, W - 0.5, H - 0.5, -0.5)
        for ax, (name, arr, style) in zip(axes[1:], maps):
            im = ax.imshow(arr, extent=extent, interpolation="nearest",
                           **{"cmap": "magma", **style})
            means = region_profile(arr, mask).means
            ax.set_title(f"{name}\n{arr.shape[0]}×{arr.shape[1]} · o/i/b {means['outline']:.2f}/"
                         f"{means['interior']:.2f}/{means['background']:.2f}", fontsize=9)
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
        for ax in axes:
            if mask.any():
                ax.contour(mask.numpy(), levels=[0.5], colors=["#28dc3c"], linewidths=1.0)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlim(-0.5, W - 0.5)
            ax.set_ylim(H - 0.5, -0.5)
        fig.suptitle(title, fontsize=11)
        return fig

    def _stages(self) -> list[int]:
        return list(range(1, len(self._maps(0, "seg_features")) + 1))


class PEEExplorer(_StageExplorer):
    """01: the edge response E_k = F' - AvgPool_k F' of the reduced feature F', for any window size
    k and either border rule (not only the two windows and the rule the model was built with)."""

    name = "pee"
    windows = [3, 5, 7, 9, 11]

    def control_options(self) -> dict[str, list]:
        channels = self._maps(0, "reduced")[0].shape[1]
        return {"image": list(range(len(self))), "stage": self._stages(), "window": self.windows,
                "border_rule": list(BORDER_RULES), "channel": REDUCTIONS + list(range(channels))}

    def default_view(self) -> dict:
        return {"stage": 2, "window": 5, "border_rule": "exclude_padding"}

    def edge_response(self, image_index: int, stage: int, window: int,
                      border_rule: str) -> tuple[Tensor, Tensor]:
        """F' and |E_k| for one image and stage, each (R, h, w)."""
        f = self._maps(image_index, "reduced")[stage - 1][0]  # (R, h, w)
        # PEE's own E_k, any window
        return f, pyramid_edges(f[None], (window,), border_rule)[0][0].abs()

    def panels(self, values: dict) -> list[tuple[str, np.ndarray, dict]]:
        i, stage, k, rule, how = (values[n]
                                  for n in ("image", "stage", "window", "border_rule", "channel"))
        f, e = self.edge_response(i, stage, k, rule)
        avg = local_average(f[None], k, rule)[0]
        which = f"channel {how}" if isinstance(how, int) else f"{how} over channels"
        # F' and its average are signed: mean, or the channel
        f_how = how if isinstance(how, int) else "mean"
        maps = [
            (f"F' (stage {stage}, {which if isinstance(how, int) else 'mean'})",
             reduce_channels(f, f_how),
             {"cmap": "viridis"}),
            (f"AvgPool_{k} F'", reduce_channels(avg, f_how), {"cmap": "viridis"}),
            (f"|E_{k}| = |F' - AvgPool_{k} F'|", reduce_channels(e, how), {}),
        ]
        return maps

    def caption(self, values: dict) -> str:
        return (f"PEE · image {values['image']} · stage {values['stage']} · "
                f"window {values['window']} · {values['border_rule']} · {values['channel']}")


class IAExplorer(_StageExplorer):
    """02: interactive attention. Direction "boundary -> seg": the seg branch borrows
    (1 - sig(A_s s)) * e from the boundary branch; "seg -> boundary": the boundary branch borrows
    (1 - sig(A_e e)) * s."""

    name = "ia"
    # direction -> (the lending branch, the gate, what crosses over, the receiving task after IA)
    DIRECTIONS = {"boundary -> seg": ("boundary_branch", "ia_boundary_to_seg", "ia_borrowed_by_seg",
                                  "seg_features"),
                  "seg -> boundary": ("seg_branch", "ia_seg_to_boundary", "ia_borrowed_by_boundary",
                                  "boundary_features")}

    def control_options(self) -> dict[str, list]:
        have = [d for d, (_, gate, _, _) in self.DIRECTIONS.items()
                if (self._output(0).maps or {}).get(gate)]
        if not have:
            self._maps(0, "ia_boundary_to_seg")  # raises: the model has no IA (use_ia=False)
        return {"image": list(range(len(self))), "stage": self._stages(), "direction": have,
                "reduction": REDUCTIONS}

    def default_view(self) -> dict:
        # the finest stage: at 1/8 a small model's gates mostly follow the image frame
        return {"stage": 1}

    headline_panel = 2  # what crosses over

    def panels(self, values: dict) -> list[tuple[str, np.ndarray, dict]]:
        i, stage, direction, how = (values[n] for n in ("image", "stage", "direction", "reduction"))
        src, gate, borrowed, after = (self._maps(i, name)[stage - 1][0]
                                      for name in self.DIRECTIONS[direction])
        # each (R, h, w): e or s before IA, the gate in (0, 1), gate * (e or s), S or E after IA
        a, b = direction.split(" -> ")
        maps = [
            (f"{a} branch (lends), |.| {how}", reduce_channels(src.abs(), how),
             {"cmap": "viridis"}),
            (f"gate 1 - sig(A·{b[0]}), {how}", reduce_channels(gate, how), {"cmap": "cividis"}),
            (f"borrowed |gate · {a[0]}|, {how}", reduce_channels(borrowed.abs(), how), {}),
            (f"{b} branch after IA, |.| {how}", reduce_channels(after.abs(), how),
             {"cmap": "viridis"}),
        ]
        return maps

    def caption(self, values: dict) -> str:
        return (f"IA · image {values['image']} · stage {values['stage']} · {values['direction']} · "
                f"{values['reduction']} over channels")


class CFFExplorer(_StageExplorer):
    """03: cross feature fusion into one receiving stage i: each sender's sig(W_j S_j') * S_j', the
    receiving gate 1 - sig(W_i S_i), and what stage i adds: gate * sum_j (...)."""

    name = "cff"

    def __init__(self, model, images, masks, device: str = "cpu"):
        super().__init__(model, images, masks, device)
        if getattr(self.model, "cff", None) is None:
            raise ValueError("viz.py: CFFExplorer needs a model with CFF; this one was "
                             "built with use_cff=False")

    def control_options(self) -> dict[str, list]:
        return {"image": list(range(len(self))), "receiver": self._stages(),
                "reduction": REDUCTIONS}

    def default_view(self) -> dict:
        return {"receiver": 1}  # stage 1, the finest, receives from three coarser stages

    def messages(self, image_index: int, receiver: int) -> tuple[dict[int, Tensor], Tensor, Tensor]:
        """{j: sig(W_j S_j') S_j'} for each sender j, the receiving gate, and gate * their sum;
        (R, h, w), as the model's CFF computed them (return_maps)."""
        i = receiver - 1
        sent = self._maps(image_index, "cff_sent")[i][0]  # (3, R, h, w): the senders in stage order
        senders = [j + 1 for j in range(len(self._maps(image_index, "cff_gate"))) if j != i]
        gate, added = (self._maps(image_index, "cff_gate")[i][0],
                       self._maps(image_index, "cff_added")[i][0])
        return dict(zip(senders, sent)), gate, added

    def panels(self, values: dict) -> list[tuple[str, np.ndarray, dict]]:
        i, r, how = values["image"], values["receiver"], values["reduction"]
        sent, gate, added = self.messages(i, r)
        maps = [(f"stage {j} sends, |.| {how}", reduce_channels(m.abs(), how), {"cmap": "viridis"})
                for j, m in sent.items()]
        maps += [(f"gate of stage {r}, {how}", reduce_channels(gate, how), {"cmap": "cividis"}),
                 (f"stage {r} adds |gate · sum|, {how}", reduce_channels(added.abs(), how), {})]
        return maps

    def caption(self, values: dict) -> str:
        return (f"CFF · image {values['image']} · into stage {values['receiver']} · "
                f"{values['reduction']} over channels")


class DecoderExplorer(_StageExplorer):
    """04: from the side outputs to the final mask. "side i": stage i's side mask and side boundary;
    "d4" ... "d1": the decoder's state after each step, read out by the decoder's own head (a probe:
    the head is trained on d1 only), next to the final foreground probability."""

    name = "decoder"

    def control_options(self) -> dict[str, list]:
        out = self._output(0)
        sides = [f"side {k}" for k in range(1, len(out.side_masks) + 1)]
        steps = [f"d{k}" for k in (4, 3, 2, 1)][: len(self._maps(0, "decoder_steps"))]
        return {"image": list(range(len(self))), "step": sides + steps}

    def default_view(self) -> dict:
        return {"step": "side 2" if "side 2" in self.control_options()["step"] else "d1"}

    headline_panel = 1  # the side boundary, or the decoder step read out by the head

    def panels(self, values: dict) -> list[tuple[str, np.ndarray, dict]]:
        i, step = values["image"], values["step"]
        out = self._output(i)
        final = foreground_probability(out.logits.float().cpu())[0].numpy()
        prob = {"cmap": "viridis", "vmin": 0, "vmax": 1}
        if step.startswith("side"):
            k = int(step.split()[1])
            maps = [(f"side mask {k}",
                     foreground_probability(out.side_masks[k - 1].float().cpu())[0].numpy(), prob),
                    (f"side boundary {k}",
                     foreground_probability(out.side_boundaries[k - 1].float().cpu())[0].numpy(),
                     prob)]
        else:
            k = int(step[1])
            d = self._maps(i, "decoder_steps")[4 - k]  # (1, R, h, w)
            with torch.no_grad():
                probe = foreground_probability(self.model.decoder.head(d).float().cpu())[0].numpy()
            maps = [(f"{step}: |features| mean", reduce_channels(d[0].abs(), "mean"), {}),
                    (f"head({step}): foreground", probe, prob)]
        maps.append(("final foreground probability", final, prob))
        return maps

    def caption(self, values: dict) -> str:
        return f"Decoder · image {values['image']} · {values['step']}"
