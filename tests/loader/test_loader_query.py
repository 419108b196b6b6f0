"""Queries over a simulated store, checked against a plain pandas filter."""

from __future__ import annotations

import numpy as np
import pytest

from celltosg.errors import QueryError
from celltosg.loader import available_conditions, parse_where, query


def _naive(obs, column, values):
    lowered = {v.lower() for v in values}
    return np.flatnonzero(obs[column].astype(str).str.strip().str.lower().isin(lowered).to_numpy())


def test_aliases_case_and_lists_match_a_pandas_filter(cohort_store):
    obs = cohort_store.obs
    got = query(cohort_store, {"tissue_general": "BRAIN", "disease_BMG_name": ["alzheimer DISEASE", "Normal"],
                               "sex": "Female", "CMT_name": None})
    expected = np.intersect1d(np.intersect1d(_naive(obs, "tissue_general", ["brain"]),
                                             _naive(obs, "disease", ["alzheimer disease", "normal"])),
                              _naive(obs, "sex_normalized", ["female"]))
    np.testing.assert_array_equal(got.index.to_numpy(), expected)
    assert (got["cell_id"].to_numpy() == obs["cell_id"].to_numpy()[expected]).all()


def test_numeric_condition(cohort_store):
    got = query(cohort_store, {"n_raw_cells": [5, 6]})
    assert set(got["n_raw_cells"]) <= {5, 6} and len(got) == cohort_store.obs["n_raw_cells"].isin([5, 6]).sum()


def test_unknown_field_names_valid_fields(cohort_store):
    with pytest.raises(QueryError, match="Did you mean tissue") as info:
        query(cohort_store, {"tisue": "brain"})
    assert "disease_BMG_name" in str(info.value)


def test_unknown_value_lists_values(cohort_store):
    with pytest.raises(QueryError, match="Alzheimer disease"):
        query(cohort_store, {"disease": "Alzheimers"})


def test_empty_result_names_the_condition_that_emptied_it(cohort_store):
    with pytest.raises(QueryError, match=r"disease=\['lung adenocarcinoma'\].*Alzheimer disease \(") as info:
        query(cohort_store, {"tissue_general": "brain", "disease": "lung adenocarcinoma"})
    assert "lung adenocarcinoma (" not in str(info.value)


def test_values_and_identifiers_are_never_sql(cohort_store):
    with pytest.raises(QueryError):
        query(cohort_store, {"disease": "x' OR '1'='1"})
    with pytest.raises(QueryError, match="unknown field"):
        query(cohort_store, {'disease" OR 1=1 --': "normal"})


def test_available_conditions(cohort_store):
    fields = available_conditions(cohort_store)
    assert fields["disease"] == ["Alzheimer disease", "lung adenocarcinoma", "normal"]
    assert fields["tissue_general"] == ["brain", "lung"]
    assert "cell_id" not in fields


def test_cli_query(cohort_store_data):
    import json

    from typer.testing import CliRunner

    from celltosg.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["query", str(cohort_store_data[0]), "--where", "tissue_general=brain",
                                 "--where", "disease=normal", "--where", "disease=Alzheimer disease", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["counts"]["tissue_general"] == {"brain": payload["n_cells"]}
    assert set(payload["counts"]["disease"]) == {"normal", "Alzheimer disease"}
    bad = runner.invoke(app, ["query", str(cohort_store_data[0]), "--where", "tisue=brain"])
    assert bad.exit_code != 0


def test_parse_where_groups_repeated_fields_and_rejects_what_is_not_field_value():
    assert parse_where(["tissue=lung", " sex = female", "tissue=blood"]) == {"tissue": ["lung", "blood"],
                                                                             "sex": ["female"]}
    assert parse_where([]) == {} and parse_where(None) == {}
    for bad in (["lung"], ["=lung"], ["tissue="], ["tissue= "]):
        with pytest.raises(QueryError, match="is not FIELD=VALUE"):
            parse_where(bad)


@pytest.mark.parametrize("command", [["query", "STORE"], ["pretrain", "STORE", "--out", "x.ckpt"],
                                     ["finetune", "STORE", "--task", "cell_type", "--out", "run"],
                                     ["benchmark", "STORE", "--models", "logreg"],
                                     ["explain", "CKPT", "STORE", "--class", "a", "--out", "out"]])
def test_every_command_reports_a_bad_where_with_the_one_error(command, tmp_path):
    from typer.testing import CliRunner

    from celltosg.cli import app

    args = [str(tmp_path / a) if a in ("STORE", "CKPT") else a for a in command]
    result = CliRunner().invoke(app, [*args, "--where", "lung"])
    assert isinstance(result.exception, QueryError) and "'lung' is not FIELD=VALUE" in str(result.exception)
