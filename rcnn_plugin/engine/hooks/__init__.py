from .adapter_checkpoint_hook import AdapterCheckpointHook
from .config_doctor_hook import ConfigDoctorError, ConfigDoctorHook

__all__ = ['AdapterCheckpointHook', 'ConfigDoctorError', 'ConfigDoctorHook']
