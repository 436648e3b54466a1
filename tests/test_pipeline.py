"""The training and evaluation pipeline end to end, on what the unit tests of each piece cannot see:
which epoch best.pt keeps, the poly schedule's values, a one-channel (sigmoid) model from training to
prediction, and evaluation on non-square images of a size other than the training size."""

import numpy as np
import pytest
import torch
from PIL import Image
from train_configs import tiny_run

import banet_lite as bl
from banet_lite.data import load_image, load_mask, write_synthetic_dataset
from banet_lite.errors import CheckpointError
from banet_lite.evaluate import evaluate, predict, segment
from banet_lite.training import train as btrain
from banet_lite.training.checkpoint import load_checkpoint, save_checkpoint


def tiny_config(tmp_path, **kw):
    return tiny_run(**{"out": tmp_path / "run", "epochs": 3, "synthetic_train": 12, "seed": 5, **kw})


def test_best_pt_keeps_the_best_validation_epoch_and_the_schedule_is_poly(tmp_path, monkeypatch):
    scripted = iter([0.30, 0.60, 0.45])  # validation Dice of epochs 1, 2, 3
    real = btrain.evaluate_loss

    def scripted_validation(*args, **kwargs):
        return {**real(*args, **kwargs), "dice": next(scripted)}

    monkeypatch.setattr(btrain, "evaluate_loss", scripted_validation)
    cfg = tiny_config(tmp_path, lr=0.01, poly_power=0.9)
    result = btrain.fit(cfg)
    best, last = load_checkpoint(result.best_path), load_checkpoint(result.last_path)
    assert (best["epoch"], best["best_score"]) == (2, pytest.approx(0.60))
    assert last["epoch"] == 3 and result.best_score == pytest.approx(0.60)
    assert "optimizer" not in best and "optimizer" in last  # best.pt: what evaluate and predict need
    with pytest.raises(CheckpointError, match="last.pt"):
        btrain.fit(tiny_config(tmp_path / "again", resume=str(result.best_path)))

    # poly: lr_t = lr (1 - t / T)^0.9 with T = epochs * steps per epoch; 12 images in batches of 4 = 3 steps
    T = 3 * 3
    for row in result.history:
        t = 3 * row["epoch"]  # steps taken when the row is written
        assert row["lr"] == pytest.approx(0.01 * (1 - t / T) ** 0.9, rel=1e-9, abs=1e-12)
    assert result.history[-1]["lr"] == 0.0


def test_poly_lr_values():
    assert btrain.poly_lr(0, 10) == 1.0
    assert btrain.poly_lr(5, 10) == pytest.approx(0.5**0.9)
    assert btrain.poly_lr(9, 10, power=2.0) == pytest.approx(0.01)
    assert btrain.poly_lr(10, 10) == btrain.poly_lr(12, 10) == 0.0  # never negative past the end


def test_a_checkpoint_holds_one_input_size_and_old_ones_still_load(tmp_path):
    from banet_lite.training.checkpoint import model_config_dict, model_from_checkpoint

    model = bl.build_model("tiny", num_classes=1)
    config = model_config_dict(model)
    assert "img_size" not in config and config["preset"] == "tiny"
    legacy = {**config, "img_size": 96, "batch_size": 8, "lr": 3e-3, "epochs": 8}  # written before the split
    rebuilt = model_from_checkpoint({"model": model.state_dict(), "config": legacy})
    assert rebuilt.config == model.config
    unet = bl.build_model("unet", base_width=4)
    old_unet = {"preset": "unet", "num_classes": 2, "base_width": 4, "in_channels": 3, "depth": 4}  # as written before
    assert model_config_dict(unet) == old_unet
    assert model_from_checkpoint({"model": unet.state_dict(), "config": old_unet}).config == unet.config


def write_non_square(root, sizes=((40, 56), (23, 31), (64, 20))):
    """Folder dataset of images with the given (height, width), a lesion-like ellipse in each mask."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate(sizes):
        yy, xx = np.mgrid[:h, :w]
        mask = (((yy - h / 2) / (h / 3)) ** 2 + ((xx - w / 2) / (w / 4)) ** 2 < 1).astype(np.uint8)
        image = (rng.integers(0, 60, (h, w, 3)) + 150 * mask[..., None]).astype(np.uint8)
        Image.fromarray(image).save(root / "images" / f"n{i}.png")
        Image.fromarray(mask * 255).save(root / "masks" / f"n{i}.png")
    return root


@pytest.mark.parametrize("num_classes", [1, 2])
def test_evaluate_and_predict_non_square_images_of_another_size(tmp_path, num_classes):
    torch.manual_seed(0)
    model = bl.build_model("tiny", num_classes=num_classes).eval()
    ckpt = tmp_path / "model.pt"
    save_checkpoint(ckpt, {"model": model.state_dict(), "config": model.config.to_dict(), "img_size": 48})
    root = write_non_square(tmp_path / "data")

    rows, summary = evaluate(ckpt, root, out_dir=tmp_path / "eval", progress=False)
    assert summary["n_images"] == 3 and summary["img_size"] == 48
    for row, stem in zip(rows, ("n0", "n1", "n2")):
        image, mask = load_image(root / "images" / f"{stem}.png"), load_mask(root / "masks" / f"{stem}.png")
        pred = segment(model, image, 48)
        assert pred.shape == mask.shape  # back at the image's own (non-square) size
        assert row["accuracy"] == pytest.approx(np.mean(pred == (mask > 0)))

    written = predict(ckpt, root / "images", tmp_path / "pred", progress=False)
    for path in written:
        with Image.open(root / "images" / path.name.replace("_mask.png", ".png")) as src, Image.open(path) as out:
            assert out.size == src.size and out.mode == "L"


def test_one_channel_model_end_to_end(tmp_path):
    """num_classes=1 (sigmoid): train, keep best.pt, evaluate the test split, predict masks."""
    data = write_synthetic_dataset(tmp_path / "synth", n=10, size=40, seed=2)
    result = btrain.fit(tiny_config(tmp_path, data_dir=str(data), num_classes=1, epochs=1))
    ckpt = load_checkpoint(result.best_path)
    assert ckpt["config"]["num_classes"] == 1
    model = bl.checkpoint.model_from_checkpoint(ckpt).eval()
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 32, 32)).logits.shape == (1, 1, 32, 32)
    rows, summary = evaluate(result.best_path, data, split="test", progress=False)
    assert len(rows) == 2 and 0.0 <= summary["dice"] <= 1.0 and np.isfinite(summary["accuracy"])
    assert len(predict(result.best_path, data / "images", tmp_path / "pred", progress=False)) == 10
