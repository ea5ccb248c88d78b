"""Theorem III.1 of the paper, checked numerically.

The theorem. X, Y are i.i.d. N(mu e_1, Sigma) in R^n with mu >= 0 and Sigma = diag(sigma, Sigma_V) (the paper
writes the (1,1) entry of the covariance as ``sigma``). Then E<X/|X|, Y/|Y|> increases with mu and, for every
epsilon > 0,

    (5)  E cos(X, Y) <= (Phi(mu/sigma) - Phi(-mu/sigma))^2
    (6)  E cos(X, Y) >= 1 / (1 + sigma_V^2 / (epsilon^2 mu^2))
                         * (Phi((1-epsilon) mu/sigma) - Phi(-(1+epsilon) mu/sigma))^2

with sigma_V^2 = tr(Sigma_V) and Phi the standard normal CDF. At mu = 0 both sides of (6) are 0 (the factor
tends to 0, the bracket is Phi(0) - Phi(0) = 0) and the expectation is 0 by symmetry. Every epsilon > 0 is
allowed, epsilon >= 1 included (the bracket stays positive), but the paper's remark that the right-hand side of (6)
tends to 1 as mu -> infinity holds only for epsilon < 1 (for epsilon = 1 the limit is 1/4, for epsilon > 1 it is 0);
``best_lower_bound`` takes the best epsilon on a grid.

Which ``sigma``? The statement puts ``sigma`` in the covariance matrix, i.e. it is the variance of X_1, while the
bounds divide mu by it as one divides by a standard deviation; the proof (App. A) integrates against
exp(-(u - mu)^2 / 2 sigma^2) / (sigma sqrt(2 pi)), i.e. it treats sigma as the standard deviation. Likewise
sigma_V is defined through sigma_V^2 = tr(Sigma_V) (a standard-deviation-like quantity), but a reader could plug
tr(Sigma_V) itself in for sigma_V. This module keeps the distribution fixed by its covariance entries
(``sigma11`` = Sigma_11, ``tr_sigma_v`` = tr Sigma_V) and evaluates the bounds under either reading:

    sigma_reading   "std"       sigma = sqrt(Sigma_11)      (the proof's reading; default)
                    "variance"  sigma = Sigma_11            (the statement's matrix taken literally)
    sigma_v_reading "trace"     sigma_V^2 = tr(Sigma_V)     (the paper's definition; default)
                    "trace_squared"  sigma_V = tr(Sigma_V), i.e. sigma_V^2 = tr(Sigma_V)^2

Finding (Monte Carlo, ``check_grid`` on ``DEFAULT_GRID``: 288 points, 1152 rows with epsilon, 400 000 pairs per
point, seed 0, tolerance 4 standard errors; docs/theorem.md has the full numbers):

* sigma = standard deviation, sigma_V^2 = tr(Sigma_V): both bounds and the monotonicity in mu hold at every
  grid point (0 violations; the worst margins are -1.7 standard errors for (5) and -1.9 for (6) at mu = 0, where
  both bounds equal the true value 0; for mu > 0, -0.35 and -0.13 standard errors, both at mu = 0.25,
  Sigma_11 = 4, tr Sigma_V = 0.04, where (5) is tight to Monte Carlo precision (it is exact for Sigma_V = 0) and
  the estimate is small and noisy: 4 000 000 pairs there put it within noise of (5) and 4.9 standard errors above
  (6). All 240 increases between neighbouring mu are positive, the smallest at 12.6 standard errors). The same
  holds with the anisotropic ``spectrum="decay"``.
* sigma = variance FAILS, on both bounds. Upper bound (5), e.g. at mu = 2, Sigma_11 = 4, tr Sigma_V = 0.04,
  n = 8: E cos = 0.4583 +- 0.0013 but (5) with sigma = 4 gives 0.1466, 244 standard errors below the estimate
  (232 of the 240 rows with Sigma_11 = 4 and mu > 0 fail; worst: mu = 4, Sigma_11 = 4, tr Sigma_V = 0.25, n = 32,
  0.8763 +- 0.0006 against 0.4661, -739 standard errors). Lower bound (6), e.g. at mu = 0.5, Sigma_11 = 0.25,
  tr Sigma_V = 0.04, n = 32, epsilon = 0.5: E cos = 0.3932 +- 0.0010 but (6) with sigma = 0.25 gives 0.4302
  (-37 standard errors; all 6 failing rows have Sigma_11 = 0.25). The readings agree at Sigma_11 = 1; with
  Sigma_11 < 1 the "variance" upper bound is merely looser, and with Sigma_11 > 1 so is its lower bound when
  epsilon <= 1 (for epsilon > 1 the bracket of (6) is not monotone in sigma).
* sigma_V = tr(Sigma_V) ("trace_squared") FAILS on the lower bound when tr(Sigma_V) < 1, e.g. at mu = 0.5,
  Sigma_11 = 0.04, tr Sigma_V = 0.04, n = 32, epsilon = 0.25: E cos = 0.7829 +- 0.0003 but (6) gives 0.8512
  (-226 standard errors; 46 violating rows, all with tr Sigma_V in {0.04, 0.25} and Sigma_11 in {0.04, 0.25}).
  It cannot affect (5), which does not involve Sigma_V, and with tr(Sigma_V) >= 1 it only loosens (6).

So the theorem holds as proved, with sigma the standard deviation of X_1 (Sigma_11 = sigma^2) and
sigma_V^2 = tr(Sigma_V); the statement's matrix should read diag(sigma^2, Sigma_V). This is also what
``oecl_core.train.augmentation_stats`` logs: its ``sigma`` is a standard deviation and its ``sigma_v`` the square
root of a trace.

Monte Carlo. Sigma_V is taken diagonal, which loses nothing here: the bounds depend on Sigma_V only through its
trace, and cos(X, Y) is invariant under rotations of the last n - 1 coordinates, so any Sigma_V is equivalent to the
diagonal matrix of its eigenvalues. The default spectrum is isotropic (tr/(n-1) on each coordinate); ``spectrum=
"decay"`` spreads the same trace geometrically (weights 2^-i) to check an anisotropic case. E cos(X, Y) is the mean
of cos(X_i, Y_i) over independent pairs, its standard error the sample standard deviation over sqrt(pairs). Along a
line in mu the same normal draws are reused (common random numbers), so the increase between neighbouring mu
values is estimated from paired differences with its own, much smaller, standard error.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure

SIGMA_READINGS = ("std", "variance")
SIGMA_V_READINGS = ("trace", "trace_squared")
DEFAULT_READING = ("std", "trace")  # the reading under which the theorem holds (module docstring)
SPECTRA = ("isotropic", "decay")

# The grid of the check: mu along each line; one line per (Sigma_11, tr Sigma_V, n); epsilon only enters (6).
DEFAULT_GRID = dict(
    mus=(0.0, 0.25, 0.5, 1.0, 2.0, 4.0),
    sigmas=(0.04, 0.25, 1.0, 4.0),  # Sigma_11, the variance of X_1 (standard deviation 0.2, 0.5, 1, 2)
    traces=(0.04, 0.25, 1.0, 4.0),  # tr Sigma_V
    dims=(2, 8, 32),
    epsilons=(0.25, 0.5, 0.9, 1.5),
)
# Monte Carlo pairs per grid point, by pipeline preset (any other preset gets DEFAULT_PAIRS).
DEFAULT_PAIRS = 400_000
PRESET_PAIRS = {"smoke": 40_000}
# Settings (Sigma_11, tr Sigma_V, n) drawn by plot_theorem: one panel each.
DEFAULT_PLOT_SETTINGS = ((1.0, 1.0, 8), (0.25, 0.04, 8), (4.0, 0.25, 32))
K_SE = 4.0  # tolerance, in standard errors


def _phi(x: float) -> float:
    """Standard normal CDF."""
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def upper_bound(mu: float, sigma: float) -> float:
    """Right-hand side of (5), (Phi(mu/sigma) - Phi(-mu/sigma))^2, with sigma as it appears in the bound."""
    _check(mu=mu, sigma=sigma)
    return math.erf(mu / (sigma * math.sqrt(2.0))) ** 2  # Phi(a) - Phi(-a) = erf(a / sqrt 2)


def lower_bound(mu: float, sigma: float, sigma_v2: float, eps: float) -> float:
    """Right-hand side of (6) for one epsilon > 0, with sigma and sigma_V^2 as they appear in the bound.
    At mu = 0 it is 0 (its limit; also the value of E cos there)."""
    _check(mu=mu, sigma=sigma, sigma_v2=sigma_v2, eps=eps)
    if mu == 0:
        return 0.0
    factor = 1.0 / (1.0 + sigma_v2 / (eps * mu) ** 2)
    bracket = _phi((1.0 - eps) * mu / sigma) - _phi(-(1.0 + eps) * mu / sigma)
    return factor * bracket ** 2


def best_lower_bound(mu: float, sigma: float, sigma_v2: float, epsilons=None) -> tuple[float, float]:
    """The largest (6) over a grid of epsilon (valid, since (6) holds for every epsilon > 0): (bound, its eps)."""
    epsilons = np.geomspace(0.01, 4.0, 200) if epsilons is None else epsilons
    values = [(lower_bound(mu, sigma, sigma_v2, float(e)), float(e)) for e in epsilons]
    return max(values)


def bound_symbols(sigma11: float, tr_sigma_v: float, sigma_reading: str = DEFAULT_READING[0],
                  sigma_v_reading: str = DEFAULT_READING[1]) -> tuple[float, float]:
    """(sigma, sigma_V^2) to put in the bounds for a distribution with Var X_1 = sigma11 and tr Sigma_V = tr_sigma_v,
    under the chosen readings (module docstring)."""
    if sigma_reading not in SIGMA_READINGS:
        raise ValueError(f"sigma_reading {sigma_reading!r}; valid: {', '.join(SIGMA_READINGS)}")
    if sigma_v_reading not in SIGMA_V_READINGS:
        raise ValueError(f"sigma_v_reading {sigma_v_reading!r}; valid: {', '.join(SIGMA_V_READINGS)}")
    _check(sigma=sigma11, sigma_v2=tr_sigma_v)
    sigma = math.sqrt(sigma11) if sigma_reading == "std" else sigma11
    sigma_v2 = tr_sigma_v if sigma_v_reading == "trace" else tr_sigma_v ** 2
    return sigma, sigma_v2


def bounds(mu: float, sigma11: float, tr_sigma_v: float, eps: float, sigma_reading: str = DEFAULT_READING[0],
           sigma_v_reading: str = DEFAULT_READING[1]) -> tuple[float, float]:
    """(lower bound (6), upper bound (5)) for the distribution (mu, Sigma_11 = sigma11, tr Sigma_V) and epsilon."""
    sigma, sigma_v2 = bound_symbols(sigma11, tr_sigma_v, sigma_reading, sigma_v_reading)
    return lower_bound(mu, sigma, sigma_v2, eps), upper_bound(mu, sigma)


def _check(mu=None, sigma=None, sigma_v2=None, eps=None) -> None:
    if mu is not None and not mu >= 0:
        raise ValueError(f"mu must be >= 0 (the theorem's condition), got {mu}")
    if sigma is not None and not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    if sigma_v2 is not None and not sigma_v2 >= 0:
        raise ValueError(f"tr Sigma_V (sigma_V^2) must be >= 0, got {sigma_v2}")
    if eps is not None and not eps > 0:
        raise ValueError(f"epsilon must be > 0, got {eps}")


def sigma_v_diagonal(tr_sigma_v: float, n: int, spectrum: str = "isotropic") -> np.ndarray:
    """The n - 1 diagonal entries of a Sigma_V with trace tr_sigma_v."""
    if n < 1:
        raise ValueError(f"dimension n must be >= 1, got {n}")
    if n == 1:
        if tr_sigma_v != 0:
            raise ValueError("n = 1 leaves no room for Sigma_V: tr_sigma_v must be 0")
        return np.zeros(0)
    if spectrum == "isotropic":
        weights = np.ones(n - 1)
    elif spectrum == "decay":
        weights = 0.5 ** np.arange(n - 1)
    else:
        raise ValueError(f"spectrum {spectrum!r}; valid: {', '.join(SPECTRA)}")
    return tr_sigma_v * weights / weights.sum()


@dataclass
class LineEstimate:
    """Monte Carlo estimates of E cos(X, Y) along a line of mu values (same draws for every mu)."""
    mus: np.ndarray
    estimate: np.ndarray  # E cos per mu
    se: np.ndarray  # its standard error
    diff: np.ndarray  # estimate[j+1] - estimate[j] (paired), length len(mus) - 1
    diff_se: np.ndarray  # standard error of each paired difference


def _line_seed(seed: int, sigma11: float, tr_sigma_v: float, n: int) -> np.random.Generator:
    """A generator keyed by the line's settings, so a line's draws do not depend on the rest of the grid."""
    key = [int(seed), int(n), int(round(sigma11 * 1e6)), int(round(tr_sigma_v * 1e6))]
    return np.random.default_rng(np.random.SeedSequence(key))


def mc_cosine_line(mus, sigma11: float, tr_sigma_v: float, n: int, n_pairs: int = DEFAULT_PAIRS, seed: int = 0,
                   spectrum: str = "isotropic", chunk: int = 1 << 15) -> LineEstimate:
    """E cos(X, Y) for X, Y i.i.d. N(mu e_1, diag(sigma11, Sigma_V)) at every mu in mus, by Monte Carlo over
    n_pairs independent pairs (vectorised in chunks; numpy Generator seeded from seed and the line's settings)."""
    mus = np.asarray(mus, dtype=float)
    for mu in mus:
        _check(mu=float(mu))
    _check(sigma=sigma11, sigma_v2=tr_sigma_v)
    if n_pairs < 2:
        raise ValueError("n_pairs must be >= 2")
    scales = np.sqrt(sigma_v_diagonal(tr_sigma_v, n, spectrum))
    rng = _line_seed(seed, sigma11, tr_sigma_v, n)
    s = math.sqrt(sigma11)
    # Per-pair cosines for every mu: only the first coordinate depends on mu, so the V parts are drawn once.
    cos = np.empty((len(mus), n_pairs))
    for start in range(0, n_pairs, chunk):
        m = min(chunk, n_pairs - start)
        x1 = rng.standard_normal(m) * s
        y1 = rng.standard_normal(m) * s
        if len(scales):
            vx = rng.standard_normal((m, len(scales))) * scales
            vy = rng.standard_normal((m, len(scales))) * scales
            vdot, vx2, vy2 = (vx * vy).sum(1), (vx * vx).sum(1), (vy * vy).sum(1)
        else:
            vdot = vx2 = vy2 = np.zeros(m)
        for j, mu in enumerate(mus):
            a, b = x1 + mu, y1 + mu
            cos[j, start:start + m] = (a * b + vdot) / np.sqrt((a * a + vx2) * (b * b + vy2))
    estimate = cos.mean(1)
    se = cos.std(1, ddof=1) / math.sqrt(n_pairs)
    d = np.diff(cos, axis=0)
    diff = d.mean(1) if len(d) else np.zeros(0)
    diff_se = d.std(1, ddof=1) / math.sqrt(n_pairs) if len(d) else np.zeros(0)
    return LineEstimate(mus, estimate, se, diff, diff_se)


def mc_cosine(mu: float, sigma11: float, tr_sigma_v: float, n: int, n_pairs: int = DEFAULT_PAIRS, seed: int = 0,
              spectrum: str = "isotropic") -> tuple[float, float]:
    """(estimate, standard error) of E cos(X, Y) at one point (see mc_cosine_line)."""
    line = mc_cosine_line([mu], sigma11, tr_sigma_v, n, n_pairs, seed, spectrum)
    return float(line.estimate[0]), float(line.se[0])


def check_grid(mus=DEFAULT_GRID["mus"], sigmas=DEFAULT_GRID["sigmas"], traces=DEFAULT_GRID["traces"],
               dims=DEFAULT_GRID["dims"], epsilons=DEFAULT_GRID["epsilons"], n_pairs: int = DEFAULT_PAIRS,
               seed: int = 0, k: float = K_SE, readings=(DEFAULT_READING,), spectrum: str = "isotropic") -> list[dict]:
    """Checks both bounds and the monotonicity in mu on the grid. ``sigmas`` are Sigma_11 values (variances of
    X_1), ``traces`` tr Sigma_V values; one Monte Carlo line per (Sigma_11, tr Sigma_V, n), shared by every epsilon
    and every reading in ``readings`` (pairs (sigma_reading, sigma_v_reading)).

    One row per (reading, Sigma_11, tr Sigma_V, n, mu, epsilon): the parameters, the bound symbols used, the
    estimate and its standard error, both bounds, the margins (bound minus estimate for (5), estimate minus bound
    for (6); negative means violated) in absolute terms and in standard errors, ``within_bounds`` (no violation by
    more than k standard errors), the paired increase from the previous mu on the line with its standard error, and
    ``increasing`` (the increase is > -k of its standard errors; True at the first mu of a line)."""
    rows = []
    mus = sorted(float(m) for m in mus)
    for sigma11 in sigmas:
        for tr in traces:
            for n in dims:
                line = mc_cosine_line(mus, float(sigma11), float(tr), int(n), n_pairs, seed, spectrum)
                for j, mu in enumerate(mus):
                    est, se = float(line.estimate[j]), float(line.se[j])
                    inc = float(line.diff[j - 1]) if j else math.nan
                    inc_se = float(line.diff_se[j - 1]) if j else math.nan
                    increasing = bool(j == 0 or inc > -k * inc_se)
                    for sigma_reading, sigma_v_reading in readings:
                        sym_sigma, sym_v2 = bound_symbols(float(sigma11), float(tr), sigma_reading, sigma_v_reading)
                        upper = upper_bound(mu, sym_sigma)
                        for eps in epsilons:
                            lower = lower_bound(mu, sym_sigma, sym_v2, float(eps))
                            tol = k * se + 1e-12
                            rows.append(dict(
                                sigma_reading=sigma_reading, sigma_v_reading=sigma_v_reading,
                                mu=mu, sigma11=float(sigma11), tr_sigma_v=float(tr), n=int(n), eps=float(eps),
                                sigma_in_bound=sym_sigma, sigma_v2_in_bound=sym_v2, n_pairs=int(n_pairs),
                                estimate=est, se=se, lower=lower, upper=upper,
                                upper_margin=upper - est, lower_margin=est - lower,
                                upper_margin_se=_in_se(upper - est, se), lower_margin_se=_in_se(est - lower, se),
                                upper_ok=bool(est <= upper + tol), lower_ok=bool(est >= lower - tol),
                                within_bounds=bool(lower - tol <= est <= upper + tol),
                                increase=inc, increase_se=inc_se, increasing=increasing))
    return rows


def _in_se(margin: float, se: float) -> float:
    """A margin in standard errors (+-inf when the standard error is 0)."""
    if se > 0:
        return margin / se
    return math.inf if margin >= 0 else -math.inf


def summarize(rows: list[dict]) -> list[dict]:
    """One line per reading: points, violations of (5), (6) and of the monotonicity, the worst margins (in
    standard errors and absolute) and where they occur."""
    out = []
    for reading in dict.fromkeys((r["sigma_reading"], r["sigma_v_reading"]) for r in rows):
        rs = [r for r in rows if (r["sigma_reading"], r["sigma_v_reading"]) == reading]
        worst_up = min(rs, key=lambda r: r["upper_margin_se"])
        worst_lo = min(rs, key=lambda r: r["lower_margin_se"])
        inc = [r for r in rs if not math.isnan(r["increase"])]
        worst_inc = min(inc, key=lambda r: r["increase"] / r["increase_se"]) if inc else None
        where = lambda r: dict(mu=r["mu"], sigma11=r["sigma11"], tr_sigma_v=r["tr_sigma_v"], n=r["n"], eps=r["eps"])
        out.append(dict(
            sigma_reading=reading[0], sigma_v_reading=reading[1], rows=len(rs),
            upper_violations=sum(not r["upper_ok"] for r in rs), lower_violations=sum(not r["lower_ok"] for r in rs),
            not_increasing=sum(not r["increasing"] for r in rs),
            worst_upper_margin_se=worst_up["upper_margin_se"], worst_upper_margin=min(r["upper_margin"] for r in rs),
            worst_upper_at=where(worst_up),
            worst_lower_margin_se=worst_lo["lower_margin_se"], worst_lower_margin=min(r["lower_margin"] for r in rs),
            worst_lower_at=where(worst_lo),
            worst_increase_z=(worst_inc["increase"] / worst_inc["increase_se"]) if worst_inc else math.nan,
            worst_increase_at={k: v for k, v in where(worst_inc).items() if k != "eps"} if worst_inc else None))
    return out


def _reading_label(sigma_reading: str, sigma_v_reading: str) -> str:
    sigma = r"$\sigma=\sqrt{\Sigma_{11}}$" if sigma_reading == "std" else r"$\sigma=\Sigma_{11}$"
    if sigma_v_reading == "trace":
        sigma_v = r"$\sigma_V^2=\mathrm{tr}\,\Sigma_V$"
    else:
        sigma_v = r"$\sigma_V=\mathrm{tr}\,\Sigma_V$"
    return f"{sigma}, {sigma_v}"


def plot_theorem(path_stem, settings=DEFAULT_PLOT_SETTINGS, mus=None, n_pairs: int = 100_000, seed: int = 0,
                 reading=DEFAULT_READING, other_reading=("variance", "trace")) -> list:
    """Figure: Monte Carlo E cos(X, Y) (shaded +-1 standard error) with bounds (5) and (6) against mu, one panel per
    (Sigma_11, tr Sigma_V, n) in settings. (6) is drawn at its best epsilon on a grid (it holds for every epsilon).
    Thin dotted lines: the bounds under ``other_reading`` (None to omit; it coincides with ``reading`` where
    Sigma_11 = 1 for the sigma readings). Writes <path_stem>.pdf and .png;
    returns the paths."""
    from oecl_core.figures import save_figure

    mus = np.linspace(0.0, 4.0, 41) if mus is None else np.asarray(mus, dtype=float)
    fig = Figure(figsize=(4.0 * len(settings), 3.6))
    axes = fig.subplots(1, len(settings), squeeze=False)[0]
    for ax, (sigma11, tr, n) in zip(axes, settings):
        line = mc_cosine_line(mus, sigma11, tr, n, n_pairs, seed)
        drawn = [(tuple(reading), "-")]
        if other_reading is not None and other_reading != tuple(reading):
            drawn.append((tuple(other_reading), ":"))
        ax.plot(mus, line.estimate, color="k", lw=1.5, label="E cos (Monte Carlo)")
        ax.fill_between(mus, line.estimate - line.se, line.estimate + line.se, color="k", alpha=0.25, linewidth=0,
                        label=r"$\pm$1 s.e.")
        for (sr, vr), ls in drawn:
            sym_sigma, sym_v2 = bound_symbols(sigma11, tr, sr, vr)
            up = [upper_bound(m, sym_sigma) for m in mus]
            lo = [best_lower_bound(m, sym_sigma, sym_v2)[0] for m in mus]
            tag = "" if ls == "-" else f", other reading ({_reading_label(sr, vr)})"
            lw = 1.3 if ls == "-" else 0.9
            ax.plot(mus, up, ls=ls, lw=lw, color="tab:red", label=f"upper bound (5){tag}")
            ax.plot(mus, lo, ls=ls, lw=lw, color="tab:blue", label=f"lower bound (6), best eps{tag}")
        ax.set_title(rf"$\Sigma_{{11}}$={sigma11:g}, tr$\Sigma_V$={tr:g}, n={n}", fontsize=9)
        ax.set_xlabel(r"$\mu$")
        ax.set_ylim(-0.05, 1.05)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(r"$E\,\cos(X, Y)$")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=7, frameon=False)
    fig.suptitle(f"Theorem III.1: Monte Carlo E cos(X, Y) ({n_pairs} pairs per point) and the bounds with "
                 f"{_reading_label(*reading)}", fontsize=9)
    fig.subplots_adjust(left=0.06, right=0.99, top=0.84, bottom=0.32, wspace=0.2)
    return save_figure(fig, path_stem)
