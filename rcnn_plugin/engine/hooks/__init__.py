from .adapter_checkpoint_hook import AdapterCheckpointHook
from .checkpoint_links_hook import CheckpointLinksHook
from .compile_backbone_neck_hook import CompileBackboneNeckHook
from .config_doctor_hook import ConfigDoctorError, ConfigDoctorHook
from .domain_visualization_hook import (
    DomainDetVisualizationHook,
    use_domain_visualization,
)
from .early_stopping_hook import ResumableEarlyStoppingHook
from .epoch_results_hook import EpochResultsHook
from .eval_figures_hook import EvalFiguresHook
from .label_stats_hook import LabelStatsHook
from .optuna_pruning_hook import OptunaPruningHook
from .run_summary_hook import RunSummaryHook
from .saliency_vis_hook import SaliencyVisHook
from .training_health_hook import TrainingHealthError, TrainingHealthHook
from .val_loss_hook import ValLossHook
from .val_predictions_hook import ValPredictionsHook

__all__ = [
    'AdapterCheckpointHook',
    'CompileBackboneNeckHook',
    'ConfigDoctorError',
    'ConfigDoctorHook',
    'DomainDetVisualizationHook',
    'RunSummaryHook',
    'SaliencyVisHook',
    'TrainingHealthError',
    'TrainingHealthHook',
    'CheckpointLinksHook',
    'EpochResultsHook',
    'EvalFiguresHook',
    'LabelStatsHook',
    'OptunaPruningHook',
    'ResumableEarlyStoppingHook',
    'ValLossHook',
    'ValPredictionsHook',
    'use_domain_visualization',
]
