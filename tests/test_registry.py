"""Every public registered class resolves by name in mmdet's registries."""
import inspect

import pytest
from mmdet.registry import (
    DATA_SAMPLERS,
    DATASETS,
    HOOKS,
    LOOPS,
    METRICS,
    MODEL_WRAPPERS,
    MODELS,
    OPTIM_WRAPPERS,
    TASK_UTILS,
    TRANSFORMS,
)

import rcnn_plugin
from rcnn_plugin import datasets, engine, evaluation, models

EXPECTED = [
    (DATASETS, 'BCCDDataset', datasets.BCCDDataset),
    (DATASETS, 'StrictXMLDataset', datasets.StrictXMLDataset),
    (DATASETS, 'SyntheticCellsDataset', datasets.SyntheticCellsDataset),
    (DATASETS, 'YOLODataset', datasets.YOLODataset),
    (DATASETS, 'VIADataset', datasets.VIADataset),
    (DATASETS, 'LabelMeDataset', datasets.LabelMeDataset),
    (DATASETS, 'KittiDataset', datasets.KittiDataset),
    (TRANSFORMS, 'LoadDomainImageFromFile',
     datasets.transforms.LoadDomainImageFromFile),
    (TRANSFORMS, 'SeededCorrupt', datasets.transforms.SeededCorrupt),
    (TRANSFORMS, 'RandomCorrupt', datasets.transforms.RandomCorrupt),
    (TRANSFORMS, 'HEDJitter', datasets.transforms.HEDJitter),
    (DATASETS, 'BalloonDataset', datasets.BalloonDataset),
    (MODEL_WRAPPERS, 'DeviceAwareDistributedDataParallel',
     engine.DeviceAwareDistributedDataParallel),
    (HOOKS, 'ConfigDoctorHook', engine.ConfigDoctorHook),
    (HOOKS, 'TrainingHealthHook', engine.TrainingHealthHook),
    (DATASETS, 'ClassSubsetDataset', datasets.ClassSubsetDataset),
    (DATASETS, 'KShotDataset', datasets.KShotDataset),
    (DATASETS, 'CSVDataset', datasets.CSVDataset),
    (DATASETS, 'ImageSubsetDataset', datasets.ImageSubsetDataset),
    (DATASETS, 'SeededSplitDataset', datasets.SeededSplitDataset),
    (DATA_SAMPLERS, 'NegativeFractionSampler',
     datasets.NegativeFractionSampler),
    (MODELS, 'CosineSimLinear', models.CosineSimLinear),
    (MODELS, 'CosineSimBBoxHead', models.CosineSimBBoxHead),
    (TASK_UTILS, 'ClassBalancedPosSampler', models.ClassBalancedPosSampler),
    (TASK_UTILS, 'IgnoreNegativesAssigner', models.IgnoreNegativesAssigner),
    (MODELS, 'TorchvisionLevelRoIExtractor',
     models.TorchvisionLevelRoIExtractor),
    (MODELS, 'TorchvisionBackbone', models.TorchvisionBackbone),
    (MODELS, 'TorchvisionRPNHead', models.TorchvisionRPNHead),
    (TASK_UTILS, 'TorchvisionAnchorGenerator',
     models.TorchvisionAnchorGenerator),
    (HOOKS, 'AdapterCheckpointHook', engine.AdapterCheckpointHook),
    (MODELS, 'PEFTDetector', models.build_peft_detector),
    (MODELS, 'LoRAConv2d', models.LoRAConv2d),
    (MODELS, 'LoRALinear', models.LoRALinear),
    (MODELS, 'ConvAdapter', models.ConvAdapter),
    (MODELS, 'InputPrompt', models.InputPrompt),
    (MODELS, 'FeaturePrompt', models.FeaturePrompt),
    (HOOKS, 'RunSummaryHook', engine.RunSummaryHook),
    (HOOKS, 'CompileBackboneNeckHook', engine.CompileBackboneNeckHook),
    (HOOKS, 'ValLossHook', engine.ValLossHook),
    (HOOKS, 'OptunaPruningHook', engine.OptunaPruningHook),
    (HOOKS, 'EpochResultsHook', engine.EpochResultsHook),
    (HOOKS, 'LabelStatsHook', engine.LabelStatsHook),
    (HOOKS, 'EvalFiguresHook', engine.EvalFiguresHook),
    (HOOKS, 'ValPredictionsHook', engine.ValPredictionsHook),
    (HOOKS, 'SaliencyVisHook', engine.SaliencyVisHook),
    (HOOKS, 'DomainDetVisualizationHook', engine.DomainDetVisualizationHook),
    (HOOKS, 'CheckpointLinksHook', engine.CheckpointLinksHook),
    (HOOKS, 'ResumableEarlyStoppingHook', engine.ResumableEarlyStoppingHook),
    (METRICS, 'DetectionReport', evaluation.DetectionReport),
    (METRICS, 'ConfusionMatrixMetric', evaluation.ConfusionMatrixMetric),
    (METRICS, 'FROCMetric', evaluation.FROCMetric),
    (METRICS, 'PRCurveMetric', evaluation.PRCurveMetric),
    (METRICS, 'TIDEMetric', evaluation.TIDEMetric),
    (HOOKS, 'GroundTruthFrameHook', engine.GroundTruthFrameHook),
    (MODELS, 'TorchvisionRoIExtractor', models.TorchvisionRoIExtractor),
    (MODELS, 'ChannelsLastDetDataPreprocessor',
     models.ChannelsLastDetDataPreprocessor),
    (MODELS, 'FP32PostRPNHead', models.FP32PostRPNHead),
    (MODELS, 'FP32PostShared2FCBBoxHead', models.FP32PostShared2FCBBoxHead),
    (MODELS, 'SmallInitFCNMaskHead', models.SmallInitFCNMaskHead),
    (OPTIM_WRAPPERS, 'BF16AmpOptimWrapper', engine.BF16AmpOptimWrapper),
    (LOOPS, 'AdversarialEpochBasedTrainLoop',
     engine.AdversarialEpochBasedTrainLoop),
    (LOOPS, 'AdversarialIterBasedTrainLoop',
     engine.AdversarialIterBasedTrainLoop),
    (LOOPS, 'SlicedTestLoop', engine.SlicedTestLoop),
]


@pytest.mark.parametrize('registry,name,cls', EXPECTED,
                         ids=[e[1] for e in EXPECTED])
def test_resolves_in_mmdet_registry(registry, name, cls):
    assert registry.get(name) is cls
    assert registry.scope == 'mmdet'


def test_every_public_class_is_listed():
    """A new registered class must be added to EXPECTED above.

    Abstract bases (``Base*``, as in mmdet) are not registered.
    """
    listed = {cls for _, _, cls in EXPECTED}
    for module in (datasets, engine, evaluation, models):
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isclass(obj) and obj.__module__.startswith(
                    'rcnn_plugin') and not issubclass(obj, Exception) \
                    and not name.startswith('Base'):
                assert obj in listed, f'{name} is not in EXPECTED'


def test_version():
    assert rcnn_plugin.__version__ == '0.1.0'
