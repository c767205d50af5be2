"""Deterministic synthetic loan applications with the lender's schema.

No real Lending Club data is available offline, so the demo model trains on data
drawn here: a latent credit-quality factor drives FICO, utilisation and
delinquencies; income drives balances and limits; derived fields are computed
from the fields they derive from. The grade follows a risk score on the credit
fields (FICO, DTI, utilisation, delinquencies, public records, term) plus noise,
and sets the interest rate, hence the installment.

    python -m modelops.demo_data --rows 50000 --seed 7 --out artifacts/demo/loans.csv
"""

from __future__ import annotations

import argparse
import csv
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from modelops.loan_schema import GRADE_COLUMN, categorical_fields, labels, raw_columns

# Risk-score cut points between grades A|B|...|F|G, fixed so that every data set
# uses the same grade semantics (about 17/29/27/15/8/3/1 % on the demo mix).
GRADE_CUTS = (-1.14, 0.34, 1.58, 2.51, 3.39, 4.25)
# Annual interest rate by grade; within-grade spread overlaps neighbours.
GRADE_RATE = np.array([0.07, 0.105, 0.14, 0.175, 0.21, 0.245, 0.275])
RATE_SPREAD = 0.02

_EMP_LENGTH_SHARE = {
    "1 year": 7, "10+ years": 33, "2 years": 9, "3 years": 8, "4 years": 6, "5 years": 6,
    "6 years": 5, "7 years": 5, "8 years": 5, "9 years": 4, "< 1 year": 8, "n/a": 4,
}  # fmt: skip
_HOME_SHARE = {"ANY": 0.1, "MORTGAGE": 49, "OWN": 11, "RENT": 40}
_BIG_STATES = {"CA": 14, "NY": 8, "TX": 8, "FL": 7, "IL": 4, "NJ": 4, "PA": 3.5, "OH": 3.3}


def _shares(categories: list[str], weights: Mapping[str, float], rest: float = 1.0) -> np.ndarray:
    share = np.array([weights.get(c, rest) for c in categories], dtype=float)
    return share / share.sum()


def _fico(rng: np.random.Generator, centre: np.ndarray, low: int, high: int) -> np.ndarray:
    """FICO range upper bounds: x4 or x9, as bureau ranges are published."""
    value = np.clip(centre, low, high)
    return np.clip(5 * np.round((value - 4) / 5) + 4, low, high).astype(int)


def generate(rows: int, seed: int) -> dict[str, Any]:
    """`rows` synthetic applications as columns (numbers, category strings, grade)."""
    rng = np.random.default_rng(seed)
    n = rows
    quality = rng.standard_normal(n)  # latent credit quality, higher is better
    wealth = 0.35 * quality + np.sqrt(1 - 0.35**2) * rng.standard_normal(n)
    cats = categorical_fields()

    application_type = np.where(rng.random(n) < 0.02, "JOINT", "INDIVIDUAL")
    annual_inc = np.round(np.clip(np.exp(np.log(65000) + 0.5 * wealth), 12000, 300000), -2)
    joint_income = np.where(application_type == "JOINT", annual_inc * 1.7, annual_inc)
    loan_amnt = np.round(np.clip(np.exp(np.log(12000) + 0.55 * rng.standard_normal(n)
                                        + 0.2 * wealth), 1000, 35000) / 25) * 25  # fmt: skip
    loan_amnt = np.maximum(np.minimum(loan_amnt, np.round(0.8 * joint_income / 25) * 25), 1000)
    long_term = rng.random(n) < np.clip(0.15 + loan_amnt / 60000, 0, 0.8)
    term = np.where(long_term, " 60 months", " 36 months")

    fico_high = _fico(rng, 703 + 32 * quality + 12 * rng.standard_normal(n), 664, 850)
    last_high = _fico(rng, fico_high + 8 * quality + 25 * rng.standard_normal(n), 504, 850)
    last_high = np.where(rng.random(n) < 0.02 * np.exp(-quality), 499, last_high)
    dti = np.round(np.clip(18 - 3.5 * quality + 7.5 * rng.standard_normal(n), 0, 40), 2)
    revol_util = np.round(np.clip(53 - 14 * quality + 21 * rng.standard_normal(n), 0, 120), 1)
    bc_util = np.round(np.clip(1.1 * revol_util + 4 + 12 * rng.standard_normal(n), 0, 120), 1)
    all_util = np.round(np.clip(0.5 * revol_util + 33 + 11 * rng.standard_normal(n), 0, 120))
    delinq_2yrs = np.minimum(rng.poisson(np.exp(-1.5 - 0.7 * quality)), 10)
    pub_rec = np.minimum(rng.poisson(np.exp(-2.0 - 0.5 * quality)), 10)
    acc_now_delinq = np.minimum(rng.poisson(0.006 * np.exp(-quality)), 3)
    delinq_amnt = np.where(acc_now_delinq > 0, np.round(np.exp(7 + rng.standard_normal(n))), 0)
    num_120_pd = np.minimum(rng.poisson(np.exp(-1.3 - 0.6 * quality)), 10)
    pct_never_dlq = np.round(np.clip(100 - 3 * delinq_2yrs - 2.5 * num_120_pd
                                     - np.abs(3 * rng.standard_normal(n)), 40, 100), 1)  # fmt: skip

    open_acc = np.clip(rng.poisson(10.5 + 1.5 * wealth.clip(-2, 2)) + 1, 1, 50)
    total_acc = np.clip(open_acc + rng.poisson(13, n), 2, 100)
    acc_24m = np.minimum(rng.poisson(np.clip(4 - 0.8 * quality, 0.5, None)), 20)
    num_actv_bc = np.minimum(rng.poisson(3.3, n), 20)
    num_bc_tl = np.minimum(num_actv_bc + rng.poisson(4, n), 40)
    num_bc_sats = np.minimum(num_bc_tl, num_actv_bc + rng.poisson(1, n))
    num_actv_rev = np.minimum(num_actv_bc + rng.poisson(2, n), 30)
    num_rev_gt0 = np.minimum(num_actv_rev, np.maximum(num_actv_rev - rng.poisson(0.7, n), 0))
    num_il_tl = np.minimum(rng.poisson(7.5, n), 60)
    total_cu_tl = np.minimum(rng.poisson(0.9, n), 20)
    pct_bc_gt_75 = np.round(np.clip(0.7 * bc_util - 5 + 18 * rng.standard_normal(n), 0, 100), 1)

    total_rev_hi_lim = np.round(annual_inc * rng.uniform(0.15, 0.6, n), -2)
    revol_bal = np.round(revol_util / 100 * total_rev_hi_lim)
    total_bc_limit = np.round(total_rev_hi_lim * rng.uniform(0.5, 0.9, n), -2)
    bc_open_to_buy = np.round(np.clip(total_bc_limit * (1 - bc_util / 100), 0, None))
    il_limit = np.round(annual_inc * rng.uniform(0.05, 0.9, n), -2)
    il_util = np.round(np.clip(70 + 22 * rng.standard_normal(n), 0, 150), 1)
    total_bal_il = np.round(il_util / 100 * il_limit)
    home = rng.choice(cats["home_ownership"], n, p=_shares(cats["home_ownership"], _HOME_SHARE))
    mortgage = np.where(home == "MORTGAGE", annual_inc * rng.uniform(1, 4, n), 0)
    total_bal_ex_mort = revol_bal + total_bal_il
    tot_cur_bal = np.round(total_bal_ex_mort + mortgage)
    tot_hi_cred_lim = np.round(np.maximum(total_rev_hi_lim + il_limit + 1.2 * mortgage, 2000), -2)
    avg_cur_bal = np.round(tot_cur_bal / np.maximum(open_acc, 1))
    tot_coll_amt = np.where(rng.random(n) < 0.14 * np.exp(-0.5 * quality),
                            np.round(np.exp(6.5 + 1.2 * rng.standard_normal(n))), 0)  # fmt: skip
    il_util_ex_mort = np.round(np.where(il_limit > 0, total_bal_ex_mort / np.maximum(il_limit, 1),
                                        0), 4)  # fmt: skip
    credit_years = 16 + 2.5 * quality + 2 * wealth + 6 * rng.standard_normal(n)
    age_earliest_cr = np.clip(np.round(365 * credit_years), 1100, 20000)

    risk = (
        -0.030 * (fico_high - 703)
        + 0.045 * (dti - 18)
        + 0.014 * (revol_util - 53)
        + 0.35 * delinq_2yrs
        + 0.45 * pub_rec
        + 0.25 * num_120_pd
        + 0.8 * long_term
        + 0.06 * (acc_24m - 4)
        - 0.2 * np.log(annual_inc / 65000)
        + 0.55 * rng.standard_normal(n)
    )
    grade_index = np.digitize(risk, GRADE_CUTS)
    rate = np.clip(GRADE_RATE[grade_index] + RATE_SPREAD * rng.standard_normal(n), 0.05, 0.31)
    months = np.where(long_term, 60, 36)
    monthly = rate / 12
    installment = np.round(loan_amnt * monthly / (1 - (1 + monthly) ** -months), 2)

    columns: dict[str, Any] = {
        "annual_inc": annual_inc, "dti": dti, "age_earliest_cr": age_earliest_cr,
        "loan_amnt": loan_amnt, "installment": installment, "acc_now_delinq": acc_now_delinq,
        "acc_open_past_24mths": acc_24m, "avg_cur_bal": avg_cur_bal,
        "bc_open_to_buy": bc_open_to_buy, "bc_util": bc_util, "delinq_2yrs": delinq_2yrs,
        "delinq_amnt": delinq_amnt, "fico_range_high": fico_high,
        "fico_range_low": fico_high - 4, "last_fico_range_high": last_high,
        "last_fico_range_low": np.where(last_high == 499, 0, last_high - 4),
        "open_acc": open_acc, "pub_rec": pub_rec, "revol_util": revol_util,
        "revol_bal": revol_bal, "tot_coll_amt": tot_coll_amt, "tot_cur_bal": tot_cur_bal,
        "total_acc": total_acc, "total_rev_hi_lim": total_rev_hi_lim,
        "num_accts_ever_120_pd": num_120_pd, "num_actv_bc_tl": num_actv_bc,
        "num_actv_rev_tl": num_actv_rev, "num_bc_sats": num_bc_sats, "num_bc_tl": num_bc_tl,
        "num_il_tl": num_il_tl, "num_rev_tl_bal_gt_0": num_rev_gt0,
        "pct_tl_nvr_dlq": pct_never_dlq, "percent_bc_gt_75": pct_bc_gt_75,
        "tot_hi_cred_lim": tot_hi_cred_lim, "total_bal_ex_mort": total_bal_ex_mort,
        "total_bc_limit": total_bc_limit, "total_il_high_credit_limit": il_limit,
        "all_util": all_util, "loan_to_income": np.round(loan_amnt / joint_income, 4),
        "installment_pct_inc": np.round(installment / (joint_income / 12), 4),
        "il_util": il_util, "il_util_ex_mort": il_util_ex_mort, "total_bal_il": total_bal_il,
        "total_cu_tl": total_cu_tl,
        "application_type": application_type,
        "emp_length": rng.choice(np.array(cats["emp_length"]), n,
                                 p=_shares(cats["emp_length"], _EMP_LENGTH_SHARE)),
        "home_ownership": home,
        "addr_state": rng.choice(np.array(cats["addr_state"]), n,
                                 p=_shares(cats["addr_state"], _BIG_STATES, rest=1.3)),
        "term": term,
        GRADE_COLUMN: np.array(labels())[grade_index],
    }  # fmt: skip
    assert list(columns) == raw_columns()
    return columns


def write_csv(columns: dict[str, Any], path: Path) -> None:
    """Write columns as CSV in the cleaned layout (header = raw_columns())."""
    path.parent.mkdir(parents=True, exist_ok=True)
    names = raw_columns()
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(names)
        writer.writerows(zip(*(_cells(columns[name]) for name in names), strict=True))


def _cells(values: Any) -> list[str]:
    array = np.asarray(values)
    if array.dtype.kind in "iu":
        return [str(v) for v in array.tolist()]
    if array.dtype.kind == "f":
        return [repr(v) if not v.is_integer() else str(int(v)) for v in array.tolist()]
    return [str(v) for v in array.tolist()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write synthetic loan applications as CSV.")
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    write_csv(generate(args.rows, args.seed), args.out)
    print(f"wrote {args.rows} rows to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
