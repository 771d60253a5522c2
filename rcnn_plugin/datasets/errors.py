"""One error type for malformed annotations, naming the file and place."""
from typing import Optional, Union

__all__ = ['AnnotationError', 'BadImageError']


class AnnotationError(ValueError):
    """An annotation file is malformed or refers to something that is absent.

    The message always starts with the file and, where it applies, the line
    number (``file:12``) or the JSON key (``file[regions][3]``).

    Args:
        path (str): The annotation file.
        problem (str): What is wrong and, ideally, how to fix it.
        where (int | str, optional): A 1-based line number or a JSON key
            path. Defaults to None.
    """

    def __init__(self,
                 path: str,
                 problem: str,
                 where: Optional[Union[int, str]] = None) -> None:
        self.path = path
        self.where = where
        self.problem = problem
        if where is None:
            place = path
        elif isinstance(where, int):
            place = f'{path}:{where}'
        else:
            place = f'{path} {where}'
        super().__init__(f'{place}: {problem}')


class BadImageError(AnnotationError):
    """An image that an annotation refers to is missing or unreadable.

    Datasets built with ``on_bad_image='skip'`` skip such images and count
    them instead of raising.
    """
