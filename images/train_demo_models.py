"""Train the demo models: iris LogisticRegression (the README's demo and the baked image model),
iris RandomForest(100), an iris classifier with string labels, and a Pipeline with a
ColumnTransformer fed by named columns. Each lands in ``OUT/<name>/model.joblib``.

Usage: ``python images/train_demo_models.py --out DIR [--only iris]``
"""

from __future__ import annotations

import argparse
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def iris_frame() -> tuple[pd.DataFrame, np.ndarray]:
    iris = load_iris()
    return pd.DataFrame(iris.data, columns=FEATURES), iris.target


def build_models() -> dict[str, object]:
    frame, y = iris_frame()
    x = frame.to_numpy()
    names = np.array(load_iris().target_names)
    models: dict[str, object] = {
        "iris": LogisticRegression(max_iter=1000).fit(x, y),
        "iris-rf": RandomForestClassifier(n_estimators=100, random_state=0).fit(x, y),
        "iris-labels": LogisticRegression(max_iter=1000).fit(x, names[y]),
    }
    # A pipeline over named columns, one of them categorical: records in, predictions out.
    tabular = frame.copy()
    tabular["size"] = np.where(tabular["petal_length"] > 4.0, "large", "small")
    pipeline = Pipeline(
        [
            (
                "columns",
                ColumnTransformer(
                    [
                        ("num", StandardScaler(), FEATURES),
                        ("cat", OneHotEncoder(handle_unknown="ignore"), ["size"]),
                    ]
                ),
            ),
            ("clf", LogisticRegression(max_iter=1000)),
        ]
    )
    models["iris-pipeline"] = pipeline.fit(tabular, y)
    return models


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--only", action="append", help="train just these models (repeatable)")
    args = parser.parse_args()
    for name, model in build_models().items():
        if args.only and name not in args.only:
            continue
        target = args.out / name
        target.mkdir(parents=True, exist_ok=True)
        joblib.dump(model, target / "model.joblib")
        print(f"wrote {target / 'model.joblib'}")


if __name__ == "__main__":
    main()
