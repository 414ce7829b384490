# `make calibrate`: re-export the calibration models, rebuild their layer tables through our ONNX
# importer, refit the latency estimator and rewrite data/estimator/calibration.json and
# docs/estimator-validation.md. Deterministic: the same inputs give the same files.
# `make calibrate-fit` skips the ONNX export and refits from the committed layer tables.
CALIB_PYTHON ?= /usr/bin/python3
CALIB_TOOL   := $(BUILD)/edgeopt_calibrate
# The export (PyTorch tracing of ~35 models, minutes on a loaded machine) is cached under the build
# folder, keyed by the exporter script and the Debian torch/torchvision versions that run it: a
# re-run with the same key reuses the files (the export is deterministic: fixed seed, only shapes
# matter); any change to the script or the packages exports afresh into a new folder. The export
# writes to a temporary folder that is renamed only when complete, so an interrupted run is redone.
CALIB_EXPORT_KEY := $(shell { cat tools/calibrate/export_models.py; \
  dpkg-query -W -f='$${Package} $${Version}\n' python3-torch python3-torchvision 2>/dev/null; } | sha256sum | cut -c1-16)
CALIB_ONNX := $(BUILD)/calibration-onnx/$(CALIB_EXPORT_KEY)

.PHONY: calibrate calibrate-fit

$(CALIB_ONNX)/.complete:
	rm -rf $(CALIB_ONNX).tmp
	$(CALIB_PYTHON) tools/calibrate/export_models.py $(CALIB_ONNX).tmp
	touch $(CALIB_ONNX).tmp/.complete
	rm -rf $(CALIB_ONNX) && mv $(CALIB_ONNX).tmp $(CALIB_ONNX)

calibrate: build $(CALIB_ONNX)/.complete
	$(CALIB_TOOL) --onnx $(CALIB_ONNX) --tables tests/data/estimator/models --data data \
	  --out data/estimator/calibration.json --report docs/estimator-validation.md

calibrate-fit: build
	$(CALIB_TOOL) --tables tests/data/estimator/models --data data \
	  --out data/estimator/calibration.json --report docs/estimator-validation.md
