"""Run a detector on an image, a folder, a glob or a video.

Examples::

    python tools/infer.py CONFIG CKPT data/smears/ --out-dir out/
    python tools/infer.py CONFIG CKPT 'data/**/*.jpg' --batch-size 4 \
        --score-thr 0.5 --classes WBC Platelets
    python tools/infer.py CONFIG CKPT footage.mp4 --out-dir out/ --device cuda
    python tools/infer.py CONFIG none data/smears/ --backend onnxruntime \
        --onnx model.onnx
    python tools/infer.py CONFIG CKPT big.jpg --slice 512 --overlap 0.2 \
        --slice-merge nms --slice-match IOU --slice-full
    python tools/infer.py PEFT_CONFIG base_weights.pth data/smears/ \
        --adapter work_dirs/x/adapter_epoch_8.pth
    python tools/infer.py FAST_RCNN_CONFIG CKPT data/smears/ \
        --proposals work_dirs/proposals/test.pkl [--backend onnxruntime ...]

Writes to ``--out-dir``: ``vis/`` (annotated images, named as the inputs;
``.png`` appended to a format OpenCV writes no colour image to: ``x.jfif``
gives ``x.jfif.png``; a failed write is logged and counted) or
``<video>_annotated.mp4``; ``results.json`` (COCO results: ``image_id``,
``category_id`` = label + 1, ``bbox`` x/y/w/h, ``score``, RLE
``segmentation`` for Mask R-CNN); ``images.json`` (ids, files, sizes,
categories); ``<video>_frames.jsonl`` (one line per frame); and
``summary.json``. Files or frames that do not decode are logged, skipped
and counted. A Fast R-CNN (no RPN) needs ``--proposals``: a proposal file
as tools/generate_proposals.py writes it (keys ``<parent folder>/<file
name>``, boxes in original image pixels), with every image in it; without
it the tool stops with a sentence saying so, whatever the backend.
"""
import argparse
import json
import os
import os.path as osp
import sys
import time
from typing import Optional

import cv2
import torch
from tqdm import tqdm

from rcnn_plugin.apis import (
    Predictor,
    VideoReader,
    collect_images,
    draw_detections,
    instances_to_dicts,
    is_video,
    make_predictor,
    output_names,
    to_coco_results,
)
from rcnn_plugin.apis.inputs import vis_names
from rcnn_plugin.apis.slicing import (
    NOT_SLICED_WITHOUT_RPN,
    SlicedPredictor,
    add_slice_args,
    check_slice_args,
)
from rcnn_plugin.datasets import proposal_key


def device_problem(device: str) -> Optional[str]:
    """Why PyTorch cannot run on ``device`` here, or None.

    Args:
        device (str): ``'cpu'``, ``'cuda'``, ``'cuda:1'`` ...

    Returns:
        str, optional: A reason for the user, or None.
    """
    try:
        dev = torch.device(device)
    except RuntimeError:
        return 'not a device (cpu, cuda, cuda:1 ...)'
    if dev.type == 'cuda' and not torch.cuda.is_available():
        return ('no CUDA here (torch.cuda.is_available() is False); use '
                '--device cpu')
    if dev.type == 'cuda' and (dev.index or 0) >= torch.cuda.device_count():
        return f'there are {torch.cuda.device_count()} CUDA device(s)'
    return None


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Detector inference')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help="checkpoint file, or 'none' for "
                        "the config's initial weights")
    parser.add_argument('source', help='image, folder, glob or video file')
    parser.add_argument('--out-dir', default='outputs/infer')
    parser.add_argument('--batch-size', type=int, default=1)
    parser.add_argument('--score-thr', type=float, default=0.3)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--backend', default='pytorch',
                        choices=['pytorch', 'onnxruntime', 'openvino'],
                        help='onnxruntime / openvino run the graphs of '
                        'tools/deployment/export_onnx.py (CPU)')
    parser.add_argument('--onnx', help='exported .onnx file (--backend '
                        'onnxruntime / openvino)')
    parser.add_argument('--adapter', help='adapter checkpoint of a '
                        'PEFTDetector config, loaded on top of CHECKPOINT '
                        '(its base); refused if trained on another base')
    parser.add_argument('--proposals', help='Fast R-CNN: proposal file '
                        '(.pkl of tools/generate_proposals.py) holding '
                        'every input image')
    parser.add_argument('--classes', nargs='+', help='keep these classes')
    parser.add_argument('--no-vis', action='store_true',
                        help='do not write annotated images or video')
    parser.add_argument('--no-progress', action='store_true')
    add_slice_args(parser)
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error(f'--batch-size must be >= 1, got {args.batch_size}')
    if not 0 <= args.score_thr <= 1:
        parser.error(f'--score-thr must be in [0, 1], got {args.score_thr}')
    problem = args.backend == 'pytorch' and device_problem(args.device)
    if problem:
        parser.error(f'--device {args.device}: {problem}')
    files = [('config', args.config), ('--onnx', args.onnx),
             ('--adapter', args.adapter), ('--proposals', args.proposals)]
    if args.checkpoint != 'none' and '://' not in args.checkpoint:
        files.append(('checkpoint', args.checkpoint))
    for what, path in files:
        if path is not None and not osp.isfile(path):
            parser.error(f'{what} file not found: {path}')
    if args.backend != 'pytorch' and not args.onnx:
        parser.error(f'--backend {args.backend} needs --onnx FILE (from '
                     'tools/deployment/export_onnx.py)')
    if args.adapter and args.backend != 'pytorch':
        parser.error('--adapter needs --backend pytorch')
    if args.slice is not None:
        try:
            check_slice_args(args.slice, args.overlap)
        except ValueError as exc:
            parser.error(str(exc))
    if args.proposals and (args.slice is not None or is_video(args.source)):
        parser.error('--proposals: for images only (no video, no --slice)')
    return args


def load_proposals(args, predictor: Predictor) -> Optional[dict]:
    """``args.proposals`` read, or None; refuses a Fast R-CNN without it.

    Args:
        args (argparse.Namespace): Parsed arguments.
        predictor (Predictor): The detector (any backend).

    Returns:
        dict, optional: Proposal key to proposals.
    """
    file = getattr(args, 'proposals', None)
    if not getattr(predictor, 'needs_proposals', False):
        if file:
            raise SystemExit('--proposals: this detector has its own RPN; '
                             'proposals are for Fast R-CNN')
        return None
    if not file:
        raise SystemExit(
            f'{args.config} is a Fast R-CNN (no RPN): it needs precomputed '
            'proposals for each image; give --proposals FILE (a proposal '
            'file of tools/generate_proposals.py holding every image)')
    from mmengine.fileio import load
    return load(file)


class Run:
    """State of one inference run: outputs, counters, writers."""

    def __init__(self, args, predictor: Predictor) -> None:
        self.args, self.predictor = args, predictor
        self.classes = predictor.classes
        self.keep = None
        if args.classes:
            unknown = set(args.classes) - set(self.classes)
            if unknown:
                raise SystemExit(f'--classes: unknown {sorted(unknown)}; '
                                 f'the model has {self.classes}')
            self.keep = [self.classes.index(c) for c in args.classes]
        os.makedirs(args.out_dir, exist_ok=True)
        self.proposals = load_proposals(args, predictor)
        self.images, self.results = [], []
        self.skipped, self.detections = [], 0
        self.video_writer = self.jsonl = self.video = None
        self.reading = None  # the image being read, for an error message
        self.vis_names, self.vis_failed = {}, []

    def flush(self, batch) -> None:
        """Predict a batch of ``(image_id, name, image, proposals)`` and
        write outputs."""
        images = [img for _, _, img, _ in batch]
        if self.proposals is None:
            preds = self.predictor.predict(images)
        else:
            preds = self.predictor.predict(
                images, proposals=[props for *_, props in batch])
        for (image_id, name, image, _), pred in zip(batch, preds):
            dets = instances_to_dicts(pred, self.args.score_thr, self.keep)
            self.detections += len(dets)
            self.results += to_coco_results(dets, image_id)
            h, w = image.shape[:2]
            self.images.append(dict(id=image_id, file_name=name, width=w,
                                    height=h))
            if self.jsonl is not None:
                self.jsonl.write(json.dumps(dict(
                    frame=image_id, time_s=round(image_id / self.fps, 3),
                    detections=[dict(d, class_name=self.classes[d['label']])
                                for d in dets])) + '\n')
            if not self.args.no_vis:
                self.write_vis(name, draw_detections(image, dets,
                                                     self.classes))
        batch.clear()

    def write_vis(self, name: str, image) -> None:
        if self.video_writer is not None:
            self.video_writer.write(image)
            return
        out = osp.join(self.args.out_dir, 'vis',
                       self.vis_names.get(name, name))
        os.makedirs(osp.dirname(out), exist_ok=True)
        try:
            written = cv2.imwrite(out, image)
        except cv2.error:
            written = False
        if not written:  # counted in the summary, never silent
            self.vis_failed.append(name)
            print(f'infer.py: could not write {out}; its detections are in '
                  'results.json', file=sys.stderr)

    def images_from(self, paths):
        names = output_names(paths)  # a/x.jpg and b/x.jpg stay apart
        self.vis_names = vis_names(names)
        for image_id, (path, name) in enumerate(zip(paths, names)):
            self.reading = name
            image = self.predictor.read(path)
            props = None if image is None else self.props_of(path)
            self.reading = None
            if image is None:
                self.skipped.append(path)
                continue
            yield image_id, name, image, props

    def props_of(self, path: str):
        """The proposals of image ``path`` (Fast R-CNN), else None."""
        if self.proposals is None:
            return None
        key = proposal_key(path)
        if key not in self.proposals:
            raise SystemExit(
                f'--proposals {self.args.proposals} has no entry {key!r} '
                f'for {path} (keys are <parent folder>/<file name>); write '
                'the file for these images with tools/generate_proposals.py')
        return self.proposals[key]

    def frames_from(self, reader: VideoReader):
        self.fps, self.video = reader.fps, reader
        stem = osp.splitext(osp.basename(reader.path))[0]
        self.jsonl = open(osp.join(self.args.out_dir,
                                   f'{stem}_frames.jsonl'), 'w')
        if not self.args.no_vis:
            self.video_writer = cv2.VideoWriter(
                osp.join(self.args.out_dir, f'{stem}_annotated.mp4'),
                cv2.VideoWriter_fourcc(*'mp4v'), reader.fps, reader.size)
        for index, frame in reader.frames():
            if frame is None:
                self.skipped.append(f'{reader.path}#frame{index}')
                continue
            yield index, f'frame_{index:06d}.jpg', frame, None

    def close(self, seconds: float, stopped_at: Optional[list] = None
              ) -> dict:
        """Write results.json, images.json and summary.json; with
        ``stopped_at`` (the items being predicted when an error stopped the
        run) the summary says ``complete: false`` and names them."""
        for handle in (self.jsonl, ):
            if handle is not None:
                handle.close()
        if self.video_writer is not None:
            self.video_writer.release()
        out = self.args.out_dir
        cats = [dict(id=i + 1, name=c) for i, c in enumerate(self.classes)]
        with open(osp.join(out, 'results.json'), 'w') as f:
            json.dump(self.results, f)
        with open(osp.join(out, 'images.json'), 'w') as f:
            json.dump(dict(images=self.images, categories=cats), f)
        summary = dict(
            source=self.args.source, processed=len(self.images),
            skipped=len(self.skipped), skipped_items=self.skipped,
            detections=self.detections, seconds=round(seconds, 3),
            images_per_s=round(len(self.images) / max(seconds, 1e-9), 3),
            complete=stopped_at is None, vis_failed=len(self.vis_failed),
            vis_failed_items=self.vis_failed)
        if stopped_at is not None:
            summary['stopped_at'] = stopped_at
        if self.video is not None:  # the container's count is an estimate
            summary.update(frames_reported=self.video.num_frames,
                           unread_at_end=self.video.unread_at_end)
        with open(osp.join(out, 'summary.json'), 'w') as f:
            json.dump(summary, f, indent=2)
        return summary


def infer(args: argparse.Namespace, predictor: Predictor) -> dict:
    """Run ``predictor`` on ``args.source``; write outputs; return summary.

    Args:
        args (argparse.Namespace): Parsed arguments (see ``parse_args``).
        predictor (Predictor): The detector.

    Returns:
        dict: The summary written to ``summary.json``.
    """
    run = Run(args, predictor)
    if is_video(args.source):
        reader = VideoReader(args.source)
        items, total = run.frames_from(reader), reader.num_frames
    else:
        paths = collect_images(args.source)
        items, total = run.images_from(paths), len(paths)
    start, batch = time.perf_counter(), []
    try:
        with tqdm(total=total, unit='img', disable=args.no_progress) as bar:
            for item in items:
                batch.append(item)
                if len(batch) == args.batch_size:
                    bar.update(len(batch))
                    run.flush(batch)
            bar.update(len(batch))
            run.flush(batch)
    except BaseException:  # an error or Ctrl-C: keep what was done, say so
        # the image being read, else the batch being predicted
        stopped_at = [run.reading] if run.reading else [
            name for _, name, *_ in batch]
        try:
            summary = run.close(time.perf_counter() - start, stopped_at)
        except Exception as exc:  # the original error matters more
            print(f'infer.py: the partial outputs could not be written: '
                  f'{exc}', file=sys.stderr)
        else:
            where = ', '.join(stopped_at) or 'the start'
            print(f"infer.py: stopped at {where}; the {summary['processed']}"
                  f' images/frames done before are written to '
                  f'{args.out_dir} (summary.json: complete false)',
                  file=sys.stderr)
        raise
    return run.close(time.perf_counter() - start)


def main(argv=None) -> None:
    args = parse_args(argv)
    try:
        run(args)
    except (FileNotFoundError, ValueError) as exc:
        # A sentence for the user's input (no image matched, a video that
        # does not open, an ONNX file of another config), not a traceback.
        raise SystemExit(f'infer.py: error: {exc}') from exc


def run(args: argparse.Namespace) -> None:
    checkpoint = None if args.checkpoint == 'none' else args.checkpoint
    predictor = make_predictor(args.config, checkpoint, args.backend,
                               args.onnx, args.device)
    if args.adapter:
        try:
            name = predictor.load_adapter(args.adapter)
        except ValueError as exc:  # another base or architecture
            raise SystemExit(f'--adapter: {exc}') from exc
        print(f'adapter {name!r} loaded on the base {checkpoint}')
    if args.slice is not None:
        if predictor.needs_proposals:
            raise SystemExit(f'--slice: {NOT_SLICED_WITHOUT_RPN}')
        predictor = SlicedPredictor(
            predictor, args.slice, args.overlap, merge=args.slice_merge,
            match_metric=args.slice_match, full_image=args.slice_full,
            batch_size=args.batch_size,
            # below --score-thr out before merging: a dropped box must not
            # widen a kept one (greedynmm / nmm merge into the union box)
            score_thr=args.score_thr)
    summary = infer(args, predictor)
    print(f"processed {summary['processed']} images/frames, "
          f"{summary['detections']} detections, skipped "
          f"{summary['skipped']} that did not decode"
          + (f": {summary['skipped_items']}" if summary['skipped'] else '')
          + f"; {summary['images_per_s']} images/s; outputs in "
          f'{args.out_dir}')
    if summary['vis_failed']:
        print(f"infer.py: warning: {summary['vis_failed']} annotated "
              f"image(s) could not be written: {summary['vis_failed_items']}",
              file=sys.stderr)
    if summary.get('unread_at_end'):
        print(f"infer.py: warning: the video reports "
              f"{summary['frames_reported']} frames and the last "
              f"{summary['unread_at_end']} of them did not decode "
              '(a truncated file, or an estimated frame count)',
              file=sys.stderr)


if __name__ == '__main__':
    main()
