"""Exercises: every library answer passes its own check; wrong and unfinished answers get a verdict that names
the input, the output that differs and the error; every known mistake's hint fires on a wrong answer that makes
it, and on no other; and the answers that are not plain library calls are right on their own terms."""

import math
from collections import OrderedDict

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from wrong_answers import MORE_STUDENT_MISTAKES, STRUCTURAL, STUDENT_MISTAKES, good_step

import banet_lite as bl
from banet_lite.teaching import exercise_answers as answers
from banet_lite.teaching import exercises
from banet_lite.teaching.exercise_report import compare, describe

ARITHMETIC = {"stage_sizes", "separable_params", "poly_lr"}  # answers that are arithmetic on sizes or a schedule
DROPPED = {"ia_blocks_params", "balanced_pos_weight", "paper_cff"}  # issue 27: duplicates and re-derivations


def run(name, answer, capsys) -> tuple[bool, str]:
    capsys.readouterr()
    verdict = exercises.check(name, answer)
    return verdict, capsys.readouterr().out


@pytest.mark.parametrize("name", list(exercises.EXERCISES))
def test_the_library_answer_passes(name, capsys):
    passed, out = run(name, exercises.EXERCISES[name].reference, capsys)
    assert passed and out.startswith(f"✅ {name}: matches banet_lite on ") and out.count("\n") == 1, out


def test_every_exercise_names_its_notebook_and_few_are_arithmetic():
    table = exercises.EXERCISES
    assert not DROPPED & set(table)
    assert {n for n, e in table.items() if e.arithmetic} == ARITHMETIC and 4 * len(ARITHMETIC) <= len(table)
    per_notebook = {nb: sorted(n for n, e in table.items() if e.notebook == nb) for nb in sorted({
        e.notebook for e in table.values()})}
    assert list(per_notebook) == ["00", "01", "02", "03", "04", "05", "06", "07"]
    assert all(1 <= len(names) <= 4 for names in per_notebook.values()), per_notebook
    assert per_notebook["05"] == ["poly_lr", "train_step"]
    assert per_notebook["07"] == ["pee_reference_form", "reference_to_ours"]
    built = {n for n, e in table.items() if e.kind == "module"}
    assert built == {"build_pee", "build_mtl_stage", "build_cff", "build_aspp", "assemble_tiny"}
    assert {e.kind for e in table.values()} == {"function", "module", "train_step"}


def test_verdicts_for_a_stub_a_crash_and_an_unknown_name(capsys):
    def stub(e, s):
        raise NotImplementedError("your code here")

    assert run("paper_ia", stub, capsys) == (False, "✏️ paper_ia: not done yet (the stub raises NotImplementedError)\n")
    passed, out = run("poly_lr", lambda *a: 1 / 0, capsys)
    assert not passed and out.splitlines() == [
        "❌ poly_lr: input 1 of 6: poly_lr(base_lr=0.0001, step=0, total_steps=100)",
        "   raised ZeroDivisionError: division by zero"]
    with pytest.raises(ValueError, match="unknown exercise 'pee'"):
        exercises.check("pee", stub)


def test_a_wrong_number_names_the_input_and_both_errors(capsys):
    """The issue's two examples: the arguments of the failing case, and a linear schedule's rate printed with
    enough digits to see that it differs, with the relative error."""
    passed, out = run("separable_params", lambda R: R * R, capsys)
    assert not passed and out.splitlines()[:2] == [
        "❌ separable_params: input 1 of 4: separable_params(R=1)",
        "   returned 1, expected 12 (difference -11, relative error 9.2e-01)"]
    passed, out = run("poly_lr", lambda base_lr, step, total: base_lr * (1 - step / total), capsys)
    assert out.splitlines()[:2] == [
        "❌ poly_lr: input 2 of 6: poly_lr(base_lr=0.0001, step=1, total_steps=100)",
        "   returned 9.9e-05, expected 9.90995e-05 (difference -9.95e-08, relative error 1.0e-03)"]


def test_a_wrong_tensor_names_the_output_and_where_it_differs(capsys):
    passed, out = run("paper_ia", lambda e, s: (e + (1 - torch.sigmoid(e)) * s, s), capsys)
    lines = out.splitlines()
    assert not passed and lines[0] == ("❌ paper_ia: input 1 of 2: paper_ia(e=float32 tensor (2, 4, 6, 6), "
                                       "s=float32 tensor (2, 4, 6, 6))")
    assert lines[1].startswith("   output 2 of 2 (S) differs: ") and "values differ by more than" in lines[1]
    assert lines[2].startswith("   largest absolute difference ") and " at index (" in lines[2]
    assert not any(line.startswith("hint:") for line in lines)  # a slip no hint knows: no hint


def test_compare_prints_two_numbers_that_read_differently():
    for got, want in ((9.9e-05, 9.90995e-05), (0.123456789, 0.123456), (1.0000001, 1.0000002), (2, 3)):
        problem, _ = compare(got, want)
        if problem is None:
            assert math.isclose(got, want, rel_tol=1e-6)
            continue
        returned, expected = problem[0].split(" (")[0].removeprefix("returned ").split(", expected ")
        assert returned != expected and float(returned) == pytest.approx(got, rel=1e-5)
    assert compare(None, 0.5)[0] == ["returned None, expected a number like 0.5"]
    assert compare([torch.zeros(2)], torch.zeros(3))[0][0].startswith("returned list")
    assert compare((torch.zeros(2), torch.ones(2)), (torch.zeros(2),), ("a",))[0] == [
        "returned 2 value(s), expected 1: a"]


def test_inputs_are_described_by_dtype_shape_and_value():
    assert describe(torch.zeros(1, 1, 8, 8)) == "float32 tensor (1, 1, 8, 8) all zeros"
    assert describe(np.zeros((32, 32), bool)) == "bool array (32, 32) all False"
    assert describe([torch.zeros(1, 3, 16, 16)] + [torch.randn(1, 3, 8, 8)] * 3) == (
        "[float32 tensor (1, 3, 16, 16) all zeros, 3 x float32 tensor (1, 3, 8, 8)]")
    assert describe(bl.make_config("tiny")) == "make_config('tiny')"
    assert describe((5, 7)) == "(5, 7)" and describe("zero_padding") == "'zero_padding'" and describe(None) == "None"


def test_every_exercise_has_a_wrong_answer_and_every_mistake_a_student_who_makes_it():
    registered = {(n, m.name) for n, e in exercises.EXERCISES.items() for m in e.mistakes}
    assert set(STUDENT_MISTAKES) == registered
    assert {n for n, _ in registered} == set(exercises.EXERCISES)  # a plausible wrong answer for each exercise


HINTED = list(STUDENT_MISTAKES.items()) + MORE_STUDENT_MISTAKES


@pytest.mark.parametrize("key, answer", HINTED, ids=[f"{n}-{m}-{i}" for i, ((n, m), _) in enumerate(HINTED)])
def test_each_hint_fires_on_its_mistake_and_no_other(key, answer, capsys):
    name, mistake = key
    hint = next(m.hint for m in exercises.EXERCISES[name].mistakes if m.name == mistake)
    passed, out = run(name, answer, capsys)
    assert not passed and out.startswith(f"❌ {name}: input "), out
    assert [line for line in out.splitlines() if line.startswith("hint:")] == [f"hint: {hint}"], out


@pytest.mark.parametrize("name, module, hint", STRUCTURAL, ids=lambda x: getattr(x, "__name__", None))
def test_structural_slips_name_the_tensor_that_does_not_fit(name, module, hint, capsys):
    passed, out = run(name, module, capsys)
    lines = out.splitlines()
    assert not passed and lines[0].startswith(f"❌ {name}: the library's weights do not fit your module, on input 1")
    assert "the library's, in creation order" in lines[2] and any(line.startswith("   > ") for line in lines)
    assert [line for line in lines if line.startswith("hint:")] == [line for line in lines if
                                                                  line.startswith(f"hint: {hint}")], out
    assert sum(line.startswith("hint:") for line in lines) == 1


def test_a_missing_batchnorm_lists_both_modules_tensors(capsys):
    _, out = run("build_pee", STRUCTURAL[0][1], capsys)
    assert out.splitlines()[1:7] == [
        "   your module creates 3 tensors (weights and BatchNorm buffers), the library's 8; they first differ at "
        "tensor 3:",
        "          the library's, in creation order   yours",
        "       1  squeeze.weight (4, 12, 1, 1)       squeeze.weight (4, 12, 1, 1)",
        "       2  fuse.1.weight (4, 1, 3, 3)         fuse.1.weight (4, 1, 3, 3)",
        "   >   3  fuse.2.weight (4,)                 fuse.2.weight (4, 4, 1, 1)",
        "       4  fuse.2.bias (4,)                   -"]


def test_another_right_training_step_passes(capsys):
    passed, out = run("train_step", good_step, capsys)
    assert passed and out.startswith("✅ train_step: matches banet_lite on 2 inputs, same start"), out


def test_module_weights_load_by_creation_order(capsys):
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

    assert run("build_aspp", RenamedASPP, capsys)[0]

    class NotAModule:
        def __init__(self, dim, stage):
            pass

    assert run("build_cff", NotAModule, capsys) == (
        False, "❌ build_cff: NotAModule(...) made a NotAModule, not an nn.Module\n")


def test_a_stub_module_is_not_done_yet(capsys):
    class Stub(torch.nn.Module):
        def __init__(self, dim, stage):
            raise NotImplementedError

    assert run("build_cff", Stub, capsys) == (
        False, "✏️ build_cff: not done yet (the stub raises NotImplementedError)\n")


def test_randomize_batchnorm_makes_batchnorm_far_from_the_identity():
    def bn_tensors(module):
        return [t.clone() for m in module.modules() if isinstance(m, torch.nn.BatchNorm2d)
                for t in (m.weight, m.bias, m.running_mean, m.running_var)]

    block = bl.layers.SeparableConv(8, 8)
    assert exercises.randomize_batchnorm(block, seed=3) is block
    weight, bias, mean, var = bn_tensors(block)
    assert 0.5 <= weight.min() and weight.max() <= 1.5 and 0.5 <= var.min() and var.max() <= 1.5
    assert bias.abs().max() > 0 and mean.abs().max() > 0 and (weight - 1).abs().max() > 0.05
    same = exercises.randomize_batchnorm(bl.layers.SeparableConv(8, 8), seed=3)
    assert all(torch.equal(a, b) for a, b in zip(bn_tensors(block), bn_tensors(same)))
    torch.manual_seed(0)  # seed=None: torch's global generator, as a notebook's seeded cell expects
    first = bn_tensors(exercises.randomize_batchnorm(bl.ASPP(4, 4, (1, 2))))
    torch.manual_seed(0)
    again = bn_tensors(exercises.randomize_batchnorm(bl.ASPP(4, 4, (1, 2))))
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    x = torch.randn(2, 4, 6, 6)
    bn = exercises.randomize_batchnorm(torch.nn.BatchNorm2d(4), seed=0).eval()
    assert not torch.allclose(bn(x), x, atol=1e-2)  # an eval-mode BatchNorm is no longer the identity


def test_copy_weights_by_name_or_creation_order_and_says_what_does_not_fit():
    source = exercises.randomize_batchnorm(bl.layers.SeparableConv(4, 4, pre_relu=True), seed=0)
    layers = {"relu": torch.nn.ReLU(), "depthwise": torch.nn.Conv2d(4, 4, 3, padding=1, groups=4, bias=False),
              "bn": torch.nn.BatchNorm2d(4), "pointwise": torch.nn.Conv2d(4, 4, 1, bias=False)}
    renamed = torch.nn.Sequential(OrderedDict(layers))
    assert exercises.copy_weights(source, renamed) == 7  # 2 conv weights, BatchNorm's 2 parameters and 3 buffers
    x = torch.randn(1, 4, 5, 5)
    torch.testing.assert_close(renamed.eval()(x), source.eval()(x))
    with pytest.raises(ValueError, match="a missing BatchNorm") as caught:
        exercises.copy_weights(source, torch.nn.Sequential(layers["depthwise"], layers["pointwise"]))
    assert isinstance(caught.value, exercises.WeightMisfit) and "first differ at tensor 2" in str(caught.value)


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


def test_stage_sizes_train_step_and_dice_answers_on_their_own_terms():
    with torch.device("meta"):
        feats = bl.build_model("paper").backbone(torch.zeros(1, 3, 100, 100))
    assert answers.stage_sizes(100, 8) == [f.shape[-1] for f in feats] == [25, 13, 13, 13]
    pred = np.zeros((8, 8), bool)
    assert answers.dice_jaccard(pred, pred) == (1.0, 1.0)
    model, images, masks, optimizer, loss_fn = answers.TrainStepCase("tiny", 0, 1e-3, None).build()
    before = [p.detach().clone() for p in model.parameters()]
    loss = answers.train_step(model, images, masks, optimizer, loss_fn)
    assert loss.shape == () and not loss.requires_grad and loss.item() > 0
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters()))  # Adam moves every parameter


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
