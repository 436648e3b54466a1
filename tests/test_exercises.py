"""Exercises: every library answer passes its own check, wrong and unfinished answers get their verdict,
and the answers that are not plain library calls are right on their own terms."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import banet_lite as bl
from banet_lite import exercises


@pytest.mark.parametrize("name", sorted(exercises.EXERCISES))
def test_the_library_answer_passes(name, capsys):
    assert exercises.check(name, exercises.EXERCISES[name].reference)
    assert capsys.readouterr().out.startswith(f"✅ {name}: matches banet_lite on ")


def test_two_to_four_exercises_per_notebook():
    per_notebook = {}
    for e in exercises.EXERCISES.values():
        per_notebook[e.notebook] = per_notebook.get(e.notebook, 0) + 1
    assert sorted(per_notebook) == ["00", "01", "02", "03", "04", "05", "06"]
    assert all(2 <= n <= 4 for n in per_notebook.values()), per_notebook


def test_verdicts_for_a_stub_a_wrong_answer_and_a_crash(capsys):
    def stub(e, s):
        raise NotImplementedError

    assert not exercises.check("paper_ia", stub)
    assert "not done yet" in capsys.readouterr().out
    assert not exercises.check("paper_ia", lambda e, s: (e, s))
    assert "❌ paper_ia: input 1 of 2 differs: largest difference" in capsys.readouterr().out
    assert not exercises.check("separable_params", lambda r: r * r)
    assert "returned 1, expected" in capsys.readouterr().out
    assert not exercises.check("poly_lr", lambda *a: 1 / 0)
    assert "raised ZeroDivisionError" in capsys.readouterr().out
    with pytest.raises(ValueError, match="unknown exercise 'pee'"):
        exercises.check("pee", stub)


def test_reference_to_ours_gives_the_reference_pee_function():
    """The authors' squeeze on [F, A_a F, A_b F] equals ours on [F, E_a, E_b] with the converted weight."""
    torch.manual_seed(0)
    R = 4
    f, w = torch.randn(1, R, 9, 9), torch.randn(R, 3 * R, 1, 1)
    pool = [torch.nn.AvgPool2d(k, stride=1, padding=k // 2) for k in (5, 7)]  # the reference's pooling
    reference = F.conv2d(torch.cat([f, pool[0](f), pool[1](f)], 1), w)
    ours = F.conv2d(torch.cat([f, *bl.pee.pyramid_edges(f, (5, 7), "zero_padding")], 1),
                    exercises._ours_from_reference(w))
    torch.testing.assert_close(ours, reference, atol=1e-5, rtol=1e-5)


def test_stage_sizes_and_pos_weight_answers_on_their_own_terms():
    with torch.device("meta"):
        feats = bl.build_model("paper").backbone(torch.zeros(1, 3, 100, 100))
    assert exercises._stage_sizes(100, 8) == [f.shape[-1] for f in feats] == [25, 13, 13, 13]
    masks = torch.zeros(1, 1, 10, 10)
    masks[..., 3:7, 3:7] = 1  # band: the 6x6 square minus its 2x2 core = 32 pixels of 100
    assert exercises._balanced_pos_weight(masks) == pytest.approx(68 / 32)
    pred = np.zeros((8, 8), bool)
    assert exercises._dice_jaccard(pred, pred) == (1.0, 1.0)
