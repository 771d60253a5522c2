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
