"""What a config check reports: a finding with severity and a fix."""
import json
from dataclasses import asdict, dataclass
from typing import Iterable, List

__all__ = ['SEVERITIES', 'Finding', 'count_by_severity', 'format_findings',
           'findings_to_json', 'worst_severity']

# Ordered from least to most severe.
SEVERITIES = ('info', 'warning', 'error')


@dataclass(frozen=True)
class Finding:
    """One problem (or remark) about a config.

    Args:
        check (str): Name of the check that found it, e.g.
            ``'feature_strides'``.
        severity (str): ``'error'`` (training would be wasted or fail),
            ``'warning'`` (probably a mistake) or ``'info'``.
        message (str): One line saying what is wrong and why it matters.
        fix (str): A concrete fix that names the config key to change.
        key (str): The config key at fault, dotted, e.g.
            ``'model.rpn_head.anchor_generator.strides'``. Defaults to ''.
    """

    check: str
    severity: str
    message: str
    fix: str
    key: str = ''

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f'severity must be one of {SEVERITIES}, got '
                             f'{self.severity!r}')

    def to_dict(self) -> dict:
        """Return the finding as a plain dict (for JSON).

        Returns:
            dict: ``check``, ``severity``, ``message``, ``fix``, ``key``.
        """
        return asdict(self)


def worst_severity(findings: Iterable[Finding]) -> str:
    """Return the highest severity among ``findings``, or '' if none.

    Args:
        findings (Iterable[Finding]): Findings of one or more checks.

    Returns:
        str: ``'error'``, ``'warning'``, ``'info'`` or ``''``.
    """
    ranks = [SEVERITIES.index(f.severity) for f in findings]
    return SEVERITIES[max(ranks)] if ranks else ''


def count_by_severity(findings: Iterable[Finding]) -> dict:
    """Count findings per severity.

    Args:
        findings (Iterable[Finding]): Findings to count.

    Returns:
        dict: Severity name to count, for every severity.
    """
    counts = {s: 0 for s in SEVERITIES}
    for f in findings:
        counts[f.severity] += 1
    return counts


def format_findings(findings: List[Finding]) -> str:
    """Render findings as plain text, most severe first.

    Args:
        findings (list[Finding]): Findings to render.

    Returns:
        str: One block per finding: severity, check, key, message, fix.
    """
    ordered = sorted(findings, key=lambda f: -SEVERITIES.index(f.severity))
    lines = []
    for f in ordered:
        where = f' ({f.key})' if f.key else ''
        lines.append(f'[{f.severity.upper()}] {f.check}{where}: {f.message}')
        lines.append(f'    fix: {f.fix}')
    return '\n'.join(lines)


def findings_to_json(findings: List[Finding], config: str = '') -> str:
    """Serialise findings with a summary, for ``--out report.json``.

    Args:
        findings (list[Finding]): Findings to write.
        config (str): The config file they are about. Defaults to ''.

    Returns:
        str: JSON with ``config``, ``summary`` (counts per severity) and
        ``findings`` (a list of dicts).
    """
    return json.dumps(
        dict(config=config, summary=count_by_severity(findings),
             findings=[f.to_dict() for f in findings]), indent=2)
