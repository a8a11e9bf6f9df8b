import numpy as np
import onnx
import pytest
import torch

from blastwatch_train.augment import AugmentConfig, augment_pair, gaussian_blur_batch, hue_rotation
from blastwatch_train.evaluate import (
    OrtModel, calibrate_probs, choose_threshold, ece, fit_temperature, metrics, softmax,
)
from blastwatch_train.export import export_onnx
from blastwatch_train.models import BACKBONES, VARIANTS, BlastNet


def _pair(n=4, size=112):
    g = torch.Generator().manual_seed(1)
    o = torch.rand(n, 3, size, size, generator=g) * 0.5 + 0.3
    mask = torch.zeros(n, 1, size, size)
    mask[:, :, 30:70, 30:70] = 1
    return o, o * mask


def test_augment_is_seeded_and_keeps_background_black():
    o, s = _pair()
    a1 = augment_pair(o, s, AugmentConfig(), torch.Generator().manual_seed(7))
    a2 = augment_pair(o, s, AugmentConfig(), torch.Generator().manual_seed(7))
    a3 = augment_pair(o, s, AugmentConfig(), torch.Generator().manual_seed(8))
    assert torch.equal(a1[0], a2[0]) and torch.equal(a1[1], a2[1])
    assert not torch.equal(a1[0], a3[0])
    ao, as_ = a1
    assert float(ao.min()) >= 0 and float(ao.max()) <= 1
    fg = as_.amax(1) > 0
    assert int(fg.sum()) == 4 * 40 * 40  # mask is moved by flips/rotations but never grows
    # where segmented is foreground it equals the augmented original (same photometric change)
    assert torch.allclose(as_.permute(0, 2, 3, 1)[fg], ao.permute(0, 2, 3, 1)[fg])


def test_augment_changes_colour_without_geometry():
    o, s = _pair()
    cfg = AugmentConfig(geometric=False, blur_prob=0, jpeg_prob=0)
    ao, _ = augment_pair(o, s, cfg, torch.Generator().manual_seed(3))
    assert (ao - o).abs().mean() > 0.005


def test_hue_rotation_keeps_grey_and_inverts():
    m = hue_rotation(torch.tensor([10.0, -10.0]))
    grey = torch.full((3, 1), 0.5)
    assert torch.allclose(m[0] @ grey, grey, atol=1e-5)
    assert torch.allclose(m[0] @ m[1], torch.eye(3), atol=1e-5)


def test_batched_blur_preserves_mean_and_smooths():
    x = torch.rand(2, 3, 32, 32)
    y = gaussian_blur_batch(x, torch.tensor([1.0, 2.0]))
    assert y.shape == x.shape
    assert y.std() < x.std()


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_variant_takes_both_inputs(variant):
    net = BlastNet(variant, "mobilenet_v2", 0.25).eval()
    o, s = torch.rand(2, 3, 224, 224), torch.rand(2, 3, 224, 224)
    out = net(o, s)
    assert out.shape == (2, 4)
    # the downsampled training path is the same function as the exported one
    assert torch.allclose(net.forward_downsampled(*net.downsample_inputs(o, s)), out)


@pytest.mark.parametrize("backbone", BACKBONES)
def test_backbones_build_with_six_channel_stem(backbone):
    net = BlastNet("early", backbone, 0.5 if backbone == "mnasnet" else (1.0 if backbone == "efficientnet_b0" else 0.25))
    assert net(torch.rand(1, 3, 224, 224), torch.rand(1, 3, 224, 224)).shape == (1, 4)


def test_onnx_export_has_interface_and_matches_torch(tmp_path):
    torch.manual_seed(0)
    for variant in ("original", "early"):
        net = BlastNet(variant, "mobilenet_v2", 0.25).eval()
        path = export_onnx(net, tmp_path / f"{variant}.onnx")
        model = onnx.load(str(path))
        assert sorted(i.name for i in model.graph.input) == ["original", "segmented"]
        assert [o.name for o in model.graph.output] == ["probabilities"]
        o, s = torch.rand(3, 3, 224, 224), torch.rand(3, 3, 224, 224)
        p = OrtModel(path).run(o.numpy(), s.numpy())
        assert p.shape == (3, 4)
        np.testing.assert_allclose(p.sum(1), 1, atol=1e-5)
        np.testing.assert_allclose(p, torch.softmax(net(o, s), 1).detach().numpy(), atol=1e-4)


def test_resnet_export_folds_the_input_pool_into_the_stem_exactly(tmp_path):
    torch.manual_seed(0)
    net = BlastNet("early", "resnet18", 0.25).eval()
    # trained-looking BatchNorms: an untouched one (gamma 0 in the residual branch) would hide
    # an error in every block
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.weight.data.uniform_(0.5, 1.5)
            m.running_mean.uniform_(-0.2, 0.2)
    path = export_onnx(net, tmp_path / "resnet.onnx")
    ops = [n.op_type for n in onnx.load(str(path)).graph.node]
    assert "AveragePool" not in ops and "Sub" not in ops and "Div" not in ops
    assert ops.index("Conv") > ops.index("Concat")  # the graph starts with concat -> one convolution
    assert isinstance(net.downsample, torch.nn.AvgPool2d)  # export works on a copy
    o, s = torch.rand(3, 3, 224, 224), torch.rand(3, 3, 224, 224)
    p = OrtModel(path).run(o.numpy(), s.numpy())
    np.testing.assert_allclose(p, torch.softmax(net(o, s), 1).detach().numpy(), atol=1e-5)


def test_mobile_nets_keep_pool_and_normalisation_in_the_graph(tmp_path):
    net = BlastNet("early", "mobilenet_v2", 0.25).eval()
    ops = [n.op_type for n in onnx.load(str(export_onnx(net, tmp_path / "m.onnx"))).graph.node]
    assert "AveragePool" in ops and "Sub" in ops


def test_metrics_confusion_and_binary():
    y = np.array([0, 0, 1, 2, 3, 3])
    p = np.eye(4)[[0, 1, 1, 2, 3, 0]]
    m = metrics(y, p, ["a", "b", "c", "d"])
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["confusion"][0] == [1, 1, 0, 0] and m["confusion"][3] == [1, 0, 0, 1]
    assert m["malignant"]["sensitivity"] == pytest.approx(3 / 4)
    assert m["malignant"]["specificity"] == pytest.approx(1 / 2)


def test_macro_f1_averages_the_classes_present_or_predicted():
    # no class-1 or class-3 image and none predicted: they do not count as F1 0
    m = metrics(np.array([0, 0, 2]), np.eye(4)[[0, 0, 2]], ["a", "b", "c", "d"])
    assert m["macro_f1"] == pytest.approx(1.0)
    # a class predicted but never true counts with F1 0 (the TypeScript evaluation does the same)
    m = metrics(np.array([0, 2]), np.eye(4)[[0, 3]], ["a", "b", "c", "d"])
    assert m["macro_f1"] == pytest.approx(1 / 3)


def test_temperature_and_threshold():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, (2000, 4))
    # labels drawn from softmax(logits): those logits are calibrated by construction
    cum = softmax(logits).cumsum(1)
    y = (rng.random((2000, 1)) > cum).sum(1).clip(0, 3)
    over = logits * 4  # an over-confident model
    t = fit_temperature(over, y)
    assert 3.0 < t < 5.0
    assert ece(y, softmax(over, t)) < ece(y, softmax(over))
    p = softmax(over)
    np.testing.assert_allclose(calibrate_probs(p, t), softmax(over, t), atol=1e-6)
    p_ball = 1 - softmax(over, t)[:, 0]
    thr = choose_threshold(p_ball, y > 0, 0.995)
    assert (p_ball[y > 0] >= thr).mean() >= 0.995


def test_sample_sources_honours_the_original_share_and_is_seeded():
    from blastwatch_train.train import sample_sources

    n = 20000
    half = sample_sources(n, 4, 0.5, torch.Generator().manual_seed(0))
    assert abs((half == 0).mean() - 0.5) < 0.02
    counts = np.bincount(half, minlength=5)[1:]
    assert counts.min() > 0.9 * counts.mean() and set(np.unique(half)) == {0, 1, 2, 3, 4}
    uniform = sample_sources(n, 4, None, torch.Generator().manual_seed(0))
    assert abs((uniform == 0).mean() - 0.2) < 0.02
    assert (sample_sources(n, 4, 1.0, torch.Generator().manual_seed(0)) == 0).all()
    again = sample_sources(n, 4, 0.5, torch.Generator().manual_seed(0))
    assert np.array_equal(half, again)
