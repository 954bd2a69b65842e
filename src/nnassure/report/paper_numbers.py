"""The numbers printed in the verified-classification paper, only for the side-by-side
``.compare.md`` files. Nothing in our tables is taken from here."""

from __future__ import annotations

# Table 1: (split, metric) -> dataset -> model -> value. None where the paper's cell is empty.
BASELINES = {
    ("train", "accuracy"): {"a": {"LR": 0.67, "NB": 0.77, "SVM": 0.87, "GB": 0.96},
                            "b": {"LR": 0.85, "NB": 0.85, "SVM": 0.89, "GB": 0.996},
                            "c": {"LR": 0.91, "NB": 0.91, "SVM": 0.91, "GB": 0.96}},
    ("train", "f1_macro"): {"a": {"LR": 0.81, "NB": 0.73, "SVM": 0.87, "GB": 0.96},
                            "b": {"LR": 0.85, "NB": 0.85, "SVM": 0.89, "GB": 0.996},
                            "c": {"LR": 0.95, "NB": 0.95, "SVM": 0.95, "GB": None}},
    ("val", "accuracy"): {"a": {"LR": 0.67, "NB": 0.75, "SVM": 0.84, "GB": 0.92},
                          "b": {"LR": 0.88, "NB": 0.88, "SVM": 0.90, "GB": 0.984},
                          "c": {"LR": 0.91, "NB": 0.91, "SVM": 0.91, "GB": 0.96}},
    ("val", "f1_macro"): {"a": {"LR": 0.80, "NB": 0.71, "SVM": 0.83, "GB": 0.92},
                          "b": {"LR": 0.88, "NB": 0.88, "SVM": 0.90, "GB": 0.984},
                          "c": {"LR": 0.95, "NB": 0.95, "SVM": 0.95, "GB": 0.96}},
}

PAPER_EPS = (0.001, 0.01, 0.025)

# Tables 3-5: dataset -> c10 -> {"verified_accuracy": [per eps], (split, metric): value}.
DATASET_TABLES: dict[str, dict[float, dict[object, object]]] = {
    "a": {
        1.0: {"verified_accuracy": [0.9680, 0.9090, 0.7250], ("train", "accuracy"): 0.9750,
              ("train", "f1_macro"): 0.9748, ("train", "cost_per_sample"): 0.0250,
              ("val", "accuracy"): 0.9450, ("val", "f1_macro"): 0.9384, ("val", "cost_per_sample"): 0.0550},
        10.0: {"verified_accuracy": [0.9080, 0.8540, 0.7210], ("train", "accuracy"): 0.9200,
               ("train", "f1_macro"): 0.8881, ("train", "cost_per_sample"): 0.0800,
               ("val", "accuracy"): 0.8800, ("val", "f1_macro"): 0.8427, ("val", "cost_per_sample"): 0.3000},
        50.0: {"verified_accuracy": [0.6950, 0.6540, 0.5850], ("train", "accuracy"): 0.6975,
               ("train", "f1_macro"): 0.7536, ("train", "cost_per_sample"): 0.3025,
               ("val", "accuracy"): 0.7050, ("val", "f1_macro"): 0.7158, ("val", "cost_per_sample"): 0.5400},
    },
    "b": {
        1.0: {"verified_accuracy": [0.9864, 0.8804, 0.6836], ("train", "accuracy"): 0.9915,
              ("train", "f1_macro"): 0.9859, ("train", "cost_per_sample"): 0.0085,
              ("val", "accuracy"): 0.9880, ("val", "f1_macro"): 0.9888, ("val", "cost_per_sample"): 0.0012},
        10.0: {"verified_accuracy": [0.9854, 0.8880, 0.7052], ("train", "accuracy"): 0.9918,
               ("train", "f1_macro"): 0.9813, ("train", "cost_per_sample"): 0.0105,
               ("val", "accuracy"): 0.9890, ("val", "f1_macro"): 0.9892, ("val", "cost_per_sample"): 0.0290},
        50.0: {"verified_accuracy": [0.9760, 0.8802, 0.6514], ("train", "accuracy"): 0.9810,
               ("train", "f1_macro"): 0.9521, ("train", "cost_per_sample"): 0.0190,
               ("val", "accuracy"): 0.9850, ("val", "f1_macro"): 0.9869, ("val", "cost_per_sample"): 0.0150},
    },
    "c": {
        1.0: {"verified_accuracy": [0.9749, 0.8854, 0.6563], ("train", "accuracy"): 0.9806,
              ("train", "f1_macro"): 0.8880, ("train", "cost_per_sample"): 0.0194,
              ("val", "accuracy"): 0.9785, ("val", "f1_macro"): 0.9229, ("val", "cost_per_sample"): 0.0215},
        10.0: {"verified_accuracy": [0.9408, 0.8636, 0.6316], ("train", "accuracy"): 0.9467,
               ("train", "f1_macro"): 0.7830, ("train", "cost_per_sample"): 0.0526,
               ("val", "accuracy"): 0.9483, ("val", "f1_macro"): 0.8335, ("val", "cost_per_sample"): 0.0526},
        50.0: {"verified_accuracy": [0.8769, 0.8055, 0.5660], ("train", "accuracy"): 0.8837,
               ("train", "f1_macro"): 0.7247, ("train", "cost_per_sample"): 0.1163,
               ("val", "accuracy"): 0.8833, ("val", "f1_macro"): 0.7591, ("val", "cost_per_sample"): 0.1216},
    },
}
