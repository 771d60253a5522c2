# Two commands do all the set-up on a fresh machine:
#   make demo   create/reuse .venv, then fine-tune + evaluate on the
#               embedded synthetic dataset (about 6 min on 2 CPU cores)
#   make test   create/reuse .venv, then run the test suite
PY := .venv/bin/python
DEMO_CONFIG := configs/demo/faster-rcnn_mobilenetv2_fpn-128_4e_synthetic-cells.py

.PHONY: env demo test lint bccd

env:
	bash tools/setup_env.sh

demo: env
	$(PY) tools/misc/make_synthetic_cells.py data/synthetic_cells
	$(PY) tools/train.py $(DEMO_CONFIG) --work-dir work_dirs/demo

test: env
	$(PY) -m pytest -q tests

lint: env
	$(PY) -m ruff check rcnn_plugin tools tests configs projects

bccd: env
	$(PY) tools/train.py configs/bccd/faster-rcnn_mobilenetv2_fpn-128_8e_bccd.py
