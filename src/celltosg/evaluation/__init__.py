"""The benchmark harness: same splits, genes and normalisation for every model; results and figures."""

from celltosg.evaluation._donors import donor_calls
from celltosg.evaluation._harness import RESULT_COLUMNS, ModelSpec, check_budget, evaluate_spec, run_benchmark
from celltosg.evaluation._memory import PeakMemory, measure_peak_memory
from celltosg.evaluation._models import GRID_SIZE, model_names, model_specs
from celltosg.evaluation._paths import logit_paths
from celltosg.evaluation._report import markdown_table, merge_results, plot_results, summarize, write_results
from celltosg.evaluation._rewire import double_edge_swap, rewire_knowledge_graph
from celltosg.evaluation._saved import is_saved_splits, save_splits, saved_seeds, saved_splits
from celltosg.evaluation._split import (
    Split,
    align_to_kg,
    split_from_anndata,
    split_from_cohort,
    stratified_cell_split,
)
from celltosg.evaluation._tasks import PBMC68K, anndata_splits, pbmc68k_splits, store_splits

__all__ = [
    "GRID_SIZE",
    "PBMC68K",
    "anndata_splits",
    "donor_calls",
    "logit_paths",
    "model_names",
    "model_specs",
    "pbmc68k_splits",
    "store_splits",
    "RESULT_COLUMNS",
    "ModelSpec",
    "PeakMemory",
    "Split",
    "align_to_kg",
    "check_budget",
    "double_edge_swap",
    "evaluate_spec",
    "markdown_table",
    "measure_peak_memory",
    "merge_results",
    "plot_results",
    "rewire_knowledge_graph",
    "run_benchmark",
    "save_splits",
    "saved_seeds",
    "saved_splits",
    "is_saved_splits",
    "split_from_anndata",
    "split_from_cohort",
    "stratified_cell_split",
    "summarize",
    "write_results",
]
