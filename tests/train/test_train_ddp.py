"""DDP: two spawned CPU processes (gloo) end with identical parameters, each on its own rows."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent('''
    import sys
    from pathlib import Path

    import torch

    from celltosg.kg import KnowledgeGraph
    from celltosg.train import finetune
    from tests.train.conftest import make_cohort, make_graph, small_config

    class Recording:
        """Records the rows of every training batch and the final parameters of its rank."""

        def __init__(self, out):
            self.out, self.rows, self.steps = out, [], 0

        def on_train_batch(self, batch):
            self.rows.extend(batch[2].tolist())
            self.steps += 1

        def on_fit_end(self, module, rank, world_size):
            params = {k: v.detach().clone() for k, v in module.state_dict().items()}
            torch.save({"rows": self.rows, "steps": self.steps, "params": params, "world": world_size},
                       self.out / f"rank{rank}.pt")

    def main(pack, out, mode):
        kg = KnowledgeGraph.load(pack)
        if mode == "stream":
            from celltosg.loader import load_cohort
            from tests.conftest import make_tiny_store

            store, _ = make_tiny_store(out / "store", kg)
            cohort = load_cohort(store, {"tissue_general": "lung"}, task="cell_type", min_class_size=2, seed=1)
        else:
            cohort = make_cohort(kg, n_cells=40)
        finetune(cohort, task="cell_type", config=small_config(), graph=make_graph(cohort.kg), out_dir=out / "ft",
                 epochs=1, batch_size=8, seed=0, devices=2, strategy="ddp", stream=mode == "stream",
                 buffer_size=16, skip_init="random", callbacks=[Recording(out)])
        print("N_TRAIN", len(cohort.labels("train")))

    if __name__ == "__main__":
        main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3])
''')


@pytest.mark.parametrize("mode", ["memory", "stream"])
def test_two_cpu_ranks_share_parameters_and_split_rows(tiny_kg_dir, tmp_path, mode):
    """Both in memory and streamed from a store: equal steps, disjoint rows covering the train split."""
    script = tmp_path / "ddp_run.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)]), "CELLTOSG_QUIET": "1",
           "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(script), str(tiny_kg_dir), str(tmp_path), mode], env=env,
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    n_train = int(done.stdout.split("N_TRAIN")[-1])
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert rank0["world"] == rank1["world"] == 2
    assert rank0["steps"] == rank1["steps"] > 0
    assert rank0["params"].keys() == rank1["params"].keys()
    assert all(torch.equal(rank0["params"][k], rank1["params"][k]) for k in rank0["params"])
    rows0, rows1 = set(rank0["rows"]), set(rank1["rows"])
    assert rows0 and rows1 and not rows0 & rows1
    assert rows0 | rows1 == set(range(n_train))
    assert (tmp_path / "ft" / "metrics.json").is_file() and (tmp_path / "ft" / "model.ckpt").is_file()
