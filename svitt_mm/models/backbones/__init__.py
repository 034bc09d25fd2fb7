from .beit_weights import inflate_relative_position_table, load_beit_weights
from .frame_bag import FrameBagEncoder
from .relative_position_bias import RelativePositionBias3D, RelativePositionIndex
from .token_order import TOKEN_ORDERS, token_order
from .video_beit import VideoBEiT, VideoEncoderOutput

__all__ = ['VideoBEiT', 'VideoEncoderOutput', 'FrameBagEncoder', 'RelativePositionBias3D',
           'RelativePositionIndex', 'TOKEN_ORDERS', 'token_order', 'load_beit_weights',
           'inflate_relative_position_table']
