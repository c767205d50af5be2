"""Synthetic loan data: deterministic, schema-shaped, internally consistent, plausible."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelops.dataset import DatasetError, read_loans
from modelops.demo_data import generate, write_csv
from modelops.loan_schema import categorical_fields, labels, numeric_fields, raw_columns, schema

DATA = generate(20_000, 7)


def test_same_seed_same_data_other_seed_other_data() -> None:
    again, other = generate(500, 7), generate(500, 8)
    first = generate(500, 7)
    for name in raw_columns():
        assert np.array_equal(first[name], again[name])
    assert not np.array_equal(first["dti"], other["dti"])


@given(st.integers(0, 2**32 - 1))
@settings(max_examples=10, deadline=None)
def test_any_seed_gives_values_within_the_schema(seed: int) -> None:
    data = generate(300, seed)
    for field in schema()["numeric"]:
        values = np.asarray(data[field["name"]], dtype=float)
        assert np.isfinite(values).all(), field["name"]
        assert values.min() >= 0, field["name"]
    for name, categories in categorical_fields().items():
        assert set(data[name]) <= set(categories), name
    assert set(data["grade"]) <= set(labels())


def test_counts_are_integers_and_derived_fields_are_consistent() -> None:
    for name in ("open_acc", "total_acc", "delinq_2yrs", "pub_rec", "num_bc_tl", "fico_range_high"):
        assert np.asarray(DATA[name]).dtype.kind in "iu", name
    assert (DATA["fico_range_low"] == DATA["fico_range_high"] - 4).all()
    poor = DATA["last_fico_range_high"] == 499
    assert (DATA["last_fico_range_low"][poor] == 0).all()
    assert (DATA["last_fico_range_low"][~poor] == DATA["last_fico_range_high"][~poor] - 4).all()
    assert (DATA["total_acc"] >= DATA["open_acc"]).all()
    assert (DATA["num_bc_sats"] <= DATA["num_bc_tl"]).all()
    individual = DATA["application_type"] == "INDIVIDUAL"
    ratio = DATA["loan_amnt"][individual] / DATA["annual_inc"][individual]
    assert np.allclose(DATA["loan_to_income"][individual], ratio, atol=1e-4)


def test_medians_are_near_the_schemas_typical_values() -> None:
    for field in schema()["numeric"]:
        low, median, high = field["typical_min_median_max"]
        observed = float(np.median(DATA[field["name"]]))
        assert abs(observed - median) <= 0.35 * (high - low) + 1, field["name"]


def test_grade_mix_and_its_dependence_on_credit_fields() -> None:
    share = {g: float((DATA["grade"] == g).mean()) for g in labels()}
    assert max(share, key=share.__getitem__) in ("B", "C")
    assert share["G"] < 0.05 and share["A"] > 0.08
    index = np.searchsorted(np.array(labels()), DATA["grade"])
    fico = DATA["fico_range_high"]
    assert index[fico >= 740].mean() < index[fico < 680].mean() - 1  # better FICO, better grade
    long_term = DATA["term"] == " 60 months"
    assert index[long_term].mean() > index[~long_term].mean()


def test_csv_round_trip(tmp_path: Path) -> None:
    data = generate(200, 3)
    write_csv(data, tmp_path / "loans.csv")
    back = read_loans(tmp_path / "loans.csv")
    for name in numeric_fields():
        assert np.allclose(back[name], np.asarray(data[name], dtype=float)), name
    for name in [*categorical_fields(), "grade"]:
        assert list(back[name]) == list(data[name]), name


def test_csv_errors_name_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "loans.csv"
    write_csv(generate(5, 3), path)
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    cells = lines[3].split(",")
    cells[header.index("dti")] = "lots"
    path.write_text("\n".join([*lines[:3], ",".join(cells), *lines[4:]]))
    with pytest.raises(DatasetError, match=r"loans.csv:4: column dti"):
        read_loans(path)
    path.write_text(lines[0].replace("dti,", "") + "\n")
    with pytest.raises(DatasetError, match="missing columns dti"):
        read_loans(path)
