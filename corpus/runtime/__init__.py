"""Ray execution: plan check, actor pool, shard ledger, atomic commit, stats merge, progress."""
