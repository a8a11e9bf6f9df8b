"""blastwatch training: split, train, export, quantize, evaluate and report the B-ALL classifier.

Everything reads the TypeScript preprocessing cache (`blastwatch preprocess-dataset`), so the
tensors trained on are the tensors the daemon feeds onnxruntime.
"""

CLASS_FOLDERS = ["Benign", "Early", "Pre", "Pro"]
CLASS_NAMES = ["Benign", "Early Pre-B", "Pre-B", "Pro-B"]
MALIGNANT = [False, True, True, True]
