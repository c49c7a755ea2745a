"""``mattecli compose``: Composition-1k-style datasets, bit-exact, parallel, resumable.

``compose_dataset(ComposeOptions(...)) -> ComposeSummary`` is the one entry point; the CLI
and ``mattecli demo`` both call it.
"""
from mattecli.compose.options import ComposeOptions, parse_range
from mattecli.shards import parse_shard
from mattecli.compose.run import ComposeSummary, compose_dataset

__all__ = ["ComposeOptions", "ComposeSummary", "compose_dataset", "parse_range", "parse_shard"]
