"""Theorem III.1 checked numerically (oecl_core.theorem): bounds on hand values, the Monte Carlo estimate, the grid
check under the reading that holds and the failures of the other readings, and the figure."""
import numpy as np
import pytest

from oecl_core import theorem as T

K = T.K_SE


def test_bounds_by_hand():
    # (5): Phi(1) - Phi(-1) = 0.682689...
    assert T.upper_bound(1.0, 1.0) == pytest.approx(0.682689492 ** 2, rel=1e-8)
    assert T.upper_bound(0.0, 2.0) == 0.0
    assert T.upper_bound(50.0, 1.0) == pytest.approx(1.0)
    # (6) with sigma_V = 0: (Phi(0.5) - Phi(-1.5))^2; with sigma_V^2 = 0.25, eps = 0.5 the factor is 1/2.
    bracket = 0.691462461 - 0.066807201
    assert T.lower_bound(1.0, 1.0, 0.0, 0.5) == pytest.approx(bracket ** 2, rel=1e-8)
    assert T.lower_bound(1.0, 1.0, 0.25, 0.5) == pytest.approx(0.5 * bracket ** 2, rel=1e-8)
    assert T.lower_bound(0.0, 1.0, 1.0, 0.5) == 0.0  # the limit at mu = 0
    # epsilon > 1 is allowed (the bracket stays positive) and (6) never exceeds (5)
    for mu in (0.1, 1.0, 3.0):
        for eps in (0.1, 0.5, 1.0, 2.0):
            assert 0 <= T.lower_bound(mu, 1.0, 0.3, eps) <= T.upper_bound(mu, 1.0)
    best, eps = T.best_lower_bound(1.0, 1.0, 0.25)
    assert best >= T.lower_bound(1.0, 1.0, 0.25, 0.5) and eps > 0


def test_conditions_and_readings():
    with pytest.raises(ValueError, match="mu"):
        T.upper_bound(-1.0, 1.0)
    with pytest.raises(ValueError, match="epsilon"):
        T.lower_bound(1.0, 1.0, 1.0, 0.0)
    with pytest.raises(ValueError, match="sigma"):
        T.upper_bound(1.0, 0.0)
    assert T.bound_symbols(4.0, 0.25) == (2.0, 0.25)  # the default reading: sigma = sqrt(Sigma_11), sigma_V^2 = tr
    assert T.bound_symbols(4.0, 0.25, "variance", "trace_squared") == (4.0, 0.0625)
    with pytest.raises(ValueError):
        T.bound_symbols(1.0, 1.0, "stdev")
    assert T.sigma_v_diagonal(2.0, 5).tolist() == [0.5] * 4
    decay = T.sigma_v_diagonal(2.0, 5, "decay")
    assert decay.sum() == pytest.approx(2.0) and decay[0] > decay[-1]


def test_mc_mu_zero_and_exact_case():
    est, se = T.mc_cosine(0.0, 1.0, 1.0, 8, n_pairs=20_000, seed=3)
    assert 0 < se < 0.01 and abs(est) < K * se  # E cos = 0 by symmetry
    # n = 1 (no Sigma_V): cos = sign(X_1) sign(Y_1), so E cos is exactly the upper bound (5) (with sigma = std)
    est, se = T.mc_cosine(0.5, 4.0, 0.0, 1, n_pairs=20_000, seed=3)
    assert abs(est - T.upper_bound(0.5, 2.0)) < K * se
    # seeded: the same call gives the same numbers
    assert T.mc_cosine(1.0, 1.0, 1.0, 4, n_pairs=1000, seed=5) == T.mc_cosine(1.0, 1.0, 1.0, 4, n_pairs=1000, seed=5)


def test_estimate_increases_with_mu():
    mus = [0.0, 0.25, 0.5, 1.0, 2.0, 4.0]
    line = T.mc_cosine_line(mus, 1.0, 1.0, 8, n_pairs=20_000, seed=0)
    assert np.all(np.diff(line.estimate) > 0)
    assert np.all(line.diff > K * line.diff_se)  # paired differences: significantly positive
    assert line.estimate[-1] > 0.9


def test_grid_holds_under_std_reading():
    rows = T.check_grid(mus=(0.0, 0.5, 1.0, 2.0), sigmas=(0.25, 1.0, 4.0), traces=(0.04, 1.0), dims=(2, 8),
                        epsilons=(0.25, 0.9, 1.5), n_pairs=20_000, seed=0)
    assert len(rows) == 4 * 3 * 2 * 2 * 3
    assert all(r["within_bounds"] for r in rows)
    assert all(r["increasing"] for r in rows)
    (summary,) = T.summarize(rows)
    assert (summary["sigma_reading"], summary["sigma_v_reading"]) == T.DEFAULT_READING
    assert summary["upper_violations"] == summary["lower_violations"] == summary["not_increasing"] == 0
    # the anisotropic Sigma_V with the same trace passes too
    rows = T.check_grid(mus=(0.5, 2.0), sigmas=(0.25, 4.0), traces=(0.25,), dims=(8,), epsilons=(0.5,),
                        n_pairs=20_000, spectrum="decay")
    assert all(r["within_bounds"] and r["increasing"] for r in rows)


def _row(mu, sigma11, tr, n, eps, reading):
    (row,) = T.check_grid(mus=(mu,), sigmas=(sigma11,), traces=(tr,), dims=(n,), epsilons=(eps,), n_pairs=40_000,
                          readings=(reading,))
    return row


def test_sigma_as_variance_fails_at_documented_points():
    # (5) with sigma = Sigma_11 = 4: the estimate (about 0.458) lies far above the bound (0.147)
    row = _row(2.0, 4.0, 0.04, 8, 0.5, ("variance", "trace"))
    assert row["upper"] == pytest.approx(0.1466, abs=1e-4) and row["estimate"] == pytest.approx(0.458, abs=0.01)
    assert not row["upper_ok"] and row["upper_margin_se"] < -50
    # ...while the same point is within both bounds under the std reading
    assert _row(2.0, 4.0, 0.04, 8, 0.5, T.DEFAULT_READING)["within_bounds"]
    # (6) with sigma = Sigma_11 = 0.25: the bound (0.430) lies above the estimate (about 0.393)
    row = _row(0.5, 0.25, 0.04, 32, 0.5, ("variance", "trace"))
    assert row["lower"] == pytest.approx(0.4302, abs=1e-4)
    assert not row["lower_ok"] and row["lower_margin_se"] < -K
    assert _row(0.5, 0.25, 0.04, 32, 0.5, T.DEFAULT_READING)["within_bounds"]


def test_sigma_v_as_trace_fails_at_documented_point():
    # (6) with sigma_V = tr Sigma_V = 0.04 (sigma_V^2 = 0.0016): the bound (0.851) lies above the estimate (0.783)
    row = _row(0.5, 0.04, 0.04, 32, 0.25, ("std", "trace_squared"))
    assert row["lower"] == pytest.approx(0.8512, abs=1e-4)
    assert not row["lower_ok"] and row["lower_margin_se"] < -50
    assert _row(0.5, 0.04, 0.04, 32, 0.25, T.DEFAULT_READING)["within_bounds"]


def test_plot_theorem_writes_files(tmp_path):
    paths = T.plot_theorem(tmp_path / "fig" / "theorem31", settings=((1.0, 1.0, 4), (4.0, 0.25, 2)),
                           mus=np.linspace(0, 2, 5), n_pairs=2000)
    assert sorted(p.suffix for p in paths) == [".pdf", ".png"]
    for p in paths:
        assert p.is_file() and p.stat().st_size > 1000
