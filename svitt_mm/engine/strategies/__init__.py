from .fully_shard_strategy import FullyShardStrategy
from .fully_sharded_model import FullyShardedModel

__all__ = ['FullyShardStrategy', 'FullyShardedModel']
