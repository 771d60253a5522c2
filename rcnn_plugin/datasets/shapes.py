"""Shapes from labelling tools as mmdet polygons (flat ``[x, y, ...]``).

All coordinates are absolute pixels. A polygon mask in mmdet is a list of
flat polygons ``[[x1, y1, x2, y2, ...], ...]`` (see ``PolygonMasks``).
"""
import math
from typing import List, Sequence

from .errors import AnnotationError

__all__ = [
    'check_numbers', 'ellipse_polygon', 'polygon_area', 'polygon_bbox',
    'rect_polygon'
]

ELLIPSE_POINTS = 24


def check_numbers(values: object, path: str, where: str,
                  min_len: int = 1) -> List[float]:
    """Return ``values`` as floats, or raise naming the key.

    Args:
        values (object): Expected to be a list of finite numbers.
        path (str): Annotation file, for errors.
        where (str): JSON key path, for errors.
        min_len (int): Minimum length. Defaults to 1.

    Returns:
        list[float]: The values.
    """
    if not isinstance(values, (list, tuple)) or len(values) < min_len:
        raise AnnotationError(path, f'expected a list of at least {min_len}'
                              f' numbers, got {values!r}'[:300], where)
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) \
                or not math.isfinite(v):
            raise AnnotationError(path, f'expected finite numbers, got '
                                  f'{v!r}'[:200], where)
        out.append(float(v))
    return out


def polygon_bbox(poly: Sequence[float]) -> List[float]:
    """Bounding box ``[x1, y1, x2, y2]`` of a flat polygon.

    Args:
        poly (Sequence[float]): Flat ``[x1, y1, x2, y2, ...]``.

    Returns:
        list[float]: The enclosing box.
    """
    xs, ys = poly[0::2], poly[1::2]
    return [min(xs), min(ys), max(xs), max(ys)]


def polygon_area(polygons: Sequence[Sequence[float]]) -> float:
    """Total area of flat polygons by the shoelace formula.

    Args:
        polygons (Sequence[Sequence[float]]): Flat ``[x1, y1, ...]`` each.

    Returns:
        float: Sum of the absolute areas.
    """
    total = 0.0
    for poly in polygons:
        xs, ys = poly[0::2], poly[1::2]
        n = len(xs)
        total += abs(sum(xs[i] * ys[(i + 1) % n] - xs[(i + 1) % n] * ys[i]
                         for i in range(n))) / 2
    return total


def rect_polygon(x1: float, y1: float, x2: float,
                 y2: float) -> List[float]:
    """The four corners of a box as a flat polygon (clockwise).

    Args:
        x1 (float): Left.
        y1 (float): Top.
        x2 (float): Right.
        y2 (float): Bottom.

    Returns:
        list[float]: ``[x1, y1, x2, y1, x2, y2, x1, y2]``.
    """
    return [x1, y1, x2, y1, x2, y2, x1, y2]


def ellipse_polygon(cx: float, cy: float, rx: float, ry: float,
                    theta: float = 0.0) -> List[float]:
    """Approximate an ellipse by a polygon of ``ELLIPSE_POINTS`` vertices.

    Args:
        cx (float): Centre x.
        cy (float): Centre y.
        rx (float): Radius along the (rotated) x axis.
        ry (float): Radius along the (rotated) y axis.
        theta (float): Rotation in radians. Defaults to 0.0.

    Returns:
        list[float]: Flat polygon.
    """
    c, s = math.cos(theta), math.sin(theta)
    poly = []
    for k in range(ELLIPSE_POINTS):
        a = 2 * math.pi * k / ELLIPSE_POINTS
        x, y = rx * math.cos(a), ry * math.sin(a)
        poly += [cx + c * x - s * y, cy + s * x + c * y]
    return poly
