# SViTT pretraining, stage 1 of the temporal sparse expansion curriculum (reference doc, sections 4.5,
# 5.2, 5.3): 4 frames, vision keep rate 0.7, ITC + ITM + MLM on WebVid-2M, zero-shot MSR-VTT 1k-A eval
# after every epoch. Starts from BEiT-base (2-D bias tiled over time) and BERT-base with its MLM head.
# Everything else (sparsity, lr 3e-5, 10 epochs, 1 warm-up epoch, min lr x0.01, batch 32 per GPU, text
# length 32, k_test 128) comes from configs/svitt_4f.py.
#   python tools/train.py configs/pretrain/svitt_webvid_4f.py
_base_ = ['../svitt_4f.py']

model = dict(
    type='VideoTextPretrainer',
    # BERT's MLM head (cls.predictions.*), its vocabulary projection tied to the word embeddings
    lm_head=dict(pretrained='data/pretrained/bert-base-uncased'),
    mlm_prob=0.5,
    loss_weights=dict(itc=1.0, itm=1.0, mlm=1.0),
)

required_pretrain_inputs = {
    'model.lm_head.pretrained':
        'BERT-base with its masked-LM head: `huggingface-cli download bert-base-uncased --local-dir '
        'data/pretrained/bert-base-uncased`',
}
