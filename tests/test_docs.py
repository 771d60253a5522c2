"""The README is a short hub, and the manual in docs/ holds together.

- Every relative link in README.md, docs/*.md, configs/*/README.md and
  projects/**/README.md resolves to a file, and every ``#anchor`` into a
  markdown file names one of its headings (GitHub's slug rules).
- The README has at most ``MAX_README_LINES`` lines.
- Every command of the README's quick start is run by a test:
  ``QUICK_START_TESTS`` maps each command's entry point (``make demo``,
  ``tools/finetune.py``) to the tests or CI script that run it. A command
  added to the quick start without an entry fails here, and so does an
  entry whose test file or function does not exist.
- The messages that docs/faq.md quotes still exist in the code.
"""
import ast
import glob
import os.path as osp
import re
import shlex
from functools import cache
from typing import Dict, List, Optional, Tuple
from urllib.parse import unquote

import pytest

from conftest import REPO

README = osp.join(REPO, 'README.md')
MAX_README_LINES = 260
# The README sections whose ```bash blocks are the quick start.
QUICK_START_SECTIONS = ('Quick start: two commands',
                        'Fine-tune on your own data in one command')
# Entry point of a quick-start command -> where it is run:
# (path[::test function], text that place must contain).
QUICK_START_TESTS: Dict[str, List[Tuple[str, str]]] = {
    # CI runs the suite in a fresh clone.
    'make test': [('.ci/run', 'make test')],
    # CI runs the demo after the tests (it fails below mAP@0.5 0.9); the
    # recipe test trains the demo's config on shrunk images.
    'make demo': [
        ('.ci/run', 'make demo'),
        ('tests/test_recipes/test_demo_recipe.py::'
         'test_demo_recipe_trains_stably',
         'faster-rcnn_mobilenetv2_fpn-128_4e_synthetic-cells.py'),
    ],
    # A generated YOLO folder, trained for 2 epochs through the script.
    'tools/finetune.py': [
        ('tests/test_tools/test_finetune.py::'
         'test_yolo_folder_trains_and_writes_the_run_folder',
         'finetune.py'),
    ],
}
# Literal fragments of the messages that docs/faq.md quotes, and the
# package whose source holds them ('' = rcnn_plugin/ and tools/).
FAQ_MESSAGES: List[Tuple[str, str]] = [
    ('is not in the dataset classes', ''),
    ('Class names are case-sensitive', ''),
    ('set class_attribute (the region attribute that', ''),
    ('labels mean different things in training and evaluation', ''),
    ('classifier outputs no label uses', ''),
    ('the classifier loads without a warning but its', ''),
    ('predictions would be scored against other annotations', ''),
    ('the model predicts only background', ''),
    ('have no instance in', ''),
    ('has 0 images after filtering', ''),
    ('class name that differs from the annotations is dropped', ''),
    ('non-finite values at iteration', ''),
    ('Common causes: an lr too high for the batch, boxes of', ''),
    ('the training diverges at iteration', ''),
    ('the classifier has not yet beaten all-background: ', ''),
    ('the classifier collapsed after it had beaten', ''),
    ('To only warn: custom_hooks=[dict(type=', ''),
    ('dropped a degenerate', ''),
    ('(zero area or inverted)', ''),
    ('boxes are placed on the wrong grid; the loss looks', ''),
    ('is not served by rcnn_plugin', ''),
    ('rcnn_plugin needs mmcv, which is not installed', ''),
    ('Refusing to unpickle', ''),
    ('never downloads at run time', ''),
    ('the config doctor stopped training before the first', ''),
    ('expected 5 columns (class cx cy w h)', ''),
    ('which does not exist', ''),
    ('images: check data_root, data_prefix', ''),
    ('is not a meta file, simply parsed as meta', 'mmengine'),
    ('no labels found under', ''),
    ('matches several formats: ', ''),
    ('The class-name files disagree (', ''),
    ('--model fast-rcnn trains on precomputed proposals: give ', ''),
    ('have objects in the validation split', ''),
    ('is not an R-CNN detector checkpoint: it holds ', ''),
    ('ResumableEarlyStoppingHook: resumed ', ''),
    ('ValLossHook: no validation loss: ', ''),
    ('so it is added as a new one', ''),
    ('(no last_checkpoint); training from the start', ''),
    ('does not fit this config: ', ''),
    ('config file not found: ', ''),
    ('checkpoint file not found: ', ''),
]
_FENCE = re.compile(r'^(```|~~~)')
_HEADING = re.compile(r'^(#{1,6})\s+(.*?)\s*#*\s*$')
_LINK = re.compile(r'!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)')
_SKIP_SCHEMES = ('http://', 'https://', 'mailto:')


def doc_files() -> List[str]:
    """The markdown files whose links are checked."""
    files = [README]
    files += sorted(glob.glob(osp.join(REPO, 'docs', '*.md')))
    files += sorted(glob.glob(osp.join(REPO, 'configs', '*', 'README.md')))
    files += sorted(glob.glob(osp.join(REPO, 'projects', '**', 'README.md'),
                              recursive=True))
    return files


def prose_lines(text: str, keep_code: bool = False) -> List[str]:
    """Lines outside fenced code blocks, inline code spans removed unless
    ``keep_code``."""
    lines, fenced = [], False
    for line in text.splitlines():
        if _FENCE.match(line.strip()):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line if keep_code else re.sub(r'`[^`]*`', '', line))
    return lines


def github_slug(heading: str) -> str:
    """GitHub's anchor for a heading: links reduced to their text,
    lower-case, punctuation removed (word characters, '-' and ' ' stay),
    spaces to '-'."""
    text = re.sub(r'\[([^\]]*)\]\([^)]*\)', r'\1', heading)
    text = re.sub(r'[^\w\- ]', '', text.strip().lower())
    return text.replace(' ', '-')


@cache
def heading_slugs(path: str) -> frozenset:
    """Anchors of every heading of a markdown file (``-1``, ``-2`` ... for
    repeated headings, as GitHub numbers them)."""
    seen: Dict[str, int] = {}
    slugs = set()
    text = open(path, encoding='utf-8').read()
    for line in prose_lines(text, keep_code=True):
        match = _HEADING.match(line)
        if not match:
            continue
        slug = github_slug(match.group(2))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        slugs.add(slug if count == 0 else f'{slug}-{count}')
    return frozenset(slugs)


def check_link(src: str, target: str, root: str) -> Optional[str]:
    """Why a link of ``src`` does not resolve, or None when it does.

    Links outside ``root`` may only point into the sibling ``../shared``
    (the datasets, absent from a bare clone) and are checked only where it
    exists.
    """
    if target.startswith(_SKIP_SCHEMES):
        return None
    path, _, anchor = target.partition('#')
    dest = src if not path else osp.normpath(
        osp.join(osp.dirname(src), unquote(path)))
    where = f'{osp.relpath(src, root)}: ({target})'
    if osp.commonpath([osp.abspath(root), osp.abspath(dest)]) != \
            osp.abspath(root):
        shared = osp.abspath(osp.join(root, '..', 'shared'))
        if osp.commonpath([shared, osp.abspath(dest)]) != shared:
            return f'{where} points outside the repository'
        if not osp.isdir(shared):
            return None
    if not osp.exists(dest):
        return f'{where}: no such file {osp.relpath(dest, root)}'
    if anchor and dest.endswith('.md') and \
            anchor not in heading_slugs(dest):
        return (f'{where}: no heading with anchor #{anchor} in '
                f'{osp.relpath(dest, root)}')
    return None


def broken_links(path: str, root: str = REPO) -> List[str]:
    """Every link of a markdown file that does not resolve."""
    text = open(path, encoding='utf-8').read()
    problems = []
    for line in prose_lines(text):
        for target in _LINK.findall(line):
            problem = check_link(path, target, root)
            if problem:
                problems.append(problem)
    return problems


def test_link_checker_reports_broken_links(tmp_path):
    (tmp_path / 'docs').mkdir()
    (tmp_path / 'docs' / 'a.md').write_text(
        '# Page A\n\n## Why `this`: it works\n')
    page = tmp_path / 'README.md'
    page.write_text(
        '# Hub\n\n[ok](docs/a.md) [ok](docs/a.md#why-this-it-works) '
        '[ok](#hub) [web](https://example.org/x) [mail](mailto:a@b.c)\n'
        '[no file](docs/b.md) [no anchor](docs/a.md#why-this) '
        '[no self anchor](#nothing) [outside](../../elsewhere.md)\n'
        '`[in code](docs/c.md)`\n```\n[in a block](docs/d.md)\n```\n')
    problems = broken_links(str(page), root=str(tmp_path))
    assert len(problems) == 4, problems
    assert 'no such file docs/b.md' in problems[0]
    assert '#why-this in docs/a.md' in problems[1]
    assert '#nothing' in problems[2]
    assert 'outside the repository' in problems[3]


@pytest.mark.parametrize('heading, slug', [
    ('Inference on images, folders and video: `tools/infer.py`',
     'inference-on-images-folders-and-video-toolsinferpy'),
    ("mmcv's ops served by torchvision (the default)",
     'mmcvs-ops-served-by-torchvision-the-default'),
    ('Checkpoints on torch >= 2.6', 'checkpoints-on-torch--26'),
    ('Zero-area boxes make `loss_bbox` NaN',
     'zero-area-boxes-make-loss_bbox-nan'),
])
def test_github_slug(heading, slug):
    assert github_slug(heading) == slug


@pytest.mark.parametrize('path', doc_files(),
                         ids=lambda p: osp.relpath(p, REPO))
def test_relative_links_resolve(path):
    problems = broken_links(path)
    assert not problems, '\n'.join(problems)


def test_docs_pages_are_linked_from_the_index():
    index = open(osp.join(REPO, 'docs', 'README.md')).read()
    for page in glob.glob(osp.join(REPO, 'docs', '*.md')):
        name = osp.basename(page)
        if name != 'README.md':
            assert f']({name})' in index, f'docs/README.md misses {name}'


def test_readme_is_a_short_hub():
    with open(README, encoding='utf-8') as f:
        lines = f.read().splitlines()
    assert len(lines) <= MAX_README_LINES, (
        f'README.md has {len(lines)} lines (at most {MAX_README_LINES}): '
        'move reference material into docs/ and link it')


def readme_sections() -> Dict[str, str]:
    """The README's ``## `` sections by title (fences respected)."""
    sections: Dict[str, List[str]] = {}
    title, fenced = '', False
    for line in open(README, encoding='utf-8').read().splitlines():
        if _FENCE.match(line.strip()):
            fenced = not fenced
        if not fenced and line.startswith('## '):
            title = line[3:].strip()
        sections.setdefault(title, []).append(line)
    return {k: '\n'.join(v) for k, v in sections.items()}


def bash_commands(markdown: str) -> List[str]:
    """Commands of the ```bash blocks: continuation lines joined,
    comments and blank lines dropped."""
    commands, block = [], None
    for line in markdown.splitlines():
        if block is None:
            if line.strip().startswith('```bash'):
                block = []
            continue
        if line.strip().startswith('```'):
            text = '\n'.join(block).replace('\\\n', ' ')
            for cmd in text.splitlines():
                cmd = re.sub(r'(^|\s)#.*$', '', cmd).strip()
                if cmd:
                    commands.append(' '.join(cmd.split()))
            block = None
        else:
            block.append(line)
    return commands


def entry_point(command: str) -> str:
    """What a command runs: ``make <target>``, or the script it starts."""
    words = shlex.split(command)
    if words[0] == 'make':
        targets = [w for w in words[1:] if not w.startswith('-')
                   and '=' not in w]
        return 'make ' + targets[0]
    scripts = [w for w in words if w.endswith(('.py', '.sh'))]
    return scripts[0] if scripts else command


def quick_start_commands() -> List[str]:
    sections = readme_sections()
    missing = [s for s in QUICK_START_SECTIONS if s not in sections]
    assert not missing, (f'README.md has no section {missing}; update '
                         'QUICK_START_SECTIONS in tests/test_docs.py')
    commands = []
    for title in QUICK_START_SECTIONS:
        commands += bash_commands(sections[title])
    return commands


def test_entry_points():
    assert entry_point('make demo DEMO_ARGS="--x 1"') == 'make demo'
    assert entry_point('.venv/bin/python tools/finetune.py DATA --epochs 2'
                       ) == 'tools/finetune.py'
    assert bash_commands('```bash\nmake a  # c\n# only a comment\n'
                         'python t.py \\\n    --x 1\n```\n') == [
                             'make a', 'python t.py --x 1']


def test_quick_start_has_the_two_commands_and_the_fine_tune():
    entries = [entry_point(c) for c in quick_start_commands()]
    for needed in ('make demo', 'make test', 'tools/finetune.py'):
        assert needed in entries, entries


@pytest.mark.parametrize('command', quick_start_commands())
def test_every_quick_start_command_has_a_test(command):
    assert entry_point(command) in QUICK_START_TESTS, (
        f'the README quick start runs {command!r} but no test does: add '
        'its entry point to QUICK_START_TESTS in tests/test_docs.py with '
        'the tests that run it')


def _function_names(path: str) -> set:
    tree = ast.parse(open(path, encoding='utf-8').read(), path)
    return {node.name for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}


@pytest.mark.parametrize('entry', sorted(QUICK_START_TESTS))
def test_quick_start_tests_exist(entry):
    assert QUICK_START_TESTS[entry], f'{entry}: no test listed'
    if entry.startswith('make '):
        makefile = open(osp.join(REPO, 'Makefile')).read()
        target = entry.split()[1]
        assert re.search(rf'^{re.escape(target)}:', makefile, re.M), (
            f'the Makefile has no target {target}')
    for node, needle in QUICK_START_TESTS[entry]:
        path, _, func = node.partition('::')
        full = osp.join(REPO, path)
        assert osp.isfile(full), f'{entry}: {path} does not exist'
        text = open(full, encoding='utf-8').read()
        if path.endswith('.py'):
            names = _function_names(full)
            if func:
                assert func in names, f'{entry}: no {func} in {path}'
            else:
                assert any(n.startswith('test_') for n in names), (
                    f'{entry}: {path} holds no test function')
        else:
            assert re.search(rf'^\s*{re.escape(needle)}\b', text, re.M), (
                f'{entry}: {path} does not run {needle!r}')
        assert needle in text, f'{entry}: {path} never mentions {needle!r}'


@cache
def _source_text(package: str) -> str:
    if package:
        root = osp.dirname(__import__(package).__file__)
        paths = glob.glob(osp.join(root, '**', '*.py'), recursive=True)
    else:
        paths = [p for d in ('rcnn_plugin', 'tools') for p in glob.glob(
            osp.join(REPO, d, '**', '*.py'), recursive=True)]
    return '\n'.join(open(p, encoding='utf-8').read() for p in sorted(paths))


@pytest.mark.parametrize('fragment, package', FAQ_MESSAGES)
def test_faq_quotes_real_messages(fragment, package):
    faq = ' '.join(open(osp.join(REPO, 'docs', 'faq.md')).read().split())
    assert fragment in faq, f'docs/faq.md no longer quotes {fragment!r}'
    where = package or 'rcnn_plugin/ and tools/'
    assert fragment in _source_text(package), (
        f'{fragment!r} is quoted in docs/faq.md but not found in {where}: '
        'update the FAQ to the message the code prints now')
