# SViTT's AdamW recipe (retrieval_adamw.py) with QA evaluation: MMEngine's stock loops call
# model.predict, which ranks the answer list; QAAccuracy scores the predictions.
_base_ = ['retrieval_adamw.py']

optim_wrapper = dict(paramwise_cfg=dict(custom_keys=dict(_delete_=True)))  # no contrastive temperature
val_cfg = dict(_delete_=True, type='ValLoop')
test_cfg = dict(_delete_=True, type='TestLoop')
val_evaluator = dict(_delete_=True, type='QAAccuracy')
test_evaluator = dict(_delete_=True, type='QAAccuracy')
