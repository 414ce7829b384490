"""Classifies an image file with the packaged .tflite model in LiteRT (pip install ai-edge-litert).

    python3 example_tflite.py IMAGE [--model model/FILE.tflite]

Prints the five most likely classes with their scores. Loading and preprocessing (the same
EdgeOpt measured the model with) are in edgeopt_image.py.
"""
import edgeopt_image

if __name__ == "__main__":
    edgeopt_image.classify_main(".tflite", __doc__)
