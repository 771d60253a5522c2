"""Config doctor: catch silent misconfigurations before training."""
from .context import DoctorContext, dataset_classes, prepare_registries
from .data_checks import check_empty_data, check_learning_rate
from .doctor import CHECKS, DATA_CHECKS, HOOK_CHECKS, run_checks
from .ema import check_ema, ema_momenta
from .evaluator import check_evaluator
from .finding import (
                          SEVERITIES,
                          Finding,
                          count_by_severity,
                          findings_to_json,
                          format_findings,
                          worst_severity,
)
from .model_checks import (
                          check_checkpoint_classes,
                          check_feature_strides,
                          check_num_classes,
                          measure_feature_strides,
)
from .normalisation import check_normalisation, known_convention
from .offline import (
                          OFFLINE_ENV,
                          cached_file,
                          check_offline,
                          has_network,
                          resolve_url,
)
from .sampler import check_sampler
from .schedule import check_schedule, train_length

__all__ = [
    'CHECKS', 'DATA_CHECKS', 'HOOK_CHECKS', 'OFFLINE_ENV', 'SEVERITIES',
    'DoctorContext', 'Finding', 'cached_file', 'check_checkpoint_classes',
    'check_ema', 'check_empty_data', 'check_evaluator',
    'check_feature_strides', 'check_learning_rate', 'check_normalisation',
    'check_num_classes', 'check_offline', 'check_sampler', 'check_schedule',
    'count_by_severity', 'dataset_classes', 'ema_momenta',
    'findings_to_json', 'format_findings', 'has_network', 'known_convention',
    'measure_feature_strides', 'prepare_registries', 'resolve_url',
    'run_checks', 'train_length', 'worst_severity'
]
