"""The fine-tune's checks of the classes across its splits."""
import pytest

from rcnn_plugin.apis.finetune.prepare import (
    FinetuneError,
    check_val_classes,
)


class _Split:
    """What the check reads of a dataset: data infos with instances."""

    def __init__(self, *labels):
        self.infos = [dict(instances=[dict(bbox_label=label)])
                      for label in labels]

    def __len__(self):
        return len(self.infos)

    def get_data_info(self, i):
        return self.infos[i]


def test_classes_across_train_and_val():
    classes = ('a', 'b', 'c')
    assert check_val_classes(_Split(0, 1, 2), _Split(0, 1, 2), classes) \
        is None
    with pytest.raises(FinetuneError, match=r"classes \['c'\] have objects "
                       'in the validation split'):
        check_val_classes(_Split(0, 1), _Split(0, 2), classes)
    assert "classes ['c'] have no object in the training or" in \
        check_val_classes(_Split(0, 1), _Split(0, 1), classes)
    # trained but never validated: mmdet's mAP leaves it out, so the best
    # checkpoint and early stopping ignored it without a word
    note = check_val_classes(_Split(0, 1, 2), _Split(0, 1), classes)
    assert "classes ['c'] have no object in the validation split" in note
    both = check_val_classes(_Split(0, 1), _Split(0), classes)  # not first
    assert "['c'] have no object in the training" in both
    assert "['b'] have no object in the validation" in both


def test_cfg_options_with_a_flag_of_their_own_are_refused():
    # --cfg-options train_dataloader.batch_size=16 kept the lr, epochs and
    # warm-up of batch 4 (and the printed line said batch 4)
    from rcnn_plugin.apis.finetune.prepare import check_cfg_options
    check_cfg_options(None)
    check_cfg_options({'model.rpn_head.anchor_generator.scales': [4]})
    for key, flag in (('train_dataloader.batch_size', '--batch-size'),
                      ('optim_wrapper.optimizer.lr', '--lr'),
                      ('train_cfg.max_epochs', '--epochs')):
        with pytest.raises(FinetuneError, match=f'{key}: use {flag}'):
            check_cfg_options({key: 1})
