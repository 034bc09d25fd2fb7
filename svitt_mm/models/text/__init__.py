from .answer_decoder import AnswerDecoder, decoder_arch_from
from .bert_fusion_encoder import BertFusionEncoder, FusionOutput
from .bert_layers import BertAttention, BertEmbeddings, BertLayer, init_bert_style
from .bert_weights import bert_key_to_ours, load_bert_weights, read_bert_config, read_bert_state_dict
from .lm_head import LanguageModelHead
from .mlm_masking import IGNORE_INDEX, mask_tokens

__all__ = ['AnswerDecoder', 'decoder_arch_from', 'BertFusionEncoder', 'FusionOutput', 'BertAttention',
           'BertEmbeddings', 'BertLayer', 'init_bert_style', 'LanguageModelHead',
           'bert_key_to_ours', 'load_bert_weights', 'read_bert_config', 'read_bert_state_dict',
           'IGNORE_INDEX', 'mask_tokens']
