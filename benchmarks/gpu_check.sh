#!/usr/bin/env bash
# CellTOSG-FM on a CUDA device in under 5 minutes: the throughput benchmark (ours vs the reference's
# per-cell batching) on the human pack's graph, then a short supervised fine-tune of the model on the
# device with planted-signal cells, then (when celltosg.train is importable) a short celltosg.train.finetune.
# Usage: bash benchmarks/gpu_check.sh            (from the repository root; works without a GPU, slowly)
set -uo pipefail
cd "$(dirname "$0")/.."
if [[ -x .venv/bin/python ]]; then PY=.venv/bin/python; else PY=${PYTHON:-python3}; fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 CELLTOSG_QUIET=1
DEVICE=$("$PY" -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')")
echo "== python: $PY   device: $DEVICE"
"$PY" -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no CUDA device')"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader

PACK=${CELLTOSG_GPU_CHECK_PACK:-human}  # another pack directory for a dry run
if [[ "$DEVICE" == cuda ]]; then QUICK=""; else QUICK="--quick"; fi
echo "== throughput: ours (shared graph) vs the reference way (per-cell PyG Data + Batch.from_data_list)"
timeout 150 "$PY" benchmarks/model_throughput.py --device "$DEVICE" $QUICK --batch-sizes 8 32 \
    --convs attention gcn --steps 3 --timeout 60 || echo "throughput benchmark failed or timed out (exit $?)"
if [[ "$DEVICE" == cuda ]]; then
    timeout 50 "$PY" benchmarks/model_throughput.py --device cuda --batch-sizes 128 --convs attention \
        --steps 3 --timeout 40 || echo "B=128 benchmark failed or timed out (exit $?)"
fi

echo "== fine-tune of CellTOSGFM on $DEVICE (planted-signal cells on the human graph)"
timeout 90 "$PY" - "$DEVICE" "$PACK" <<'EOF' || echo "model fine-tune check failed or timed out (exit $?)"
import sys, time
import torch
from celltosg.kg import KnowledgeGraph
from celltosg.model import CellTOSGFM, FMConfig, graph_inputs

device = torch.device(sys.argv[1])
kg = KnowledgeGraph.load(sys.argv[2])
g = torch.Generator().manual_seed(0)
text = torch.randn(kg.n_nodes, 384, generator=g)
seq, mask = torch.randn(kg.n_nodes, 32, generator=g), torch.rand(kg.n_nodes, generator=g) < 0.5
graph = graph_inputs(kg, text, seq, mask)
n_markers = max(2, kg.n_rna // 20)  # each class over-expresses its own 5% of the genes
n_cells, n_train, epochs = 1024, 768, 6
markers = torch.randperm(kg.n_rna, generator=g)[: 4 * n_markers].view(4, n_markers)
labels = torch.randint(0, 4, (n_cells,), generator=g)
base = torch.log1p(torch.rand(n_cells, kg.n_rna, generator=g) * 5)
for shift in (1.0, 2.0):
    torch.manual_seed(0)
    model = CellTOSGFM(graph, FMConfig(n_classes=4)).to(device)
    x = base.clone()
    for c in range(4):
        rows = (labels == c).nonzero().squeeze(1)
        x[rows.unsqueeze(1), markers[c]] += shift
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3)
    start = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        for batch in torch.randperm(n_train, generator=g).split(32):
            logits = model(x[batch].to(device))["logits"]
            loss = torch.nn.functional.cross_entropy(logits, labels[batch].to(device))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(x[i:i + 64].to(device))["logits"].argmax(1).cpu()
                          for i in range(n_train, n_cells, 64)])
    accuracy = (pred == labels[n_train:]).float().mean()
    print(f"planted +{shift} log units: {epochs * n_train} cell-steps in {time.perf_counter() - start:.1f} s, "
          f"last train loss {loss.item():.3f}, test accuracy {accuracy:.3f} (chance 0.25)")
if device.type == "cuda":
    print(f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**20:.0f} MB")
EOF

echo "== celltosg.train.finetune (short run on a 2000-gene subgraph, if the package is importable)"
timeout 60 "$PY" - "$PACK" <<'EOF' || echo "celltosg.train.finetune check failed or timed out (exit $?)"
import sys, tempfile, time
import numpy as np
try:
    from celltosg.train import InMemoryCohort, finetune
except ImportError as error:
    raise SystemExit(f"skipped: celltosg.train is not importable here ({error})")
from celltosg.kg import KnowledgeGraph
from celltosg.model import FMConfig, graph_inputs

rng = np.random.default_rng(0)
kg = KnowledgeGraph.load(sys.argv[1])
kg = kg.subgraph(list(kg.rna_symbols[:2000]))
mask = rng.random(kg.n_nodes) < 0.5  # random frozen features: the text encoder need not be installed
graph = graph_inputs(kg, rng.normal(size=(kg.n_nodes, 384)), rng.normal(size=(kg.n_nodes, 32)), mask)
n = 300
labels = rng.integers(0, 3, n)
X = np.log1p(rng.random((n, kg.n_rna)) * 5).astype(np.float32)
for c in range(3):
    X[np.ix_(labels == c, rng.choice(kg.n_rna, max(2, kg.n_rna // 20), replace=False))] += 1.0
split = np.array(["train"] * 200 + ["val"] * 50 + ["test"] * 50)
cohort = InMemoryCohort(X, split, kg, labels=np.array([f"type{c}" for c in labels]))
start = time.perf_counter()
with tempfile.TemporaryDirectory() as out:
    result = finetune(cohort, task="cell_type", out_dir=out, config=FMConfig(), epochs=2, batch_size=32,
                      graph=graph)
test = result.metrics["test"]
print(f"celltosg.train.finetune: 2 epochs in {time.perf_counter() - start:.1f} s; "
      f"test accuracy {test['accuracy']:.3f}, macro-F1 {test['macro_f1']:.3f}")
EOF
echo "== done"
