"""Donor-level calls: disease is a property of a donor, so its cells' class probabilities are averaged."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from celltosg.errors import MalformedInputError


def donor_calls(proba: np.ndarray, donors: Sequence, classes: Sequence[str]) -> pd.DataFrame:
    """One row per donor (first-seen order): mean class probabilities, the called class, number of cells.

    Parameters
    ----------
    proba
        Class probabilities of the cells, float (n, C).
    donors
        Donor id of each cell, (n,).
    classes
        Class names, (C,), in the column order of ``proba``.

    Returns
    -------
    DataFrame with columns ``donor``, ``p_<class>`` per class, ``called`` (the class of the largest mean
    probability; ties go to the earlier class) and ``n_cells``.
    """
    proba = np.asarray(proba, dtype=np.float64)
    donors = np.asarray(donors).astype(str)
    if proba.ndim != 2 or proba.shape != (len(donors), len(classes)):
        raise MalformedInputError(f"donor_calls: probabilities of shape {proba.shape} for {len(donors)} cells and "
                                  f"{len(classes)} classes; give one row per cell and one column per class")
    codes, names = pd.factorize(donors)
    n_cells = np.bincount(codes, minlength=len(names))
    sums = np.zeros((len(names), proba.shape[1]))
    np.add.at(sums, codes, proba)
    means = sums / n_cells[:, None]
    table = pd.DataFrame(means, columns=[f"p_{c}" for c in classes])
    table.insert(0, "donor", names)
    table["called"] = np.asarray(classes, dtype=object)[means.argmax(axis=1)]
    table["n_cells"] = n_cells
    return table
