"""Walk a dataset folder once and sniff what its annotation files hold.

Sniffing reads at most the first 64 KB of a file: a finder that matches
then reads its files in full.
"""
import os
import os.path as osp
import re
from typing import Dict, Iterable, List, Optional, Sequence

from .base import LayoutError

__all__ = ['FolderIndex', 'IMG_EXTENSIONS', 'find_image_dir', 'read_head',
           'read_name_list', 'clean_stem', 'path_parts', 'image_prefix']

IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')
MAX_DEPTH = 5
_HEAD = 1 << 16
_NUM = r'[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?'
_YOLO_RE = re.compile(rf'^\d+((\s+{_NUM}){{4}}|(\s+{_NUM}){{6,}})\s*$')
_KITTI_RE = re.compile(rf'^\S*[A-Za-z_]\S*(\s+{_NUM}){{14,15}}\s*$')
# Stem parts that name the file's role, not its split.
_STEM_NOISE = re.compile(
    r'^(instances|annotations?|person_keypoints|labels?)[_-]|'
    r'([_-]?annotations?)?([._-]coco)?$|^_+', re.I)


def read_head(path: str, size: int = _HEAD) -> str:
    """The first ``size`` bytes of a file as text ('' if unreadable).

    Args:
        path (str): The file.
        size (int): Bytes to read. Defaults to 65536.

    Returns:
        str: The text, undecodable bytes replaced.
    """
    try:
        with open(path, 'rb') as f:
            return f.read(size).decode('utf-8-sig', errors='replace')
    except OSError:
        return ''


def path_parts(rel: str) -> List[str]:
    """Components of a relative path ('' gives none).

    Args:
        rel (str): A path relative to the data root.

    Returns:
        list[str]: Its folder and file names.
    """
    return [p for p in rel.replace('\\', '/').split('/') if p not in ('',
                                                                     '.')]


def clean_stem(path: str) -> str:
    """A file's stem without words like ``instances_`` or ``annotations``.

    Args:
        path (str): The file path.

    Returns:
        str: E.g. ``'val2017'`` for ``instances_val2017.json``, ``''`` for
        ``_annotations.coco.json``.
    """
    stem = osp.splitext(osp.basename(path))[0]
    prev = None
    while prev != stem:
        prev, stem = stem, _STEM_NOISE.sub('', stem)
    return stem


class FolderIndex:
    """Every file under a data root, and cached sniffs of their contents.

    Hidden folders are skipped and the walk stops 5 levels down.

    Args:
        root (str): The data root (absolute).
    """

    def __init__(self, root: str) -> None:
        self.root = root
        self.files: Dict[str, List[str]] = {}
        self._kinds: Dict[str, str] = {}

        def fail(err: OSError) -> None:
            raise LayoutError(
                f'cannot read the folder {err.filename}: {err.strerror}. '
                'Check the path and its permissions.')

        for path, dirs, names in os.walk(root, onerror=fail,
                                         followlinks=True):
            rel = osp.relpath(path, root)
            rel = '' if rel == '.' else rel
            deep = len(path_parts(rel)) >= MAX_DEPTH
            dirs[:] = [] if deep else sorted(
                d for d in dirs
                if not d.startswith('.') and d != '__pycache__')
            self.files[rel] = sorted(names)

    def abs(self, rel: str) -> str:
        """Absolute path of a path relative to the root.

        Args:
            rel (str): Relative path.

        Returns:
            str: The absolute path.
        """
        return osp.join(self.root, rel) if rel else self.root

    def with_ext(self, *exts: str) -> List[str]:
        """Relative paths of the files with one of these extensions.

        Args:
            *exts (str): Lower-case extensions with the dot.

        Returns:
            list[str]: Sorted relative paths.
        """
        return [osp.join(d, n) for d, names in sorted(self.files.items())
                for n in names if n.lower().endswith(exts)]

    def named(self, names: Iterable[str]) -> List[str]:
        """Relative paths of files with one of these names, nearest the
        root first (then alphabetical).

        Args:
            names (Iterable[str]): File names, compared case-insensitively.

        Returns:
            list[str]: Relative paths.
        """
        wanted = {n.lower() for n in names}
        found = [osp.join(d, n) for d, files in self.files.items()
                 for n in files if n.lower() in wanted]
        return sorted(found, key=lambda p: (len(path_parts(p)), p))

    def images(self, rel_dir: str) -> List[str]:
        """Image file names directly in a folder.

        Args:
            rel_dir (str): Folder relative to the root.

        Returns:
            list[str]: File names.
        """
        return [n for n in self.files.get(rel_dir, ())
                if n.lower().endswith(IMG_EXTENSIONS)]

    def image_dirs(self) -> List[str]:
        """Folders that hold images, nearest the root first.

        Returns:
            list[str]: Relative folder paths.
        """
        dirs = [d for d in self.files if self.images(d)]
        return sorted(dirs, key=lambda d: (len(path_parts(d)), d))

    def kind(self, rel: str) -> str:
        """What an annotation file holds, from its first 64 KB (cached).

        Args:
            rel (str): The file, relative to the root.

        Returns:
            str: ``'yolo'``, ``'yolo-poly'``, ``'kitti'``, ``'empty'``,
            ``'coco'``, ``'via'``, ``'labelme'``, ``'voc'`` or ``'other'``.
        """
        if rel not in self._kinds:
            self._kinds[rel] = _sniff(self.abs(rel))
        return self._kinds[rel]


def _sniff(path: str) -> str:
    ext = osp.splitext(path)[1].lower()
    head = read_head(path)
    if ext == '.txt':
        return _sniff_txt(head)
    if ext == '.xml':
        return 'voc' if re.search(r'<annotation[\s>]', head[:4096]) \
            else 'other'
    if ext == '.json':
        return _sniff_json(head)
    return 'other'


def _sniff_txt(head: str) -> str:
    lines = [line.strip() for line in head.splitlines()[:50]
             if line.strip()]
    if head and len(head) == _HEAD and lines:
        lines = lines[:-1]  # the last line may be cut
    if not lines:
        return 'empty'
    if all(_YOLO_RE.match(line) for line in lines):
        poly = any(len(line.split()) > 5 for line in lines)
        return 'yolo-poly' if poly else 'yolo'
    if all(_KITTI_RE.match(line) for line in lines):
        return 'kitti'
    return 'other'


def _sniff_json(head: str) -> str:
    if '"_via_img_metadata"' in head:
        return 'via'
    if '"shapes"' in head and ('"imagePath"' in head or '"points"' in head):
        return 'labelme'
    if re.search(r'"images"\s*:\s*\[', head) or re.search(
            r'"annotations"\s*:\s*\[\s*\{[^]]*"(bbox|category_id)"', head):
        return 'coco'
    if '"regions"' in head and '"filename"' in head:
        return 'via'
    return 'other'


def find_image_dir(index: FolderIndex, refs: Sequence[str],
                   near: Sequence[str]) -> Optional[str]:
    """The folder in which every referenced image exists.

    Args:
        index (FolderIndex): The folder index.
        refs (Sequence[str]): Image references as the annotations write
            them (file names or paths relative to the image folder).
        near (Sequence[str]): Folders to try first (relative to the root),
            then every folder with images, nearest the root first.

    Returns:
        str | None: The folder relative to the root, or None.
    """
    refs = [r.replace('\\', '/') for r in refs if r][:5]
    tried = set()
    for cand in list(near) + index.image_dirs():
        cand = osp.normpath(cand) if cand else ''
        cand = '' if cand == '.' else cand
        if cand in tried or cand.startswith('..'):
            continue
        tried.add(cand)
        if all(osp.isfile(osp.join(index.abs(cand), r)) for r in refs):
            return cand
    return None


def _near(rel: str, split: str) -> List[str]:
    folder = osp.dirname(rel)
    parent = osp.dirname(folder)
    return [folder, '', parent, split, osp.join('images', split), 'images',
            osp.join(folder, 'images'), osp.join(parent, 'images')]


def image_prefix(index: FolderIndex, rel: str, split: str,
                 refs: List[str]) -> str:
    """The image folder of an annotation file, as a ``data_prefix``.

    Args:
        index (FolderIndex): The folder index.
        rel (str): The annotation file, relative to the root.
        split (str): Its split name (a folder of that name is tried).
        refs (list[str]): Image references from the file.

    Returns:
        str: The folder relative to the root, with a trailing slash
        (``''`` for the root itself).
    """
    img = find_image_dir(index, refs, _near(rel, split))
    if img is None:
        raise LayoutError(
            f'{index.abs(rel)} refers to images such as {refs[:2]}, which '
            f'are in none of the folders under {index.root}. Move the '
            'images beside the annotation file (or into images/), or fix '
            'the file names in it.')
    return img + '/' if img else ''


def read_name_list(path: str) -> List[str]:
    """Class names, one per line, without LabelMe's ``__ignore__`` and
    ``_background_`` entries.

    Args:
        path (str): A ``labels.txt`` or ``classes.txt``.

    Returns:
        list[str]: The names in file order.
    """
    names = [line.strip() for line in read_head(path, 1 << 20).splitlines()]
    return [n for n in names if n and n not in ('__ignore__', '_background_')]
