"""Classifies an image file with the packaged .onnx model in ONNX Runtime (pip install onnxruntime).

    python3 example_onnx.py IMAGE [--model model/FILE.onnx]

Prints the five most likely classes with their scores. Loading and preprocessing (the same
EdgeOpt measured the model with) are in edgeopt_image.py.
"""
import edgeopt_image

if __name__ == "__main__":
    edgeopt_image.classify_main(".onnx", __doc__)
