"""End to end on a synthetic cache: split -> final (1 step) -> INT8 -> package writes model.json -> report
measures it into model.json + card."""

import json
import shutil

import pytest

from blastwatch_train import pipeline


def test_final_and_report_write_a_loadable_model(synthetic_cache, tmp_path):
    split = tmp_path / "split.json"
    work = tmp_path / "work"
    models = tmp_path / "models"
    pipeline.run_split(synthetic_cache, split, seed=0, threshold=10)
    pipeline.run_final(synthetic_cache, split, work, epochs=1, smoke=True)
    final = json.loads((work / "final.json").read_text())
    assert final["temperature"] > 0 and 0 <= final["threshold"] <= 0.5
    perturbed = tmp_path / "perturbed"
    shutil.copytree(synthetic_cache, perturbed / "blur1")
    pipeline.run_package(synthetic_cache, split, work, models, "test", 1.0, smoke=True)
    pipeline.run_report(synthetic_cache, split, work, models, perturbed, smoke=True)
    m = json.loads((models / "model.json").read_text())
    assert m["classes"] == ["Benign", "Early Pre-B", "Pre-B", "Pro-B"]
    assert m["folders"] == ["Benign", "Early", "Pre", "Pro"] and m["malignant"] == [False, True, True, True]
    assert m["output"] == "probabilities" and set(m["inputs"]) == {"original", "segmented"}
    for name in ("int8", "fp32"):
        f = m["files"][name]
        assert (models / f["path"]).stat().st_size == f["bytes"]
        assert pipeline.sha256_file(models / f["path"]) == f["sha256"]
    assert m["split"]["sha256"] == pipeline.sha256_file(split)
    date, suffix = m["version"].split("+")
    assert len(date) == 10 and suffix == m["files"]["int8"]["sha256"][:8]
    assert m["uncertain_band"][0] <= m["uncertain_band"][1]
    assert "blur1" in m["metrics"]["robustness_int8_accuracy"]
    # no stain variants: the recipe says the weights never saw another camera's shifts; a smoke run
    # anneals for one epoch when the recipe anneals at all
    assert m["training"]["camera_shifts"] is None
    assert m["training"]["anneal_epochs"] == (1 if pipeline.ANNEAL_EPOCHS > 0 else 0)
    card = (models / "MODEL_CARD.md").read_text()
    assert f"Version `{m['version']}`" in card
    assert "SMOKE RUN" in card and "Robustness" in card and "not a diagnosis" in card

    # The report measures the model as packaged and refitted: the threshold model.json holds now,
    # not the one training chose (scripts/fit-threshold.ts may have lowered it).
    m["threshold"], m["uncertain_band"] = 0.0123, [0.00615, 0.5]
    (models / "model.json").write_text(json.dumps(m))
    pipeline.run_report(synthetic_cache, split, work, models, None, smoke=True)
    measured = json.loads((work / "report.json").read_text())["eval"]["int8_test"]["malignant"]
    assert measured["threshold"] == 0.0123
    assert json.loads((models / "model.json").read_text())["version"] == m["version"]
    assert "threshold 0.0123" in (models / "MODEL_CARD.md").read_text()


def test_the_report_refuses_a_models_folder_packaged_from_other_files(synthetic_cache, tmp_path):
    split, work, models = tmp_path / "split.json", tmp_path / "work", tmp_path / "models"
    pipeline.run_split(synthetic_cache, split, seed=0, threshold=10)
    pipeline.run_final(synthetic_cache, split, work, epochs=1, smoke=True)
    pipeline.run_package(synthetic_cache, split, work, models, "test", 1.0, smoke=True)
    m = json.loads((models / "model.json").read_text())
    m["files"]["int8"]["sha256"] = "0" * 64
    (models / "model.json").write_text(json.dumps(m))
    with pytest.raises(ValueError, match="run `package` first"):
        pipeline.run_report(synthetic_cache, split, work, models, None, smoke=True)


def test_model_version_is_the_date_and_the_int8_hash_prefix():
    import time

    when = time.strptime("2026-11-27", "%Y-%m-%d")
    assert pipeline.model_version("3f2a9c1d" + "0" * 56, when) == "2026.11.27+3f2a9c1d"
    assert pipeline.model_version("58f4004b" + "e" * 56, when) != pipeline.model_version("3f2a9c1d" + "0" * 56, when)


def test_a_second_model_of_the_day_counts_up_after_the_date():
    import time

    when = time.strptime("2026-12-05", "%Y-%m-%d")
    sha = "44c46939" + "0" * 56
    assert pipeline.model_version(sha, when, previous="2026.12.04+44c46939") == "2026.12.05+44c46939"
    assert pipeline.model_version(sha, when, previous="2026.12.05+44c46939") == "2026.12.05.2+44c46939"
    assert pipeline.model_version(sha, when, previous="2026.12.05.2+44c46939") == "2026.12.05.3+44c46939"
    assert pipeline.model_version(sha, when, previous="2026.12.05.9+58f4004b") == "2026.12.05.10+44c46939"
    assert pipeline.model_version(sha, when, previous="not a version") == "2026.12.05+44c46939"


def test_regenerating_the_card_keeps_the_sections_other_commands_measured():
    from blastwatch_train import report

    old = (
        "# blastwatch model card\n\n## Robustness\n\nold table\n\n"
        "## Where the model applies\n\n### Colour constancy\n\nmeasured by robustness.ts\n\n"
        "### The out-of-domain gate\n\nmeasured by gate-report.ts\n\n## Limits\n\nold limits\n\n"
        "<!-- specimen-screening: written by scripts/specimen-sim.ts --write-card -->\n"
        "## Specimen-level screening\n\nk = 5\n<!-- /specimen-screening -->\n"
    )
    applies, specimen = report.kept_sections(old)
    assert applies.startswith("## Where the model applies") and "gate-report.ts" in applies
    assert "## Limits" not in applies and "old limits" not in applies
    assert specimen.startswith("<!-- specimen-screening") and specimen.rstrip().endswith("-->")
    assert "k = 5" in specimen
    assert report.kept_sections("# card\n\n## Limits\n") == ("", "")


def test_annealing_goes_on_from_the_main_stage_and_reuses_it(synthetic_cache, tmp_path):
    import pytest
    import torch

    from blastwatch_train.train import load_checkpoint

    split = tmp_path / "split.json"
    work = tmp_path / "work"
    pipeline.run_split(synthetic_cache, split, seed=0, threshold=10)
    one_epoch = pipeline.Annealing(epochs=1)
    pipeline.run_final(synthetic_cache, split, work, epochs=1, smoke=True, annealing=one_epoch)
    main, main_info = load_checkpoint(work / "main.pt")
    final, info = load_checkpoint(work / "final.pt")
    # the annealing stage ran from the main stage's weights, on originals alone, at a lower rate
    assert info["anneal"]["steps"] == 1 and info["anneal"]["config"]["camera_augment"] is None
    assert info["anneal"]["config"]["original_share"] == 1.0
    assert info["anneal"]["config"]["lr"] == pytest.approx(main_info["config"]["lr"] * pipeline.ANNEAL_LR_FACTOR)
    changed = [k for k, v in main.state_dict().items() if v.is_floating_point() and not torch.equal(v, final.state_dict()[k])]
    assert changed, "annealing left every weight as the main stage had it"
    # reusing main.pt: the same main weights go in, so the same final weights come out
    pipeline.run_final(synthetic_cache, split, work, epochs=1, smoke=True, annealing=one_epoch, reuse_main=True)
    again, _ = load_checkpoint(work / "final.pt")
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in final.state_dict().items())
    # a main stage trained with another recipe is refused, not silently reused
    with pytest.raises(ValueError, match="another config"):
        pipeline.run_final(synthetic_cache, split, work, epochs=1, smoke=True, annealing=one_epoch, width=0.5,
                           reuse_main=True)
