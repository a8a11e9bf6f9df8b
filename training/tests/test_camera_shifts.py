"""The shifts of another camera in training augmentation: white balance, colour temperature,
gamma, hue, saturation and magnification, seeded and applied to both inputs alike."""
import pytest
import torch

from blastwatch_train.augment import CAMERA_SHIFTS, AugmentConfig, augment_pair, colour_affine, magnify

# only the camera part: no exposure/contrast/saturation/hue/gamma, no blur/JPEG, no flips
_OFF = dict(brightness=0.0, contrast=0.0, gamma=0.0, saturation=0.0, hue_degrees=0.0,
            blur_prob=0.0, jpeg_prob=0.0, geometric=False)


def _grey(n=64, size=16, level=0.5):
    o = torch.full((n, 3, size, size), level)
    return o, o.clone()


def test_channel_gains_scale_each_channel_within_the_range():
    o, s = _grey()
    cfg = AugmentConfig(**_OFF, channel_gain=0.15)
    ao, _ = augment_pair(o, s, cfg, torch.Generator().manual_seed(0))
    ratio = ao.mean(dim=(2, 3)) / 0.5  # per image, per channel
    assert float(ratio.min()) >= 0.85 - 1e-5 and float(ratio.max()) <= 1.15 + 1e-5
    # independent per channel: a grey image gets a colour cast, not just an exposure change
    assert float((ratio[:, 0] - ratio[:, 2]).abs().max()) > 0.1
    assert float(ratio.std()) > 0.05  # the range is used, not a constant


def test_temperature_moves_red_and_blue_oppositely_and_leaves_green():
    x = torch.full((200, 3, 4, 4), 0.5)
    m, b = colour_affine(x, AugmentConfig(**_OFF, temperature=0.1), torch.Generator().manual_seed(1))
    gains = torch.diagonal(m, dim1=1, dim2=2)
    assert torch.allclose(gains[:, 1], torch.ones(200))
    assert torch.allclose(gains[:, 0] - 1, -(gains[:, 2] - 1), atol=1e-6)  # warm: red up, blue down
    assert float(gains[:, 0].max()) > 1.08 and float(gains[:, 0].min()) < 0.92  # warm and cool both drawn
    assert float(gains[:, 0].max()) <= 1.1 + 1e-6
    assert torch.count_nonzero(b) == 0


def test_camera_shifts_are_seeded_and_keep_segmented_equal_to_original_under_the_mask():
    g = torch.Generator().manual_seed(3)
    o = torch.rand(6, 3, 56, 56, generator=g) * 0.6 + 0.2
    mask = torch.zeros(6, 1, 56, 56)
    mask[:, :, 14:42, 14:42] = 1
    cfg = AugmentConfig(**CAMERA_SHIFTS)
    a1 = augment_pair(o, o * mask, cfg, torch.Generator().manual_seed(5))
    a2 = augment_pair(o, o * mask, cfg, torch.Generator().manual_seed(5))
    a3 = augment_pair(o, o * mask, cfg, torch.Generator().manual_seed(6))
    assert torch.equal(a1[0], a2[0]) and torch.equal(a1[1], a2[1])
    assert not torch.equal(a1[0], a3[0])
    ao, as_ = a1
    assert float(ao.min()) >= 0 and float(ao.max()) <= 1
    # segmented = augmented original x (zoomed, soft at its edge) mask: never brighter than the
    # original, equal inside the cell whatever the zoom, black far outside it
    assert bool((as_ <= ao + 1e-6).all())
    assert torch.allclose(as_[..., 20:36, 20:36], ao[..., 20:36, 20:36])
    assert float(as_[..., :4, :4].abs().max()) == 0.0


def test_camera_shifts_cover_the_checked_ranges():
    cfg = AugmentConfig(**CAMERA_SHIFTS)
    assert cfg.channel_gain >= 0.15 and cfg.temperature >= 0.1
    assert 1 - cfg.gamma <= 0.8 and 1 + cfg.gamma >= 1.25
    assert cfg.hue_degrees >= 15 and 1 - cfg.saturation <= 0.7 and 1 + cfg.saturation >= 1.3
    assert cfg.magnification[0] <= 0.75 and cfg.magnification[1] >= 1.25


@pytest.mark.parametrize("factor", [0.75, 1.25])
def test_magnify_zooms_both_inputs_alike_about_the_centre(factor):
    size = 64
    o = torch.zeros(1, 3, size, size)
    o[..., 24:40, 24:40] = 1.0  # a 16-px square cell in the centre
    mask = (o[:, :1] > 0).float()
    zo, zm = magnify([o, mask], [factor])
    assert zo.shape == o.shape and zm.shape == mask.shape
    area = float((zo[0, 0] > 0.5).sum())
    assert area == pytest.approx(16 * 16 * factor ** 2, rel=0.2)  # the cell grows or shrinks with the lens
    # the mask moves with the image
    assert torch.equal(zo[0, 0] > 0.5, zm[0, 0] > 0.5)
    ys, xs = torch.nonzero(zo[0, 0] > 0.5, as_tuple=True)
    assert float(ys.float().mean()) == pytest.approx(31.5, abs=1.0)
    assert float(xs.float().mean()) == pytest.approx(31.5, abs=1.0)


def test_magnify_by_one_is_the_identity():
    x = torch.rand(2, 3, 20, 20)
    (y,) = magnify([x], [1.0, 1.0])
    assert torch.equal(x, y)


def test_the_report_carries_the_caches_colour_normalisation_into_model_json(tmp_path):
    """The daemon normalises as training did only if model.json names the cache's normalisation."""
    import json
    import shutil

    from blastwatch_train import CLASS_FOLDERS, pipeline
    from blastwatch_train.cache import write_cache
    from conftest import synthetic_images

    colour = {"method": "background-gains", "background_share": 0.05, "background_low": [247, 254, 246],
              "background_high": [255, 255, 254.5], "max_gain": 1.5, "reference": {"images": 36}}
    o, s, items = synthetic_images(12)
    cache = tmp_path / "cache"
    write_cache(cache, o, s, items, CLASS_FOLDERS, {"segmentation": {"k": 7, "threshold": 141}, "colour": colour})
    split, work, models = tmp_path / "split.json", tmp_path / "work", tmp_path / "models"
    pipeline.run_split(cache, split, seed=0, threshold=10)
    pipeline.run_final(cache, split, work, epochs=1, smoke=True)
    shutil.copytree(cache, tmp_path / "perturbed" / "blur1")
    pipeline.run_package(cache, split, work, models, "test", 1.0, smoke=True)
    pipeline.run_report(cache, split, work, models, tmp_path / "perturbed", smoke=True)
    m = json.loads((models / "model.json").read_text())
    assert m["preprocessing"]["colour"] == colour


def test_stain_copies_with_another_colour_normalisation_are_refused(tmp_path):
    from blastwatch_train import CLASS_FOLDERS
    from blastwatch_train.cache import CacheError, StainVariants, load_cache, write_cache
    from conftest import synthetic_images

    o, s, items = synthetic_images(2)
    colour = {"method": "background-gains", "background_share": 0.05, "background_low": [247, 254, 246],
              "background_high": [255, 255, 254.5], "max_gain": 1.5}
    write_cache(tmp_path / "base", o, s, items, CLASS_FOLDERS, {"colour": colour})
    write_cache(tmp_path / "same", o, s, items, CLASS_FOLDERS, {"colour": colour})
    write_cache(tmp_path / "raw", o, s, items, CLASS_FOLDERS)
    base = load_cache(tmp_path / "base")
    assert len(StainVariants(base, [load_cache(tmp_path / "same")])) == 1
    with pytest.raises(CacheError, match="colour normalisation differs"):
        StainVariants(base, [load_cache(tmp_path / "raw")])


def test_mixed_augmentation_shifts_only_the_chosen_share_of_the_batch():
    from blastwatch_train.augment import augment_mixed

    o, s = _grey(n=200)
    s[:, :, :8] = 0  # half of each field is background in the segmented input
    plain = AugmentConfig(**_OFF)  # leaves a grey field exactly as it is
    shifted = AugmentConfig(**_OFF, channel_gain=0.15)
    ao, aseg = augment_mixed(o, s, plain, shifted, 0.3, torch.Generator().manual_seed(1))
    changed = (ao - o).abs().amax(dim=(1, 2, 3)) > 1e-3
    assert 0.2 < float(changed.float().mean()) < 0.4  # about the share, neither none nor all
    # both inputs change alike: segmented = augmented original x mask, wherever it came from
    mask = (s.amax(dim=1, keepdim=True) > 0).float()
    assert torch.allclose(aseg, ao * mask)
    # the same seed gives the same choice and the same shifts
    again, _ = augment_mixed(o, s, plain, shifted, 0.3, torch.Generator().manual_seed(1))
    assert torch.equal(ao, again)
    # the ends of the range are the single-config augmentation, drawing nothing more
    for share, cfg in ((0.0, plain), (1.0, shifted)):
        one, _ = augment_mixed(o, s, plain, shifted, share, torch.Generator().manual_seed(2))
        ref, _ = augment_pair(o, s, cfg, torch.Generator().manual_seed(2))
        assert torch.equal(one, ref)


def test_annealing_keeps_the_zoom_only_when_asked():
    from blastwatch_train import pipeline

    cfg = pipeline._train_config("early", "mobilenet_v2", 0.5, 80, False)
    plain = pipeline._anneal(cfg, pipeline.Annealing(epochs=10, magnification=0), False)
    assert plain.augment == cfg.augment and plain.camera_augment is None and plain.original_share == 1.0
    zoomed = pipeline._anneal(cfg, pipeline.Annealing(epochs=10, magnification=0.5), False)
    assert zoomed.augment.magnification == CAMERA_SHIFTS["magnification"]
    assert zoomed.augment.magnification_prob == 0.5
    # only the zoom changes: the colour jitter of the annealing stays as it was
    assert zoomed.augment.brightness == cfg.augment.brightness and zoomed.augment.hue_degrees == cfg.augment.hue_degrees
    assert cfg.augment.magnification_prob == 0.0, "the main stage's config is not changed"


def test_annealing_keeps_another_camera_only_when_asked():
    from dataclasses import replace

    from blastwatch_train import pipeline

    cfg = replace(pipeline._train_config("early", "mobilenet_v2", 0.5, 80, False),
                  camera_augment=pipeline.CAMERA_AUGMENT, camera_share=pipeline.CAMERA_SHARE)
    plain = pipeline._anneal(cfg, pipeline.Annealing(epochs=10, magnification=0), False)
    assert plain.camera_augment is None and plain.camera_share == 0.0
    shifted = pipeline._anneal(cfg, pipeline.Annealing(epochs=10, magnification=0, camera=0.25), False)
    assert shifted.camera_augment == pipeline.CAMERA_AUGMENT and shifted.camera_share == 0.25
    # still the annealing: originals only (no re-stained copies), a tenth of the rate, no warm-up
    assert shifted.original_share == 1.0 and shifted.lr == cfg.lr * pipeline.ANNEAL_LR_FACTOR
    assert shifted.warmup_epochs == 0.0
    # a main stage without camera shifts has none to keep
    bare = pipeline._train_config("early", "mobilenet_v2", 0.5, 80, False)
    with pytest.raises(ValueError, match="only when the main stage had them"):
        pipeline._anneal(bare, pipeline.Annealing(epochs=10, magnification=0, camera=0.25), False)


def test_annealing_draws_re_stained_copies_only_when_asked():
    from blastwatch_train import pipeline

    cfg = pipeline._train_config("early", "mobilenet_v2", 0.5, 80, False)
    cfg.stain_variants = 4
    assert pipeline._anneal(cfg, pipeline.Annealing(epochs=10, magnification=0), False).original_share == 1.0
    mixed = pipeline._anneal(cfg, pipeline.Annealing(epochs=10, magnification=0, variants=0.15), False)
    assert mixed.original_share == pytest.approx(0.85) and mixed.stain_variants == 4
    # only the source of the samples changes: no camera shifts, a tenth of the rate
    assert mixed.camera_augment is None and mixed.lr == cfg.lr * pipeline.ANNEAL_LR_FACTOR
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        pipeline._anneal(cfg, pipeline.Annealing(epochs=10, magnification=0, variants=1.0), False)
    bare = pipeline._train_config("early", "mobilenet_v2", 0.5, 80, False)
    with pytest.raises(ValueError, match="only when the main stage had them"):
        pipeline._anneal(bare, pipeline.Annealing(epochs=10, magnification=0, variants=0.15), False)


def test_overexposure_brightens_the_drawn_share_and_clips_at_white():
    g = torch.Generator().manual_seed(4)
    o = torch.rand(400, 3, 8, 8, generator=g) * 0.5 + 0.5  # bright fields: much of them can clip
    cfg = AugmentConfig(**_OFF, overexposure=0.25, overexposure_prob=0.5)
    ao, _ = augment_pair(o, o.clone(), cfg, torch.Generator().manual_seed(0))
    assert float(ao.max()) <= 1.0
    changed = ((ao - o).abs() > 1e-4).flatten(1).any(1)  # the identity colour map rounds a little
    assert 0.4 < float(changed.float().mean()) < 0.6  # about half the images, the rest untouched
    # a changed image is its original x one factor in (1, 1.25], clipped at white
    unclipped = (ao < 1) & changed.view(-1, 1, 1, 1)
    factor = ao[unclipped] / o[unclipped]
    assert float(factor.min()) >= 1.0 - 1e-6 and float(factor.max()) <= 1.25 + 1e-6
    assert float((ao[changed] == 1.0).float().mean()) > 0.05  # highlights did clip
    # off by default, and then it draws nothing: a recipe without it gives the same samples
    plain = AugmentConfig(**_OFF)
    assert plain.overexposure_prob == 0.0
    base = AugmentConfig(**{**_OFF, "brightness": 0.1, "hue_degrees": 10.0})
    with_zero = AugmentConfig(**{**_OFF, "brightness": 0.1, "hue_degrees": 10.0}, overexposure=0.25)
    a, _ = augment_pair(o, o.clone(), base, torch.Generator().manual_seed(7))
    b, _ = augment_pair(o, o.clone(), with_zero, torch.Generator().manual_seed(7))
    assert torch.equal(a, b)


def test_annealing_overexposes_only_when_asked_and_the_recipe_says_so():
    from blastwatch_train import pipeline

    cfg = pipeline._train_config("early", "mobilenet_v2", 0.5, 80, False)
    plain = pipeline._anneal(cfg, pipeline.Annealing(epochs=10, magnification=0), False)
    assert plain.augment.overexposure_prob == 0.0
    bright = pipeline._anneal(cfg, pipeline.Annealing(epochs=10, magnification=0, overexposure=0.25), False)
    assert bright.augment.overexposure_prob == 0.25
    assert 1 + bright.augment.overexposure == pytest.approx(pipeline.OVEREXPOSURE_MAX)
    assert cfg.augment.overexposure_prob == 0.0, "the main stage's config is not changed"
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        pipeline._anneal(cfg, pipeline.Annealing(epochs=10, magnification=0, overexposure=1.5), False)
    from dataclasses import asdict

    info = {"config": asdict(cfg), "anneal": {"config": asdict(bright)}}
    assert pipeline._recipe(info)["overexposure"] == {"share": 0.25, "max": pipeline.OVEREXPOSURE_MAX}
    assert "overexposure" not in pipeline._recipe({"config": asdict(cfg)})


def test_a_main_stage_saved_before_new_augmentation_fields_still_matches_its_recipe():
    from dataclasses import asdict

    from blastwatch_train import pipeline

    cfg = pipeline._train_config("early", "mobilenet_v2", 0.5, 80, False)
    saved = asdict(cfg)
    for field in ("overexposure", "overexposure_prob"):
        del saved["augment"][field]
    assert pipeline._with_new_defaults(saved) == asdict(cfg)
    saved["augment"]["brightness"] = 0.3  # any other difference still counts
    assert pipeline._with_new_defaults(saved) != asdict(cfg)
