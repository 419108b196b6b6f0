"""Row 4 (and the importer's part of row 6): paths in a release's metadata must stay inside the release;
matrix files must be numeric 2-D .npy arrays."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from tests.build.test_import_omnicelltosg import write_mini_release
from tests.reliability._cli import assert_one_line_error, run_main

from celltosg.build import import_omnicelltosg
from celltosg.errors import MalformedInputError

METADATA = "cell_metadata_with_mappings.parquet"
VICTIM = "GEO_lung_part_0.npy"


@pytest.fixture()
def release(tmp_path):
    root = tmp_path / "data" / "release"
    write_mini_release(root)
    return root


def _point_at(root, value):
    meta = pd.read_parquet(root / METADATA)
    meta.loc[meta["matrix_file_path"] == VICTIM, "matrix_file_path"] = value
    meta.to_parquet(root / METADATA, index=False)


def _secret(tmp_path, root):
    """A well-formed matrix outside the release, which the importer would happily read."""
    secret = tmp_path / "outside" / "secret.npy"
    secret.parent.mkdir()
    np.save(secret, np.load(root / "expression_matrix" / VICTIM))
    return secret


@pytest.mark.parametrize("how", ["relative", "absolute", "symlink"])
def test_matrix_outside_the_release_is_refused(tmp_path, release, tiny_kg, how):
    secret = _secret(tmp_path, release)
    if how == "relative":
        _point_at(release, "../../../outside/secret.npy")  # expression_matrix/../../../ is tmp_path
    elif how == "absolute":
        _point_at(release, str(secret))
    else:
        (release / "expression_matrix" / VICTIM).unlink()
        (release / "expression_matrix" / VICTIM).symlink_to(secret)
    with pytest.raises(MalformedInputError, match=r"outside the release root"):
        import_omnicelltosg(release, tmp_path / "store", kg=tiny_kg)
    assert not (tmp_path / "store").exists()


def test_symlink_inside_the_release_is_followed(tmp_path, release, tiny_kg):
    moved = release / "elsewhere" / "moved.npy"
    moved.parent.mkdir()
    (release / "expression_matrix" / VICTIM).rename(moved)
    (release / "expression_matrix" / VICTIM).symlink_to(moved)
    store = import_omnicelltosg(release, tmp_path / "store", kg=tiny_kg)
    assert store.n_cells == 10


@pytest.mark.parametrize("content", ["text", "npz", "object", "one_dimensional"])
def test_bad_matrix_file_is_a_clear_error(tmp_path, release, tiny_kg_dir, content, capsys):
    path = release / "expression_matrix" / VICTIM
    good = np.load(path)
    if content == "text":
        path.write_text("gene,value\nA,1\n")
        phrase = "is not a numeric NumPy .npy array"
    elif content == "npz":
        with open(path, "wb") as handle:
            np.savez(handle, x=good)
        phrase = "is not a numeric NumPy .npy array"
    elif content == "object":
        np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
        phrase = "is not a numeric NumPy .npy array"
    else:
        np.save(path, good.ravel())
        phrase = "expected (rows, 33) transcript columns"
    code, _, err = run_main(capsys, "import-omnicelltosg", release, "--out", tmp_path / "store",
                            "--pack", tiny_kg_dir)
    assert_one_line_error(code, err, VICTIM, phrase)
