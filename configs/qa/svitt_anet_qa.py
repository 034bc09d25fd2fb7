# Video QA on ActivityNet-QA: train / val / test splits, answers ranked from the answer list.
#   python tools/train.py configs/qa/svitt_anet_qa.py
_base_ = ['../_base_/qa_finetune.py']

anno = 'data/anet/anno'
videos = 'data/anet/videos'
answer_list = f'{anno}/anet_qa_answer_list.json'

model = dict(answer_list=answer_list)
train_dataloader = dict(dataset=dict(ann_file=f'{anno}/anet_qa_train.json', media_root=videos,
                                     answer_list=answer_list))
val_dataloader = dict(dataset=dict(ann_file=f'{anno}/anet_qa_val.json', media_root=videos,
                                   answer_list=answer_list))
test_dataloader = dict(dataset=dict(ann_file=f'{anno}/anet_qa_test.json', media_root=videos,
                                    answer_list=answer_list))

required_data_inputs = {
    'train_dataloader.dataset.ann_file': 'anet_qa_train.json: see docs/datasets.md#activitynet-qa',
    'val_dataloader.dataset.ann_file': 'anet_qa_val.json: see docs/datasets.md#activitynet-qa',
    'test_dataloader.dataset.ann_file': 'anet_qa_test.json: see docs/datasets.md#activitynet-qa',
    'model.answer_list': 'anet_qa_answer_list.json: see docs/datasets.md#activitynet-qa',
    'train_dataloader.dataset.media_root': 'ActivityNet videos: see docs/datasets.md#activitynet-qa',
}
