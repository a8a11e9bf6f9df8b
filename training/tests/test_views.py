"""Test-time views: the same definition as src/infer/views.ts, and calibration over their average."""

import numpy as np

from blastwatch_train.evaluate import calibrate_probs, fit_temperature, softmax, view


def test_each_view_is_the_mirrors_then_the_transpose():
    a = np.arange(9, dtype=np.float32).reshape(1, 3, 3) + 1  # [[1,2,3],[4,5,6],[7,8,9]]
    assert view(a, 0).tolist() == a.tolist()
    assert view(a, 1)[0].tolist() == [[3, 2, 1], [6, 5, 4], [9, 8, 7]]
    assert view(a, 2)[0].tolist() == [[7, 8, 9], [4, 5, 6], [1, 2, 3]]
    assert view(a, 4)[0].tolist() == [[1, 4, 7], [2, 5, 8], [3, 6, 9]]
    # the example written out in test/infer/views.test.ts: mirrored left-right, then transposed
    assert view(a, 5)[0].flatten().tolist() == [3, 6, 9, 2, 5, 8, 1, 4, 7]
    assert len({view(a, k).tobytes() for k in range(8)}) == 8


def test_views_act_on_the_last_two_axes_of_a_batch():
    batch = np.random.default_rng(0).random((2, 3, 5, 5)).astype(np.float32)
    for k in range(8):
        v = view(batch, k)
        assert v.shape == batch.shape and v.flags["C_CONTIGUOUS"]
        for i in range(2):
            assert np.array_equal(v[i], view(batch[i], k))


def test_calibration_averages_the_calibrated_views():
    rng = np.random.default_rng(1)
    p = softmax(rng.normal(size=(8, 5, 4)).reshape(40, 4)).reshape(8, 5, 4)
    t = 0.6
    expected = np.mean([calibrate_probs(p[v], t) for v in range(8)], axis=0)
    assert np.allclose(calibrate_probs(p, t), expected)
    assert np.allclose(calibrate_probs(p, t).sum(axis=1), 1)
    # one view is the plain calibration
    assert np.allclose(calibrate_probs(p[:1], t), calibrate_probs(p[0], t))


def test_the_temperature_is_fitted_on_the_views_average():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 4, 400)
    base = rng.normal(size=(400, 4)) + 3 * np.eye(4)[y]
    logits = np.stack([base + rng.normal(scale=2.0, size=base.shape) for _ in range(8)])
    t_views = fit_temperature(logits, y)
    t_first = fit_temperature(logits[0], y)
    # averaging the noisy views makes the average less confident than each view: a lower
    # temperature sharpens it back
    assert t_views < t_first

    def nll(t: float) -> float:
        p = np.mean([softmax(v, t) for v in logits], axis=0)
        return float(-np.log(p[np.arange(400), y]).mean())

    assert nll(t_views) <= min(nll(t_views * 1.1), nll(t_views / 1.1))
