"""Exercises: every library answer passes its own check, wrong and unfinished answers get their verdict,
and the answers that are not plain library calls are right on their own terms."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import banet_lite as bl
from banet_lite.teaching import exercise_answers as answers
from banet_lite.teaching import exercises


@pytest.mark.parametrize("name", sorted(exercises.EXERCISES))
def test_the_library_answer_passes(name, capsys):
    assert exercises.check(name, exercises.EXERCISES[name].reference)
    assert capsys.readouterr().out.startswith(f"✅ {name}: matches banet_lite on ")


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
                    answers.ours_from_reference(w))
    torch.testing.assert_close(ours, reference, atol=1e-5, rtol=1e-5)


def test_stage_sizes_and_pos_weight_answers_on_their_own_terms():
    with torch.device("meta"):
        feats = bl.build_model("paper").backbone(torch.zeros(1, 3, 100, 100))
    assert answers.stage_sizes(100, 8) == [f.shape[-1] for f in feats] == [25, 13, 13, 13]
    masks = torch.zeros(1, 1, 10, 10)
    masks[..., 3:7, 3:7] = 1  # band: the 6x6 square minus its 2x2 core = 32 pixels of 100
    assert answers.balanced_pos_weight(masks) == pytest.approx(68 / 32)
    pred = np.zeros((8, 8), bool)
    assert answers.dice_jaccard(pred, pred) == (1.0, 1.0)


ARITHMETIC = {"stage_sizes", "separable_params", "ia_blocks_params"}  # answers that are a count or a size


def test_at_most_a_third_are_arithmetic_and_every_block_is_built():
    names = set(exercises.EXERCISES)
    assert ARITHMETIC <= names and 3 * len(ARITHMETIC) <= len(names)
    built = {n for n, e in exercises.EXERCISES.items() if e.kind == "module"}
    assert built == {"build_pee", "build_mtl_stage", "build_cff", "build_aspp", "assemble_tiny"}


class _Broken:
    """Plausible wrong answers to the build-it exercises: the library's module with one slip."""

    class PEEWithoutReLU(answers.PEEAnswer):  # the fusion unit's leading ReLU forgotten
        def forward(self, f):
            edges = torch.cat(bl.pee.pyramid_edges(f, self.kernels, self.border_rule), 1)
            return self.fuse[1:](self.squeeze(torch.cat([f, edges], 1))), edges

    class StageWithSigmoidGate(answers.MiniMTLStageAnswer):  # gate sigmoid(A s) instead of 1 - sigmoid(A s)
        def forward(self, x):
            e, s = self.edge_branch(x), self.seg_branch(x)
            E = e + torch.sigmoid(self.ia.attend_edge(e)) * s
            S = s + torch.sigmoid(self.ia.attend_seg(s)) * e
            return S, self.seg_head(S), self.edge_head(E)

    class CFFNearestResize(answers.CFFAnswer):  # nearest instead of bilinear, align_corners=True
        def forward(self, feats):
            i, s_i = self.stage, feats[self.stage]
            got = 0
            for j, s_j in enumerate(feats):
                if j != i:
                    s_j = F.interpolate(s_j, size=s_i.shape[-2:], mode="nearest")
                    got = got + torch.sigmoid(self.convs[j](s_j)) * s_j
            return s_i + (1 - torch.sigmoid(self.convs[i](s_i))) * got

    class ASPPWithoutImagePool(bl.ASPP):  # the image-pooling branch left out of the concatenation
        def forward(self, x):
            views = [b(x) for b in self.branches]
            return self.project(torch.cat(views + [torch.zeros_like(views[0])], 1))

    class TinyWithoutCFF(answers.TinyBANetAnswer):  # CFF built but its output not used
        def forward(self, x):
            self.cff, cff = None, self.cff
            try:
                return super().forward(x)
            finally:
                self.cff = cff


def _nearest_paper_cff(feats, stage):  # nearest-neighbour resizing instead of bilinear
    s_i = feats[stage]
    sent = [F.interpolate(s, size=s_i.shape[-2:], mode="nearest") for j, s in enumerate(feats) if j != stage]
    return s_i + (1 - torch.sigmoid(s_i)) * sum(torch.sigmoid(s) * s for s in sent)


def _dice_without_smoothing(logits, mask):
    p, y = logits.softmax(1)[:, 1:], mask.float()
    return (1 - 2 * (p * y).sum((1, 2, 3)) / (p.sum((1, 2, 3)) + y.sum((1, 2, 3)))).mean()


# One plausible slip per exercise: what a student who half-remembers the lesson might write.
WRONG_ANSWERS = {
    "edge_target": lambda mask, rule: bl.edge_target(mask, "exclude_padding"),  # ignores the border rule
    "normalize": lambda image: torch.from_numpy(image).permute(2, 0, 1).float() / 255,  # no mean and std
    "pee_reference_form": lambda f, k: bl.pee.pyramid_edges(f, k, "exclude_padding"),  # padding not counted
    "stage_sizes": lambda size, stride: [size // 4, size // 8, size // 16, size // 32],  # forgets the dilation
    "reference_to_ours": lambda w: w,  # the authors' weight unchanged
    "build_pee": _Broken.PEEWithoutReLU,
    "paper_ia": lambda e, s: (e + torch.sigmoid(e) * s, s + torch.sigmoid(s) * e),  # sigmoid, not 1 - sigmoid
    "separable_params": lambda r: 9 * r + r * r,  # forgets BatchNorm's 2R
    "ia_blocks_params": lambda r: 9 * r + 2 * r + r * r,  # one block, not two
    "build_mtl_stage": _Broken.StageWithSigmoidGate,
    "paper_cff": _nearest_paper_cff,
    "build_cff": _Broken.CFFNearestResize,
    "build_aspp": _Broken.ASPPWithoutImagePool,
    "soft_dice_loss": _dice_without_smoothing,
    "joint_loss": lambda logits, sm, se, mask, w: answers.joint_loss(logits, sm, se, mask, None),  # weight lost
    "assemble_tiny": _Broken.TinyWithoutCFF,
    "balanced_pos_weight": lambda masks: 1 / answers.balanced_pos_weight(masks),  # p / (1 - p)
    "poly_lr": lambda base_lr, step, total: base_lr * (1 - step / total),  # linear, not power 0.9
    "dice_jaccard": lambda pred, target: answers.dice_jaccard(pred, target)[::-1],  # (Jaccard, Dice)
    "boundary_f": lambda pred, target: bl.metrics.boundary_f_score(pred, target, tolerance=1),  # 1 px, not 2
}


def test_every_exercise_has_a_plausible_wrong_answer():
    assert set(WRONG_ANSWERS) == set(exercises.EXERCISES)


@pytest.mark.parametrize("name", sorted(WRONG_ANSWERS))
def test_a_plausible_wrong_answer_fails(name, capsys):
    assert not exercises.check(name, WRONG_ANSWERS[name])
    assert capsys.readouterr().out.startswith(f"❌ {name}: input ")


def test_module_weights_load_by_creation_order_and_misfits_are_named(capsys):
    class RenamedASPP(torch.nn.Module):  # the library's ASPP under other attribute names
        def __init__(self, c_in, dim, rates):
            super().__init__()
            lib = bl.ASPP(c_in, dim, rates)
            self.b, self.p, self.out = lib.branches, lib.image_pool, lib.project
            self._lib = [lib]

        def forward(self, x):
            lib = self._lib[0]
            lib.branches, lib.image_pool, lib.project = self.b, self.p, self.out
            return lib(x)

    assert exercises.check("build_aspp", RenamedASPP)

    class TooNarrow(torch.nn.Module):
        def __init__(self, dim, kernels, border_rule):
            super().__init__()
            self.squeeze = torch.nn.Conv2d(2 * dim, dim, 1, bias=False)  # forgot F' itself: 2R -> R

    capsys.readouterr()
    assert not exercises.check("build_pee", TooNarrow)
    assert "tensor 1 in creation order is squeeze.weight (4, 8, 1, 1); the library's is squeeze.weight " \
           "(4, 12, 1, 1)" in capsys.readouterr().out


def test_a_stub_module_is_not_done_yet(capsys):
    class Stub(torch.nn.Module):
        def __init__(self, dim, stage):
            raise NotImplementedError

    assert not exercises.check("build_cff", Stub)
    assert capsys.readouterr().out == "✏️ build_cff: not done yet (the stub raises NotImplementedError)\n"


def test_reveal_compares_a_guess_with_the_answer(capsys):
    exercises.reveal(None, 0.25)
    exercises.reveal(0.24, 0.25)
    exercises.reveal(0.5, 0.25)
    exercises.reveal("frame", "frame")
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("The answer: 0.25.")
    assert out[1] == "✅ right: you guessed 0.24; the answer is 0.25."
    assert out[2] == "❌ not quite: you guessed 0.5; the answer is 0.25."
    assert out[3].startswith("✅ right")
