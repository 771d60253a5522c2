"""Corruptions: every one works on NumPy 2, seeded, placed after loading."""
import numpy as np
import pytest

pytest.importorskip('imagecorruptions', reason='the robustness extra is not '
                    'installed (pip install -e ".[robustness]")')

from rcnn_plugin.datasets.transforms import (  # noqa: E402
    HEDJitter,
    RandomCorrupt,
    SeededCorrupt,
    check_severities,
    corrupt,
    insert_after_loading,
    resolve_corruptions,
)
from rcnn_plugin.datasets.transforms.corruptions import (  # noqa: E402
    BENCHMARK,
    GROUPS,
    HOLDOUT,
    patch_imagecorruptions,
)


def _img(h=48, w=64, seed=0):
    return (np.random.RandomState(seed).rand(h, w, 3) * 255).astype(np.uint8)


def test_groups_follow_the_benchmark_protocol():
    assert len(BENCHMARK) == 15 and len(HOLDOUT) == 4
    assert not set(BENCHMARK) & set(HOLDOUT)
    assert resolve_corruptions(['noise', 'fog', 'gaussian_noise']) == [
        'gaussian_noise', 'shot_noise', 'impulse_noise', 'fog']
    assert resolve_corruptions('all') == list(BENCHMARK + HOLDOUT)


def test_unknown_names_and_severities_list_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown corruption 'fogg'.*"
                       r'gaussian_noise.*groups: benchmark, holdout'):
        resolve_corruptions(['fogg'])
    for bad in (-1, 6, 2.5, True):
        with pytest.raises(ValueError, match=r'severities are 0 \(clean\)'):
            check_severities([bad])


@pytest.mark.parametrize('name', GROUPS['all'])
def test_every_corruption_runs_is_seeded_and_keeps_shape(name):
    img = _img()
    a = corrupt(img, name, 3, seed=0, key='a.jpg')
    b = corrupt(img, name, 3, seed=0, key='a.jpg')
    assert a.shape == img.shape and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert (a != img).any()


@pytest.mark.parametrize('severity', [1, 2, 3, 4, 5])
def test_glass_blur_is_bit_identical_to_the_package(severity):
    from PIL import Image
    lib = patch_imagecorruptions()
    fast = lib.corruption_dict['glass_blur']
    assert lib.corruptions.glass_blur is fast
    assert fast in lib.corruption_tuple
    img = Image.fromarray(_img()[:45, :52])
    np.random.seed(7)
    expected = fast.original(img, severity)
    after_original = np.random.get_state()[1]
    np.random.seed(7)
    np.testing.assert_array_equal(fast(img, severity), expected)
    # the same draws were taken: the global state ends in the same place
    np.testing.assert_array_equal(np.random.get_state()[1], after_original)


def test_severity_zero_is_the_clean_image_and_state_is_restored():
    img = _img()
    np.testing.assert_array_equal(corrupt(img, 'fog', 0, seed=0), img)
    np.random.seed(123)
    expected = np.random.rand()
    np.random.seed(123)
    corrupt(img, 'gaussian_noise', 5, seed=7, key='x')
    assert np.random.rand() == expected  # the global stream is untouched


def test_grayscale_and_non_uint8():
    gray = _img()[..., 0]
    assert corrupt(gray, 'contrast', 2, seed=0).shape == gray.shape
    with pytest.raises(ValueError, match='uint8'):
        corrupt(_img().astype(np.uint16), 'contrast', 2)


def test_seeded_corrupt_differs_per_image_not_per_run():
    t = SeededCorrupt('gaussian_noise', 2, seed=1)
    img = _img()
    a = t(dict(img=img.copy(), img_path='a.jpg'))['img']
    a2 = t(dict(img=img.copy(), img_path='a.jpg'))['img']
    b = t(dict(img=img.copy(), img_path='b.jpg'))['img']
    np.testing.assert_array_equal(a, a2)
    assert (a != b).any()
    assert 'gaussian_noise' in repr(t)
    # folder and file name key the draws, not where the data or the clone
    # lies; another folder's image of the same name draws its own
    here = t(dict(img=img.copy(), img_path='/work/data/seq1/a.jpg'))['img']
    moved = t(dict(img=img.copy(), img_path='/tmp/y/data/seq1/a.jpg'))['img']
    np.testing.assert_array_equal(here, moved)
    other = t(dict(img=img.copy(), img_path='/work/data/seq2/a.jpg'))['img']
    assert (other != here).any()


def test_random_corrupt_refuses_benchmark_corruptions_by_default():
    with pytest.raises(ValueError, match=r"\['fog'\] are benchmark"):
        RandomCorrupt(['fog'])
    RandomCorrupt(['fog'], allow_benchmark=True)
    with pytest.raises(ValueError, match='severities must be 1 to 5'):
        RandomCorrupt(severities=[0, 1])
    t = RandomCorrupt(prob=1.0)
    np.random.seed(0)
    img = _img()
    assert (t(dict(img=img.copy()))['img'] != img).any()
    np.testing.assert_array_equal(
        RandomCorrupt(prob=0.0)(dict(img=img.copy()))['img'], img)


def test_insert_after_loading_wherever_it_is():
    pipe = [dict(type='mmdet.LoadAnnotations'), dict(type='Resize'),
            dict(type='mmdet.LoadImageFromFile'), dict(type='PackDetInputs')]
    out = insert_after_loading(pipe, dict(type='SeededCorrupt'))
    assert [t['type'] for t in out] == [
        'mmdet.LoadAnnotations', 'Resize', 'mmdet.LoadImageFromFile',
        'SeededCorrupt', 'PackDetInputs']
    assert len(pipe) == 4  # a copy
    with pytest.raises(ValueError, match=r'test_dataloader.dataset.pipeline '
                       'has no image-loading step'):
        insert_after_loading(pipe[:2], dict(type='SeededCorrupt'),
                             'test_dataloader.dataset.pipeline')


def test_hed_jitter():
    img = _img()
    same = HEDJitter(sigma=0, bias=0, prob=1.0)(dict(img=img.copy()))['img']
    np.testing.assert_array_equal(same, img)  # the round trip is exact
    np.random.seed(0)
    out = HEDJitter(sigma=0.1, bias=0.1, prob=1.0)(dict(img=img.copy()))
    assert out['img'].dtype == np.uint8 and (out['img'] != img).any()
    np.testing.assert_array_equal(
        HEDJitter(prob=0.0)(dict(img=img.copy()))['img'], img)
    with pytest.raises(ValueError, match='sigma must be in'):
        HEDJitter(sigma=1.5)
    with pytest.raises(ValueError, match='HxWx3 uint8'):
        HEDJitter(prob=1.0)(dict(img=img[..., 0], img_path='g.png'))
    with pytest.raises(ValueError, match="od must be one of"):
        HEDJitter(od='log10')


@pytest.mark.parametrize('od', ['tellez', 'skimage'])
def test_hed_jitter_scale_follows_the_reference(od):
    """The jitter of Tellez et al.'s code (scikit-image < 0.19's rgb2hed,
    ``-ln(rgb + 2)``) or of scikit-image >= 0.19 (``ln(rgb) / ln(1e-6)``),
    computed here from the stain matrix with the same draws."""
    from skimage import color
    img = _img()
    same = HEDJitter(sigma=0, bias=0, prob=1.0, od=od)(dict(img=img.copy()))
    np.testing.assert_array_equal(same['img'], img)
    np.random.seed(3)
    out = HEDJitter(sigma=0.05, bias=0.05, prob=1.0, od=od)(
        dict(img=img.copy()))['img']
    np.random.seed(3)
    np.random.rand()  # the prob draw
    alpha = np.random.uniform(0.95, 1.05, 3)
    beta = np.random.uniform(-0.05, 0.05, 3)
    rgb = img[..., ::-1].reshape(-1, 3) / 255
    conv = np.linalg.inv(color.rgb_from_hed)
    if od == 'tellez':
        stains = np.dot(-np.log(rgb + 2), conv) * alpha + beta
        ref = np.exp(-np.dot(stains, color.rgb_from_hed)) - 2
    else:
        adjust = np.log(1e-6)
        stains = np.dot(np.log(np.maximum(rgb, 1e-6)) / adjust, conv)
        ref = np.exp(np.dot(stains * alpha + beta, color.rgb_from_hed)
                     * adjust)
    ref = np.clip(np.rint(ref * 255), 0, 255).reshape(img.shape)[..., ::-1]
    assert np.abs(out.astype(int) - ref).max() <= 1
    assert (out != img).any()


@pytest.mark.parametrize('config', [
    'bccd/faster-rcnn_mobilenetv2_fpn-128_corrupt-aug-8e_bccd.py',
    'kitti/faster-rcnn_mobilenetv2_fpn-128_corrupt-aug-48e_kitti-yolo.py'])
def test_corruption_aware_configs_build_their_augmentation(config):
    from mmdet.registry import TRANSFORMS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from conftest import REPO
    init_default_scope('mmdet')
    cfg = Config.fromfile(f'{REPO}/configs/{config}')
    pipeline = cfg.train_dataloader.dataset.pipeline
    assert pipeline[0].type == 'LoadImageFromFile'
    aug = TRANSFORMS.build(pipeline[1])
    kinds = [type(t).__name__ for t in aug.transforms]
    assert 'RandomCorrupt' in kinds
    corrupt_ = aug.transforms[kinds.index('RandomCorrupt')]
    assert not set(corrupt_.corruptions) & set(BENCHMARK)
    np.random.seed(0)
    for _ in range(3):
        out = aug(dict(img=_img(), img_path='x.jpg'))
        assert out['img'].shape == (48, 64, 3)
