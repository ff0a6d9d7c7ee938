"""Comparing two models' replicate metrics (S3): normality, variances, t-test, Mann-Whitney, power."""

import numpy as np


def cohens_d(a, b):
    """Cohen's d with the pooled standard deviation.

    Examples:
        >>> round(cohens_d([1, 2, 3], [2, 3, 4]), 3)
        -1.0
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    pooled = np.sqrt(((len(a) - 1) * a.var(ddof=1) + (len(b) - 1) * b.var(ddof=1)) / (len(a) + len(b) - 2))
    return float((a.mean() - b.mean()) / pooled) if pooled > 0 else 0.0


def t_test_power(effect_size, n_a, n_b, alpha=0.05):
    """Power of a two-sided two-sample t-test (noncentral t), for Cohen's d `effect_size`.

    Examples:
        >>> round(t_test_power(1.0, 20, 20), 3)
        0.869
    """
    from scipy import stats

    df = n_a + n_b - 2
    noncentrality = abs(effect_size) * np.sqrt(n_a * n_b / (n_a + n_b))
    critical = stats.t.ppf(1 - alpha / 2, df)
    return float(stats.nct.sf(critical, df, noncentrality) + stats.nct.cdf(-critical, df, noncentrality))


def compare_replicates(a, b, alpha=0.05):
    """Compares two samples of one metric (e.g. accuracy over R replicates of two models).

    Shapiro-Wilk on each sample and Levene on both decide the t-test: Student
    when the variances may be equal, Welch otherwise; the Mann-Whitney U test
    is always reported too (S3 ran it because one sample was not normal).

    Returns:
        dict: mean/std of each; shapiro (statistic, p, normal) for a and b
        (None for a sample of 2, Shapiro-Wilk needs 3, and for replicates
        that are all equal);
        levene (statistic, p, equal_variances); t_test (kind, statistic, p,
        significant); mann_whitney (statistic, p, significant); cohens_d; power.

    Examples:
        >>> result = compare_replicates([0.90, 0.91, 0.92, 0.93], [0.80, 0.82, 0.81, 0.83])
        >>> result["t_test"]["kind"], result["t_test"]["significant"]
        ('student', True)
    """
    from scipy import stats

    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"need at least 2 replicates per model, got {len(a)} and {len(b)}.")

    def shapiro(sample):
        # SciPy answers W = 1, p = 1 for replicates that are all equal: there is nothing to test.
        if len(sample) < 3 or np.ptp(sample) == 0:
            return {"statistic": None, "p": None, "normal": None}
        statistic, p = stats.shapiro(sample)
        return {"statistic": float(statistic), "p": float(p), "normal": bool(p > alpha)}

    levene_statistic, levene_p = stats.levene(a, b)
    equal_variances = bool(levene_p > alpha)
    t_statistic, t_p = stats.ttest_ind(a, b, equal_var=equal_variances)
    u_statistic, u_p = stats.mannwhitneyu(a, b, alternative="two-sided")
    effect = cohens_d(a, b)
    return {
        "a": {"mean": float(a.mean()), "std": float(a.std(ddof=1)), "n": len(a)},
        "b": {"mean": float(b.mean()), "std": float(b.std(ddof=1)), "n": len(b)},
        "shapiro": {"a": shapiro(a), "b": shapiro(b)},
        "levene": {"statistic": float(levene_statistic), "p": float(levene_p),
                   "equal_variances": equal_variances},
        "t_test": {"kind": "student" if equal_variances else "welch", "statistic": float(t_statistic),
                   "p": float(t_p), "significant": bool(t_p < alpha)},
        "mann_whitney": {"statistic": float(u_statistic), "p": float(u_p), "significant": bool(u_p < alpha)},
        "cohens_d": effect,
        "power": t_test_power(effect, len(a), len(b), alpha),
        "alpha": alpha,
    }


def holm(p_values):
    """Holm-Bonferroni adjusted p-values (step-down, monotone, at most 1), in the input order.

    Examples:
        >>> [round(p, 3) for p in holm([0.01, 0.04, 0.03])]
        [0.03, 0.06, 0.06]
    """
    p = np.asarray(p_values, float)
    order = np.argsort(p)
    adjusted = np.minimum(1.0, np.maximum.accumulate(p[order] * (len(p) - np.arange(len(p)))))
    result = np.empty_like(adjusted)
    result[order] = adjusted
    return result.tolist()


def holm_adjust(pair_results, alpha=0.05):
    """Adds `p_holm` (and Holm-based `significant`) to every t-test and Mann-Whitney result.

    Args:
        pair_results: {pair: {metric: compare_replicates result}}; the
            correction runs over the pairs, per metric and test.
    """
    pairs = list(pair_results)
    metrics = {metric for results in pair_results.values() for metric in results}
    for metric in metrics:
        having = [pair for pair in pairs if metric in pair_results[pair]]
        for test in ("t_test", "mann_whitney"):
            adjusted = holm([pair_results[pair][metric][test]["p"] for pair in having])
            for pair, p in zip(having, adjusted):
                pair_results[pair][metric][test].update(p_holm=p, significant=bool(p < alpha))
    return pair_results


def replicate_results(samples_a, samples_b, alpha=0.05):
    """{metric: compare_replicates result} for the metrics both models have."""
    return {metric: compare_replicates(samples_a[metric], samples_b[metric], alpha)
            for metric in samples_a if metric in samples_b}  # fmt: skip


def replicate_tables(samples_a, samples_b, names=("A", "B"), alpha=0.05, results=None):
    """S3's Tables I-IV as markdown: Shapiro-Wilk, Levene, t-test with power, Mann-Whitney U.

    Args:
        samples_a: {metric: list of replicate values} of the first model.
        samples_b: the same for the second model.
        names: (str, str). The models' names. Defaults to ("A", "B").
        results: precomputed `replicate_results` (e.g. Holm-adjusted); the
            tests' tables then show the Holm p beside the raw one.

    Returns:
        (markdown text, {metric: compare_replicates result}).

    Examples:
        >>> text, _ = replicate_tables({"accuracy": [0.9, 0.91, 0.92]}, {"accuracy": [0.8, 0.82, 0.81]})
        >>> text.splitlines()[0]
        '### Table I: Shapiro-Wilk normality test'
    """
    results = results or replicate_results(samples_a, samples_b, alpha)
    adjusted = any("p_holm" in r["t_test"] for r in results.values())
    holm_header, holm_rule = (" p (Holm) |", " ---: |") if adjusted else ("", "")

    def holm_cell(test):
        return f" {test['p_holm']:.4g} |" if adjusted else ""

    a, b = names
    lines = ["### Table I: Shapiro-Wilk normality test", "",
             f"| metric | {a} W | {a} p | {b} W | {b} p |", "| --- | ---: | ---: | ---: | ---: |"]
    lines += [f"| {m} | {_number(r['shapiro']['a']['statistic'])} | {_number(r['shapiro']['a']['p'])} | "
              f"{_number(r['shapiro']['b']['statistic'])} | {_number(r['shapiro']['b']['p'])} |" for m, r in results.items()]
    if any(r["shapiro"][side]["p"] is None for r in results.values() for side in "ab"):
        lines += ["", "n/a: Shapiro-Wilk needs at least 3 replicates that are not all equal."]
    lines += ["", "### Table II: Levene's test for equal variances", "", "| metric | statistic | p |",
              "| --- | ---: | ---: |"]
    lines += [f"| {m} | {r['levene']['statistic']:.4f} | {r['levene']['p']:.4f} |" for m, r in results.items()]
    lines += ["", "### Table III: t-test and power (Cohen's d)", "",
              f"| metric | test | t | p |{holm_header} d | power | significant |",
              f"| --- | --- | ---: | ---: |{holm_rule} ---: | ---: | --- |"]
    lines += [f"| {m} | {r['t_test']['kind']} | {r['t_test']['statistic']:.4f} | {r['t_test']['p']:.4g} |"
              f"{holm_cell(r['t_test'])} {r['cohens_d']:.3f} | {r['power']:.3f} | "
              f"{'yes' if r['t_test']['significant'] else 'no'} |" for m, r in results.items()]
    lines += ["", "### Table IV: Mann-Whitney U test", "", f"| metric | U | p |{holm_header} significant |",
              f"| --- | ---: | ---: |{holm_rule} --- |"]
    lines += [f"| {m} | {r['mann_whitney']['statistic']:.1f} | {r['mann_whitney']['p']:.4g} |"
              f"{holm_cell(r['mann_whitney'])} {'yes' if r['mann_whitney']['significant'] else 'no'} |"
              for m, r in results.items()]
    return "\n".join(lines) + "\n", results


def _number(value):
    return "n/a" if value is None else f"{value:.4f}"
