from rcnn_plugin.utils.checkpoint import (
    TRUST_ENV,
    UnsafeCheckpointError,
    load_checkpoint_safely,
    register_safe_local_loader,
    safe_globals,
    trust_checkpoint,
)

from .checkpoint_io import (
    CorruptCheckpointError,
    compare_state_dicts,
    group_by_module,
    read_checkpoint,
)
from .hooks import (
    AdapterCheckpointHook,
    CheckpointLinksHook,
    CompileBackboneNeckHook,
    ConfigDoctorError,
    ConfigDoctorHook,
    EpochResultsHook,
    EvalFiguresHook,
    LabelStatsHook,
    OptunaPruningHook,
    ResumableEarlyStoppingHook,
    RunSummaryHook,
    SaliencyVisHook,
    TrainingHealthError,
    TrainingHealthHook,
    ValLossHook,
    ValPredictionsHook,
)
from .optimizers import BF16AmpOptimWrapper
from .runner import (
    AdversarialEpochBasedTrainLoop,
    AdversarialIterBasedTrainLoop,
    SlicedTestLoop,
)
from .wrappers import DeviceAwareDistributedDataParallel

__all__ = [
    'AdapterCheckpointHook',
    'CompileBackboneNeckHook',
    'ConfigDoctorError',
    'ConfigDoctorHook',
    'TrainingHealthError',
    'TrainingHealthHook',
    'compare_state_dicts',
    'group_by_module',
    'CorruptCheckpointError',
    'DeviceAwareDistributedDataParallel',
    'load_checkpoint_safely',
    'read_checkpoint',
    'register_safe_local_loader',
    'safe_globals',
    'trust_checkpoint',
    'TRUST_ENV',
    'UnsafeCheckpointError',
    'RunSummaryHook',
    'SaliencyVisHook',
    'BF16AmpOptimWrapper',
    'CheckpointLinksHook',
    'EpochResultsHook',
    'EvalFiguresHook',
    'LabelStatsHook',
    'OptunaPruningHook',
    'ResumableEarlyStoppingHook',
    'ValLossHook',
    'ValPredictionsHook',
    'AdversarialEpochBasedTrainLoop',
    'AdversarialIterBasedTrainLoop',
    'SlicedTestLoop',
]
