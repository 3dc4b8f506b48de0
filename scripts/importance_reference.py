"""The classical two-way ANOVA that sweep's exact importance (`crates/report/src/importance/`)
is checked against: statsmodels' `anova_lm` on a balanced 3 × 4 grid with 3 replicates
(seeds), printing each term's sum of squares over the total, which is the share sweep's
functional ANOVA gives it (main effects, the interaction, and the residual as the noise).

The grid's objectives are a formula both sides compute exactly (integer arithmetic then one
division), so the Rust test (`the_exact_shares_match_statsmodels_anova_lm` in
`importance/mod.rs`) rebuilds the same 36 trials and pins the printed shares.

Usage (run by hand; the tests only hold its numbers):
  python3 -m venv /tmp/imp-venv && /tmp/imp-venv/bin/pip install statsmodels pandas
  /tmp/imp-venv/bin/python scripts/importance_reference.py
"""
import pandas as pd
import statsmodels.api as sm
from statsmodels.formula.api import ols


def objective(a, b, seed):
    """The trial at level a of A (0..2), b of B (0..3), replicate seed (0..2)."""
    effect = 10 * a - 2 * b * b + (3 if (a, b) == (2, 1) else 0)
    noise = 6 * ((7 * a + 3 * b + 5 * seed) % 11 - 5)
    return (500 + 10 * effect + noise) / 1000


rows = [
    {"A": a, "B": b, "seed": s, "y": objective(a, b, s)}
    for a in range(3)
    for b in range(4)
    for s in range(3)
]
frame = pd.DataFrame(rows)
table = sm.stats.anova_lm(ols("y ~ C(A) * C(B)", data=frame).fit(), typ=2)
total = table["sum_sq"].sum()
for term, name in [("C(A)", "A"), ("C(B)", "B"), ("C(A):C(B)", "A × B"), ("Residual", "noise")]:
    print(f"{name:6} sum_sq {table.loc[term, 'sum_sq']:.17g}  share {table.loc[term, 'sum_sq'] / total:.17g}")
