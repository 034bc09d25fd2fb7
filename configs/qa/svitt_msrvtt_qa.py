# Video QA on MSRVTT-QA: train / val / test splits, answers ranked from the answer list.
#   python tools/train.py configs/qa/svitt_msrvtt_qa.py
_base_ = ['../_base_/qa_finetune.py']

anno = 'data/msrvtt/anno'
videos = 'data/msrvtt/videos'
answer_list = f'{anno}/msrvtt_qa_answer_list.json'

model = dict(answer_list=answer_list)
train_dataloader = dict(dataset=dict(ann_file=f'{anno}/msrvtt_qa_train.json', media_root=videos,
                                     answer_list=answer_list))
val_dataloader = dict(dataset=dict(ann_file=f'{anno}/msrvtt_qa_val.json', media_root=videos,
                                   answer_list=answer_list))
test_dataloader = dict(dataset=dict(ann_file=f'{anno}/msrvtt_qa_test.json', media_root=videos,
                                    answer_list=answer_list))

required_data_inputs = {
    'train_dataloader.dataset.ann_file': 'msrvtt_qa_train.json: see docs/datasets.md#msrvtt-qa',
    'val_dataloader.dataset.ann_file': 'msrvtt_qa_val.json: see docs/datasets.md#msrvtt-qa',
    'test_dataloader.dataset.ann_file': 'msrvtt_qa_test.json: see docs/datasets.md#msrvtt-qa',
    'model.answer_list': 'msrvtt_qa_answer_list.json: see docs/datasets.md#msrvtt-qa',
    'train_dataloader.dataset.media_root': 'MSR-VTT videos: see docs/datasets.md#msr-vtt',
}
