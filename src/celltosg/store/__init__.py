"""The TOSG store: sharded, compressed meta-cell expression with obs / var tables and a manifest."""

from celltosg.store._format import (
    DEFAULT_CHUNK_ROWS,
    DEFAULT_SHARD_ROWS,
    SCHEMA_VERSION,
    TARGET_SUM,
    shard_path,
    var_frame,
)
from celltosg.store._lock import store_lock
from celltosg.store._manifest import kg_reference, new_manifest, read_manifest, write_manifest
from celltosg.store._reader import TOSGStore
from celltosg.store._shard import open_shard_x, read_shard_obs, write_shard
from celltosg.store._verify import store_info, verify_store
from celltosg.store._writer import (
    create_store,
    discard_unstarted,
    finalize_store,
    input_finished,
    load_progress,
    prepare_obs,
    remove_unlisted_shards,
    safe_name,
    save_progress,
    write_shards,
)

__all__ = [
    "DEFAULT_CHUNK_ROWS",
    "DEFAULT_SHARD_ROWS",
    "SCHEMA_VERSION",
    "TARGET_SUM",
    "TOSGStore",
    "create_store",
    "discard_unstarted",
    "finalize_store",
    "input_finished",
    "kg_reference",
    "load_progress",
    "new_manifest",
    "open_shard_x",
    "prepare_obs",
    "read_manifest",
    "read_shard_obs",
    "remove_unlisted_shards",
    "safe_name",
    "save_progress",
    "shard_path",
    "store_info",
    "store_lock",
    "var_frame",
    "verify_store",
    "write_manifest",
    "write_shard",
    "write_shards",
]
