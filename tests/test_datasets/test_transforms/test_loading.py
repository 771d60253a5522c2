"""LoadDomainImageFromFile on files of each kind, written by the test."""
import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from rcnn_plugin.datasets import read_image_size
from rcnn_plugin.datasets.transforms import (
    LoadDomainImageFromFile,
    scale_intensity,
)

RAMP16 = (np.arange(12, dtype=np.uint16).reshape(3, 4) * 5000)


def _load(path, **kwargs):
    return LoadDomainImageFromFile(**kwargs)(dict(img_path=str(path)))


def test_8bit_rgb_matches_cv2(tmp_path):
    img = np.random.default_rng(0).integers(0, 255, (5, 7, 3), np.uint8)
    cv2.imwrite(str(tmp_path / 'a.png'), img)
    out = _load(tmp_path / 'a.png')
    assert out['img'].dtype == np.uint8
    assert np.array_equal(out['img'], img)
    assert out['img_shape'] == out['ori_shape'] == (5, 7)
    assert out['img_dtype'] == 'uint8'


def test_grayscale_and_rgba_give_three_channels(tmp_path):
    Image.fromarray(np.full((4, 6), 77, np.uint8)).save(tmp_path / 'g.png')
    rgba = np.zeros((4, 6, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 10  # red, nearly transparent
    Image.fromarray(rgba, 'RGBA').save(tmp_path / 'c.png')
    grey = _load(tmp_path / 'g.png')['img']
    assert grey.shape == (4, 6, 3) and (grey == 77).all()
    color = _load(tmp_path / 'c.png')['img']
    assert color.shape == (4, 6, 3)
    assert (color[..., 2] == 200).all() and (color[..., :2] == 0).all()
    single = _load(tmp_path / 'c.png', color_type='grayscale')['img']
    assert single.shape == (4, 6)
    assert int(single[0, 0]) == round(200 * 0.299)  # rounded, as cv2


@pytest.mark.parametrize('ext', ['png', 'tif'])
def test_16bit_full_range_fixed_window_and_percentiles(tmp_path, ext):
    path = tmp_path / f'a.{ext}'
    cv2.imwrite(str(path), RAMP16)
    full = _load(path)
    assert full['img_dtype'] == 'uint16'
    expected = np.round(RAMP16 / 65535 * 255).astype(np.uint8)
    assert np.array_equal(full['img'][..., 0], expected)
    window = _load(path, value_range=(5000, 15000))['img'][..., 0]
    assert window[0].tolist() == [0, 0, 128, 255]
    assert (window[1:] == 255).all()
    pct = _load(path, percentiles=(0, 100), to_float32=True)['img']
    assert pct.dtype == np.float32
    assert pct[0, 0, 0] == 0 and pct[-1, -1, 0] == pytest.approx(255)


def test_16bit_rgb_tiff_keeps_channel_order(tmp_path):
    img = np.zeros((2, 3, 3), np.uint16)
    img[..., 0] = 65535  # blue in cv2's BGR order
    cv2.imwrite(str(tmp_path / 'a.tif'), img)
    out = _load(tmp_path / 'a.tif')['img']
    assert (out[..., 0] == 255).all() and (out[..., 1:] == 0).all()


@pytest.mark.parametrize('orientation', range(1, 9))
def test_exif_orientation_matches_pil(tmp_path, orientation):
    arr = np.random.default_rng(1).integers(0, 255, (6, 10, 3), np.uint8)
    img = Image.fromarray(arr)
    exif = img.getexif()
    exif[0x0112] = orientation
    path = tmp_path / 'a.jpg'
    img.save(path, exif=exif, quality=100)
    with Image.open(path) as pil:
        expected = np.asarray(ImageOps.exif_transpose(pil))[..., ::-1]
    out = _load(path)['img']
    assert out.shape == expected.shape
    assert np.abs(out.astype(int) - expected).max() <= 1
    assert read_image_size(str(path), 'x') == (out.shape[1], out.shape[0])
    raw = _load(path, apply_exif=False)['img']
    assert raw.shape == (6, 10, 3)


@pytest.mark.parametrize('orientation', [3, 6])
@pytest.mark.parametrize('fmt', ['TIFF', 'PNG'])
def test_orientation_as_mmdets_loader_turns_it(tmp_path, fmt, orientation):
    # OpenCV turns TIFFs itself (even with IMREAD_UNCHANGED): the loader
    # turned them a second time (upside down, or mirrored). PNG's eXIf is
    # applied where this OpenCV applies it for mmdet's loader.
    from mmdet.registry import TRANSFORMS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    arr = np.random.default_rng(2).integers(0, 255, (6, 10, 3), np.uint8)
    img = Image.fromarray(arr)
    path = tmp_path / f'a.{fmt.lower()}'
    if fmt == 'TIFF':
        img.save(path, tiffinfo={0x0112: orientation})
    else:
        exif = Image.Exif()
        exif[0x0112] = orientation
        img.save(path, exif=exif.tobytes())
    stock = TRANSFORMS.build(dict(type='LoadImageFromFile'))(
        dict(img_path=str(path)))['img']
    ours = _load(path)['img']
    assert np.array_equal(ours, stock)
    assert read_image_size(str(path), 'x') == (ours.shape[1],
                                                ours.shape[0])
    if fmt == 'TIFF':
        with Image.open(path) as pil:
            upright = np.asarray(ImageOps.exif_transpose(pil))[..., ::-1]
        assert np.array_equal(ours, upright)


def _png_chunks(data):
    """The chunks of a PNG file, each with its length, type and CRC."""
    out, i = [], 8
    while i < len(data):
        n = int.from_bytes(data[i:i + 4], 'big')
        out.append(data[i:i + 12 + n])
        i += 12 + n
    return out


@pytest.mark.parametrize('after_pixels', [False, True])
def test_png_size_is_read_without_decoding(tmp_path, monkeypatch,
                                           after_pixels):
    # PIL's getexif decoded the whole PNG to look for an eXIf chunk after
    # the pixel data (1.4 ms for a 640x480 PNG, more for big ones): index
    # building decoded every PNG. OpenCV applies eXIf before or after IDAT.
    from PIL import ImageFile
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / 'a.png'
    Image.new('RGB', (10, 6)).save(path, exif=exif.tobytes())
    if after_pixels:
        chunks = _png_chunks(path.read_bytes())
        exif_chunk = next(c for c in chunks if c[4:8] == b'eXIf')
        rest = [c for c in chunks if c[4:8] != b'eXIf']
        path.write_bytes(path.read_bytes()[:8] + b''.join(rest[:-1]) +
                         exif_chunk + rest[-1])
    shape = cv2.imread(str(path)).shape  # as mmdet's loader reads it
    monkeypatch.setattr(ImageFile.ImageFile, 'load', lambda self: 1 / 0)
    assert read_image_size(str(path), 'x') == (shape[1], shape[0])


def test_grey_ramp_and_signed_and_nodata_windows(tmp_path):
    # a neutral grey ramp stays itself (truncation made 16 levels darker)
    ramp = np.repeat(np.arange(256, dtype=np.uint8)[:, None, None], 3, 2)
    cv2.imwrite(str(tmp_path / 'r.png'), ramp)
    grey = _load(tmp_path / 'r.png', color_type='grayscale')['img']
    assert np.array_equal(grey[:, 0], np.arange(256))
    # int16: the full signed range (negatives were clipped to 0)
    signed = np.array([[-32768, 0, 32767]], np.int16)
    out = scale_intensity(signed)
    assert out.tolist() == [[0, 128, 255]]
    # float with NaN (nodata): black, and left out of the window
    img = np.array([[0.0, 0.5, 1.0, np.nan]], np.float32)
    assert scale_intensity(img).tolist() == [[0, 128, 255, 0]]
    assert scale_intensity(img, percentiles=(0, 100)).tolist() == [
        [0, 128, 255, 0]]
    assert scale_intensity(np.full((1, 2), np.nan, np.float32)).tolist() \
        == [[0, 0]]


def test_an_image_above_pils_pixel_limit_is_read(tmp_path, monkeypatch):
    # PIL's DecompressionBombError (not an OSError) escaped as a traceback
    # for whole-slide sized images, which OpenCV decodes.
    arr = np.zeros((5, 7, 3), np.uint8)
    Image.fromarray(arr).save(tmp_path / 'big.jpg')
    monkeypatch.setattr(Image, 'MAX_IMAGE_PIXELS', 10)
    assert _load(tmp_path / 'big.jpg')['img'].shape == (5, 7, 3)
    assert read_image_size(str(tmp_path / 'big.jpg'), 'x') == (7, 5)
    assert Image.MAX_IMAGE_PIXELS == 10  # the limit is put back


def test_bad_arguments_and_files(tmp_path):
    with pytest.raises(ValueError, match='not both'):
        LoadDomainImageFromFile(value_range=(0, 1), percentiles=(1, 99))
    with pytest.raises(ValueError, match='low < high'):
        LoadDomainImageFromFile(value_range=(5, 5))
    (tmp_path / 'x.png').write_bytes(b'not an image')
    with pytest.raises(OSError, match='cannot decode'):
        _load(tmp_path / 'x.png')
    # As LoadImageFromFile: None for the dataset to draw another image.
    assert _load(tmp_path / 'x.png', ignore_empty=True) is None
    assert _load(tmp_path / 'gone.png', ignore_empty=True) is None
    with pytest.raises(FileNotFoundError):
        _load(tmp_path / 'gone.png')


def test_swaps_for_load_image_from_file_by_type_alone(tmp_path):
    # mmdet's base pipelines pass backend_args to the loader: changing only
    # the type used to be a TypeError.
    from mmdet.registry import TRANSFORMS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    img = np.random.default_rng(0).integers(0, 255, (5, 7, 3), np.uint8)
    cv2.imwrite(str(tmp_path / 'a.png'), img)
    step = dict(type='LoadImageFromFile', backend_args=None)
    plain = TRANSFORMS.build(step)(dict(img_path=str(tmp_path / 'a.png')))
    ours = TRANSFORMS.build(dict(step, type='LoadDomainImageFromFile'))(
        dict(img_path=str(tmp_path / 'a.png')))
    assert np.array_equal(ours['img'], plain['img'])


def test_scale_intensity_constant_image():
    out = scale_intensity(np.full((2, 2), 7, np.uint16), percentiles=(1, 99))
    assert out.dtype == np.uint8 and (out == 0).all()
