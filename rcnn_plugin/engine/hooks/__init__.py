from .adapter_checkpoint_hook import AdapterCheckpointHook
from .config_doctor_hook import ConfigDoctorError, ConfigDoctorHook
from .run_summary_hook import RunSummaryHook
from .training_health_hook import TrainingHealthError, TrainingHealthHook

__all__ = [
    'AdapterCheckpointHook',
    'ConfigDoctorError',
    'ConfigDoctorHook',
    'RunSummaryHook',
    'TrainingHealthError',
    'TrainingHealthHook',
]
