# `make calibrate`: re-export the calibration models, rebuild their layer tables through our ONNX
# importer, refit the latency estimator and rewrite data/estimator/calibration.json and
# docs/estimator-validation.md. Deterministic: the same inputs give the same files.
# `make calibrate-fit` skips the ONNX export and refits from the committed layer tables.
CALIB_PYTHON ?= /usr/bin/python3
CALIB_TOOL   := $(BUILD)/edgeopt_calibrate

.PHONY: calibrate calibrate-fit

calibrate: build
	$(CALIB_PYTHON) tools/calibrate/export_models.py $(BUILD)/calibration-onnx
	$(CALIB_TOOL) --onnx $(BUILD)/calibration-onnx --tables tests/data/estimator/models --data data \
	  --out data/estimator/calibration.json --report docs/estimator-validation.md

calibrate-fit: build
	$(CALIB_TOOL) --tables tests/data/estimator/models --data data \
	  --out data/estimator/calibration.json --report docs/estimator-validation.md
