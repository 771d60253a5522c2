from .config_doctor_hook import ConfigDoctorError, ConfigDoctorHook

__all__ = ['ConfigDoctorError', 'ConfigDoctorHook']
