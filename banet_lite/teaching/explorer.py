"""The explorer component every notebook's widget is built on: `Explorer` (controls, a static view,
a figure per view, the ipywidgets panel) and `ModelExplorer` (a model run once per image, its maps
cached). The explorers only draw: every map they show is one the model returned
(`return_maps=True`).

`reduce_channels` turns a (C, h, w) map into one (h, w) picture; `regions.region_profile` measures
where a map is strong (outline, interior, background, frame), and `Explorer.profile` does so for
a view; `lesion_channel` picks the channel of a batch of maps that tells lesion from background
best.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import Tensor

from .plots import figure_to_png
from .regions import RegionProfile, pooled, region_profile


def reduce_channels(t: Tensor, how: str | int = "mean") -> np.ndarray:
    """(C, h, w) -> (h, w) float32 by "mean" or "max" over channels, or an int channel index."""
    if not isinstance(t, Tensor) or t.ndim != 3:
        raise ValueError("viz.py: reduce_channels needs a (C, h, w) tensor, got "
                         f"{getattr(t, 'shape', t)}")
    t = t.detach().float().cpu()
    if how == "mean":
        r = t.mean(dim=0)
    elif how == "max":
        r = t.amax(dim=0)
    elif isinstance(how, (int, np.integer)) and not isinstance(how, bool):
        if not -t.shape[0] <= how < t.shape[0]:
            raise ValueError(f"viz.py: channel {how} out of range for {t.shape[0]} channels")
        r = t[int(how)]
    else:
        raise ValueError(f"viz.py: reduction must be 'mean', 'max' or a channel index, got {how!r}")
    return r.numpy().astype(np.float32)


def lesion_channel(maps: Tensor, masks: Tensor) -> int:
    """The channel of (B, C, h, w) maps whose values differ most between lesion and background,
    averaged over the batch; masks (B, 1, H, W) in {0, 1} are area-resized to the maps' size
    (inside: more than half lesion)."""
    # (B, h, w)
    inside = F.interpolate(masks.float(), size=maps.shape[-2:], mode="area")[:, 0] > 0.5
    difference = torch.stack([m[:, ins].mean(1) - m[:, ~ins].mean(1)
                              for m, ins in zip(maps, inside)]).mean(0)
    return int(difference.abs().argmax())



def _in_ipython_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


@functools.cache
def _explorer_box_class():
    """The explorer's panel: an ipywidgets VBox (7.7 as on Colab, or 8) whose text form is one
    short, deterministic line (what nbval compares and a console shows) instead of a dump of its
    children."""
    import ipywidgets as widgets

    class ExplorerBox(widgets.VBox):
        text = "Explorer widget"

        def __repr__(self) -> str:
            return self.text

    return ExplorerBox


class Explorer:
    """The one explorer component every notebook's widget is built on.

    A subclass names its controls and draws one Figure for one choice of their values:

        control_options() -> {"stage": [1, 2, 3, 4], "window": [3, 5, 7], ...}
                                                       what the reader can pick
        default_view()    -> {"stage": 2, ...}        the most telling view: the picture shown where
                                                       widgets are not live (GitHub, nbval,
                                                       papermill); `explorer.view = {...}` overrides
                                                       it per instance
        draw(values)      -> Figure                    values: one option per control
        adjust(values)    -> {"channel": {"disabled": True}, ...}   optional: enable/range controls
        caption(values)   -> str                       one line above the picture

    `figure(**values)` draws any view (unknown names or values fail, naming them); `widget()` builds
    the ipywidgets panel (a control per name: buttons for a few options, a slider for many integers,
    else a dropdown; CSS classes `banet-<name>` for browser tests); `display()` shows the widget and
    the static picture in a notebook, and returns the static Figure elsewhere.
    """

    name = "explorer"  # CSS class banet-<name>-explorer
    # integer controls always shown as a slider (image index, channel)
    sliders: tuple[str, ...] = ()
    view: dict = {}  # per instance: overrides of default_view() (e.g. explorer.view = {"stage": 3})

    def default_view(self) -> dict:
        return {}

    @property
    def static_view(self) -> dict:
        return {**self.default_view(), **self.view}

    def control_options(self) -> dict[str, list]:
        raise NotImplementedError

    def draw(self, values: dict) -> Figure:
        raise NotImplementedError

    def adjust(self, values: dict) -> dict[str, dict]:
        return {}

    def caption(self, values: dict) -> str:
        return " · ".join(f"{k} {v}" for k, v in values.items())

    def describe(self) -> str:
        """The widget's text form: short (ipywidgets cut it at 110 characters) and deterministic."""
        sizes = ", ".join(f"{len(v)} {k}s" for k, v in self.control_options().items() if len(v) > 1)
        return f"{type(self).__name__} widget: {sizes}"

    def values(self, **chosen) -> dict:
        """The static view with `chosen` applied, checked against the options."""
        options = self.control_options()
        unknown = sorted(set(chosen) - set(options))
        if unknown:
            raise ValueError(f"{type(self).__name__}: unknown control(s) {unknown}; "
                             f"controls: {list(options)}")
        values = {k: v[0] for k, v in options.items()}
        values.update({k: v for k, v in self.static_view.items() if k in options})
        values.update(chosen)
        for k, v in values.items():
            if v not in options[k]:
                raise ValueError(f"{type(self).__name__}: {k}={v!r} is not offered; "
                                 f"choose one of {options[k]}")
        return values

    def figure(self, **chosen) -> Figure:
        return self.draw(self.values(**chosen))

    def headline(self, values: dict) -> tuple[str, np.ndarray, Tensor] | None:
        """The map a view is about, as (name, (h, w) array, (H, W) mask); None if there is none."""
        return None

    def profile(self, images: Iterable[int] | None = None, **chosen) -> RegionProfile:
        """The region profile (regions.py: outline, interior, background, frame) of the headline map
        of a view: the static view with `chosen` applied; with `images`, that view on each,
        pooled."""
        if images is None:
            found = self.headline(self.values(**chosen))
            if found is None:
                raise ValueError(f"{type(self).__name__}: no headline map to measure")
            return region_profile(found[1], found[2])
        return pooled([self.profile(**{**chosen, "image": i}) for i in images])

    def _control(self, name: str, options: list, value):
        import ipywidgets as widgets

        ints = all(isinstance(o, (int, np.integer)) and not isinstance(o, bool) for o in options)
        contiguous = ints and list(options) == list(range(options[0], options[-1] + 1))
        if contiguous and (len(options) > 6 or name in self.sliders):
            return widgets.IntSlider(value=value, min=options[0], max=options[-1], description=name,
                                     continuous_update=False, disabled=len(options) == 1)
        if len(options) <= 5 and all(len(str(o)) <= 16 for o in options):
            return widgets.ToggleButtons(options=options, value=value, description=name,
                                         style={"button_width": "auto" if not ints else "3em"})
        return widgets.Dropdown(options=options, value=value, description=name)

    def widget(self):
        """An ipywidgets VBox: one control per name, a caption and the rendered PNG."""
        import ipywidgets as widgets

        start = self.values()
        c = self.controls = {name: self._control(name, opts, start[name])
                             for name, opts in self.control_options().items()}
        c["caption"], c["view"] = widgets.HTML(), widgets.Image(format="png")
        for name, w in c.items():
            w.add_class(f"banet-{name}")
        busy = [False]  # re-entrancy guard: adjusting a control's range fires its own change event

        def render(_change=None) -> None:
            if busy[0]:
                return
            busy[0] = True
            try:
                values = {name: c[name].value for name in start}
                for name, state in self.adjust(values).items():
                    for attr, value in state.items():
                        setattr(c[name], attr, value)
                values = {name: c[name].value for name in start}  # after any clamping
                c["view"].value = figure_to_png(self.draw(values), dpi=80)
                c["caption"].value = f"<b>{self.caption(values)}</b>"
            finally:
                busy[0] = False

        for name in start:
            c[name].observe(render, names="value")
        render()
        rows, row = [], []
        for name in start:  # at most three controls a row
            row.append(c[name])
            if len(row) == 3:
                rows.append(widgets.HBox(row))
                row = []
        if row:
            rows.append(widgets.HBox(row))
        box = _explorer_box_class()([*rows, c["caption"], c["view"]])
        box.text = self.describe()
        box.add_class("banet-explorer")
        box.add_class(f"banet-{self.name}-explorer")
        return box

    def display(self) -> Figure | None:
        """In a notebook: the live widget, then a static picture of `static_view` (it survives on
        GitHub, nbval and papermill, where widgets do not render); returns None. Elsewhere:
        the Figure."""
        fig = self.draw(self.values())
        if not _in_ipython_kernel():
            return fig
        from IPython.display import Image, display

        # the live widget (Colab: through its custom widget manager); text: its repr
        display(self.widget())
        display(Image(data=figure_to_png(fig)))  # the static picture of the most telling view
        found = self.headline(self.values())
        if found is not None:  # what the picture shows, in numbers, as text under it
            profile = region_profile(found[1], found[2])
            print(f"{found[0].splitlines()[0]}: {profile}\n  -> {profile.read()}")
        return None


class ModelExplorer(Explorer):
    """An Explorer over one network and a few images: runs the model once per image (cached) with
    its maps.

    images (N, 3, H, W) ImageNet-normalised, masks (N, 1, H, W) in {0, 1}; the model goes to
    `device`, eval."""

    def __init__(self, model: torch.nn.Module, images: Tensor, masks: Tensor, device: str = "cpu"):
        where = type(self).__name__
        if not isinstance(images, Tensor) or images.ndim != 4 or images.shape[1] != 3:
            got = getattr(images, "shape", type(images))
            raise ValueError(f"viz.py: {where} images must be a (N, 3, H, W) tensor, got {got}")
        if masks.ndim == 3:
            masks = masks[:, None]
        if masks.shape[0] != images.shape[0] or masks.shape[-2:] != images.shape[-2:]:
            shapes = f"{tuple(masks.shape)} vs images {tuple(images.shape)}"
            raise ValueError(f"viz.py: {where} masks must be (N, 1, H, W) "
                             f"like the images: {shapes}")
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.images, self.masks = images, masks
        self._cache: dict[int, object] = {}
        self.controls: dict = {}  # filled by widget(): name -> ipywidgets control
        self.view = {}

    def __len__(self) -> int:
        return self.images.shape[0]

    def _output(self, image_index: int):
        if not 0 <= image_index < len(self):
            raise IndexError(f"viz.py: image_index {image_index} out of range "
                             f"for {len(self)} images")
        if image_index not in self._cache:
            x = self.images[image_index : image_index + 1].to(self.device)  # (1, 3, H, W)
            with torch.no_grad():
                out = self.model(x, return_maps=True)
            self._cache[image_index] = out
        return self._cache[image_index]

    def _maps(self, image_index: int, name: str) -> tuple[Tensor, ...]:
        maps = self._output(image_index).maps or {}
        if not maps.get(name):
            raise ValueError(f"viz.py: {type(self).__name__} needs the model's {name!r} maps; this "
                             f"model has {sorted(k for k, v in maps.items() if v)} "
                             "(is the module switched off?)")
        return maps[name]
