"""Assessment of a model the pipeline did not train: an ONNX file or a native model, the user's
data, VNN-LIB properties, and the stages that apply (accuracy, certification, PROVEN, KRI)."""
