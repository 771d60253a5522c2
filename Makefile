# Two commands do all the set-up on a fresh machine:
#   make demo   create/reuse .venv, then fine-tune + evaluate on the
#               embedded synthetic dataset, seeded; fails if the held-out
#               mAP@0.5 is below DEMO_MIN_MAP50
#   make test   create/reuse .venv, then run the test suite
PY := .venv/bin/python
DEMO_CONFIG := configs/demo/faster-rcnn_mobilenetv2_fpn-128_4e_synthetic-cells.py
DEMO_WORK_DIR := work_dirs/demo
DEMO_MIN_MAP50 := 0.9
# e.g. make demo DEMO_ARGS="--cfg-options randomness.seed=3"
DEMO_ARGS :=

.PHONY: env demo test lint bccd

env:
	bash tools/setup_env.sh

demo: env
	$(PY) tools/misc/make_synthetic_cells.py data/synthetic_cells
	$(PY) tools/train.py $(DEMO_CONFIG) --work-dir $(DEMO_WORK_DIR) $(DEMO_ARGS)
	$(PY) tools/misc/check_run.py $(DEMO_WORK_DIR) --metric coco/bbox_mAP_50 \
	    --min $(DEMO_MIN_MAP50)

test: env
	$(PY) -m pytest -q tests

lint: env
	$(PY) -m ruff check rcnn_plugin tools tests configs projects

bccd: env
	$(PY) tools/train.py configs/bccd/faster-rcnn_mobilenetv2_fpn-128_8e_bccd.py
