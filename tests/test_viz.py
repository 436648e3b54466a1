"""Pictures: overlays, channel reductions, plots, and the map explorer on a tiny fake model."""

from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from torch import nn  # noqa: E402

from banet_lite.teaching import explorer as explorer_module  # noqa: E402
from banet_lite.teaching import plots, viz  # noqa: E402
from banet_lite.teaching.viz import (  # noqa: E402
    GT_COLOUR,
    MAP_CHOICES,
    PRED_COLOUR,
    MapExplorer,
    overlay,
    plot_history,
    plot_metric_distribution,
    reduce_channels,
    save_figure,
    show_batch,
)

MEAN = torch.tensor(viz.IMAGENET_MEAN).view(3, 1, 1)
STD = torch.tensor(viz.IMAGENET_STD).view(3, 1, 1)


def square_mask(size=32, top=8, side=12):
    m = np.zeros((size, size), dtype=bool)
    m[top : top + side, top : top + side] = True
    return m


# --- overlay and images -----------------------------------------------------------------------------------


def test_overlay_colours_on_a_square():
    image = np.full((32, 32, 3), 100, dtype=np.uint8)
    mask = square_mask()  # rows/cols 8..19
    out = overlay(image, mask, alpha=0.4)
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8
    assert tuple(out[8, 12]) == GT_COLOUR and tuple(out[9, 12]) == GT_COLOUR  # 2-px contour
    expected_fill = np.round(0.6 * 100 + 0.4 * np.array(GT_COLOUR)).astype(np.uint8)
    assert tuple(out[14, 14]) == tuple(expected_fill)  # inside: translucent ground truth
    assert tuple(out[0, 0]) == (100, 100, 100)  # outside untouched

    pred = np.zeros((32, 32), dtype=bool)
    pred[14:28, 14:28] = True
    out = overlay(image, mask, pred, alpha=0.4)
    assert tuple(out[27, 20]) == PRED_COLOUR  # prediction contour
    assert out[22, 22, 0] > 150 and out[22, 22, 1] < 100  # prediction inside: reddish
    assert tuple(out[8, 12]) == GT_COLOUR  # ground truth contour on top
    assert tuple(out[12, 12]) == (100, 100, 100)  # inside ground truth only: no fill when a pred is given
    with pytest.raises(ValueError, match="mask"):
        overlay(image, np.zeros((16, 16)))


def test_denormalize_inverts_imagenet_normalisation():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    x = (torch.from_numpy(image).permute(0, 3, 1, 2).float() / 255 - MEAN) / STD  # (2, 3, 8, 8)
    back = plots._denormalize(x)  # data.transforms.denormalize: the one copy
    assert back.shape == (2, 8, 8, 3) and back.dtype == np.uint8
    assert np.abs(back.astype(int) - image).max() <= 1


def test_show_batch_grid():
    x = torch.randn(3, 3, 32, 32)
    masks = torch.from_numpy(np.stack([square_mask()] * 3)).float()[:, None]  # (3, 1, 32, 32)
    fig = show_batch(x, masks, preds=masks, ncols=2)
    assert isinstance(fig, Figure) and len(fig.axes) == 3  # the empty 4th cell is removed
    assert "Dice 1.000" in fig.axes[0].get_title()
    images = [np.zeros((32, 32, 3), np.uint8)] * 2
    fig = show_batch(images, masks[:2], titles=["a", "b"])
    assert [ax.get_title() for ax in fig.axes] == ["a", "b"]


def test_reduce_channels():
    t = torch.arange(12, dtype=torch.float32).view(3, 2, 2)  # channel c holds 4c .. 4c+3
    np.testing.assert_allclose(reduce_channels(t, "mean"), [[4, 5], [6, 7]])
    np.testing.assert_allclose(reduce_channels(t, "max"), [[8, 9], [10, 11]])
    np.testing.assert_allclose(reduce_channels(t, 1), [[4, 5], [6, 7]])
    assert reduce_channels(t).dtype == np.float32
    with pytest.raises(ValueError, match="channel"):
        reduce_channels(t, 3)
    with pytest.raises(ValueError, match="reduction"):
        reduce_channels(t, "median")


def test_lesion_channel_finds_the_channel_that_tells_lesion_from_background():
    masks = torch.from_numpy(np.stack([square_mask(), square_mask(top=4)]))[:, None].float()  # (2, 1, 32, 32)
    maps = torch.rand(2, 5, 8, 8, generator=torch.Generator().manual_seed(0)) * 0.1
    maps[:, 3] -= 2 * F.interpolate(masks, size=(8, 8), mode="area")[:, 0]  # channel 3: low on the lesion
    assert viz.lesion_channel(maps, masks) == 3


def test_show_map_stretches_a_small_map_over_the_image_with_the_outline():
    fig = plots._new_figure()
    ax = fig.add_subplot()
    im = viz.show_map(ax, torch.rand(8, 8), torch.from_numpy(square_mask()), cmap="RdBu_r", vmax=0.5)
    assert im.get_extent() == [-0.5, 31.5, 31.5, -0.5] and im.get_clim() == (0.0, 0.5)
    assert im.get_cmap().name == "RdBu_r" and len(ax.collections) == 1  # the outline
    assert not ax.get_xticks().size and not ax.get_yticks().size


# --- plots --------------------------------------------------------------------------------------------------


def test_plot_history_from_rows_and_csv(tmp_path):
    rows = [
        {"epoch": e, "train_loss": 1 / e, "val_loss": 1.2 / e, "val_dice": 0.5 + e / 20,
         "val_jaccard": 0.4 + e / 20, "lr": 1e-3, "seconds": 3.0}
        for e in range(1, 6)
    ]
    fig = plot_history(rows)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    csv_path = tmp_path / "history.csv"
    csv_path.write_text("epoch,train_loss,lr\n1,0.9,0.001\n2,0.7,0.001\n")
    assert len(plot_history(csv_path).axes) == 1  # only the losses are present
    out = save_figure(fig, tmp_path / "plots" / "history.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in out.parent.iterdir()] == ["history.png"]  # no temporary file left behind
    with pytest.raises(FileNotFoundError):
        plot_history(tmp_path / "missing.csv")


def test_plot_metric_distribution_skips_nan():
    rows = [{"dice": d, "hd95": h} for d, h in [(0.9, 2.0), (0.8, float("nan")), (0.7, 5.0), (0.95, 1.0)]]
    fig = plot_metric_distribution(rows, "hd95")
    assert len(fig.axes) == 2 and "1 undefined" in fig._suptitle.get_text()
    assert len(plot_metric_distribution(rows).axes) == 2


# --- map explorer ------------------------------------------------------------------------------------------


class FakeBANet(nn.Module):
    """Returns the contract's output fields; maps depend on the input, the stage and the channel."""

    def __init__(self, map_names=("pee_edge", "ia_seg_to_boundary", "ia_boundary_to_seg", "cff_gate"), R=4, K=2):
        super().__init__()
        self.map_names, self.R = map_names, R
        self.head = nn.Conv2d(3, K, 1)

    def forward(self, x, return_maps=False):
        logits = self.head(x)  # (B, K, H, W)
        side_masks = tuple(logits * (i + 1) for i in range(4))
        side_boundaries = tuple(-logits * (i + 1) for i in range(4))
        maps = {}
        for name in self.map_names:
            C = 2 * self.R if name == "pee_edge" else self.R
            per_stage = []
            for i in range(4):
                f = F.avg_pool2d(x.mean(1, keepdim=True), 4 if i == 0 else 8)  # (B, 1, h, w)
                f = f * torch.arange(1.0, C + 1).view(1, C, 1, 1) + i  # (B, C, h, w)
                per_stage.append(f if name == "pee_edge" else torch.sigmoid(f))
            maps[name] = tuple(per_stage)
        return SimpleNamespace(logits=logits, side_masks=side_masks, side_boundaries=side_boundaries,
                               maps=maps if return_maps else None)


@pytest.fixture(scope="module")
def explorer():
    torch.manual_seed(0)
    images = torch.randn(2, 3, 32, 32)
    masks = torch.from_numpy(np.stack([square_mask()] * 2)).float()[:, None]
    return MapExplorer(FakeBANet(), images, masks)


def test_map_array_shapes_and_ranges(explorer):
    pee1 = explorer.map_array(0, 1, "PEE edge response", "mean")
    assert pee1.shape == (8, 8) and pee1.dtype == np.float32 and (pee1 >= 0).all()  # |response|
    gate = explorer.map_array(0, 2, "CFF gate", "max")
    assert gate.shape == (4, 4) and ((gate >= 0) & (gate <= 1)).all()
    for name in ("Side segmentation", "Side boundary", "Final prediction"):
        prob = explorer.map_array(1, 3, name)
        assert prob.shape == (32, 32) and ((prob >= 0) & (prob <= 1)).all()
    np.testing.assert_array_equal(explorer.map_array(0, 4, "Final prediction"),
                                  explorer.map_array(0, 1, "Final prediction"))  # stage ignored


def test_map_array_changes_with_stage_map_and_reduction(explorer):
    a = explorer.map_array(0, 2, "IA seg->boundary mask", "mean")
    assert not np.allclose(a, explorer.map_array(0, 3, "IA seg->boundary mask", "mean"))
    assert not np.allclose(a, explorer.map_array(0, 2, "IA boundary->seg mask", "max"))
    assert not np.allclose(a, explorer.map_array(0, 2, "IA seg->boundary mask", 0))
    assert not np.allclose(explorer.map_array(0, 1, "Side segmentation"),
                           explorer.map_array(0, 2, "Side segmentation"))
    assert explorer.num_channels(0, 1, "PEE edge response") == 8 and explorer.num_stages() == 4
    with pytest.raises(ValueError, match="stage"):
        explorer.map_array(0, 5, "CFF gate")


def test_figure_has_three_panels_and_a_colorbar(explorer):
    fig = explorer.figure(image=1, stage=2, map="CFF gate", reduction="max")
    assert isinstance(fig, Figure) and len(fig.axes) == 4
    assert "stage 2" in fig._suptitle.get_text() and "CFF gate" in fig._suptitle.get_text()
    assert isinstance(explorer.display(), Figure)  # outside IPython: the static figure


def test_switched_off_maps_are_not_offered():
    images, masks = torch.randn(1, 3, 32, 32), torch.zeros(1, 1, 32, 32)
    ex = MapExplorer(FakeBANet(map_names=("pee_edge",)), images, masks)
    offered = ["PEE edge response", "Side segmentation", "Side boundary", "Final prediction"]
    assert ex.available_maps() == offered
    with pytest.raises(ValueError, match="not available"):
        ex.map_array(0, 1, "CFF gate")
    assert list(MAP_CHOICES) == ["PEE edge response", "IA seg->boundary mask", "IA boundary->seg mask", "CFF gate",
                                 "Side segmentation", "Side boundary", "Final prediction"]


def test_widget_updates_the_image(explorer):
    import ipywidgets as widgets

    box = explorer.widget()
    assert isinstance(box, widgets.VBox) and "banet-explorer" in box._dom_classes
    c = explorer.controls
    assert {n: c[n].description for n in ("image", "stage", "map", "reduction", "channel")} == {
        n: n for n in ("image", "stage", "map", "reduction", "channel")
    }
    assert "banet-stage" in c["stage"]._dom_classes and "banet-map" in c["map"]._dom_classes
    first = c["view"].value
    assert first[:8] == b"\x89PNG\r\n\x1a\n"
    c["stage"].value = 3
    after_stage = c["view"].value
    assert after_stage != first and "stage 3" in c["caption"].value
    c["map"].value = "CFF gate"
    assert c["view"].value != after_stage
    assert c["channel"].disabled
    c["reduction"].value = "channel"
    assert not c["channel"].disabled and c["channel"].max == 3  # R = 4 channels
    c["map"].value = "Final prediction"
    assert c["stage"].disabled and c["reduction"].disabled


def test_widget_text_form_is_short_and_deterministic(explorer):
    box = explorer.widget()
    text = "MapExplorer widget: 2 images, 4 stages, 7 maps"
    assert repr(box) == text and len(text) <= 110  # ipywidgets (7 and 8) cut a longer text at 110 characters
    if hasattr(box, "_repr_mimebundle_"):  # ipywidgets 8; 7 sends the same text from _ipython_display_
        bundle = box._repr_mimebundle_()
        assert bundle["text/plain"] == text and "application/vnd.jupyter.widget-view+json" in bundle


def test_display_in_a_kernel_shows_the_widget_itself_then_a_picture(explorer, monkeypatch):
    """display(widget), not a hand-made mime bundle: Colab's widget manager and ipywidgets 7 need the widget."""
    import IPython.display
    import ipywidgets as widgets

    shown = []
    monkeypatch.setattr(explorer_module, "_in_ipython_kernel", lambda: True)
    monkeypatch.setattr(IPython.display, "display", lambda *objs, **kwargs: shown.append((objs, kwargs)))
    assert explorer.display() is None
    assert len(shown) == 2 and all(len(objs) == 1 and not kwargs for objs, kwargs in shown)
    widget, picture = shown[0][0][0], shown[1][0][0]
    assert isinstance(widget, widgets.VBox) and "banet-explorer" in widget._dom_classes
    assert isinstance(picture, IPython.display.Image) and picture.data[:8] == b"\x89PNG\r\n\x1a\n"
