"""Raw columns to the model's encoded float32 matrix: standardise, then one-hot.

Pure numpy, shared by training (modelops.train) and serving, so the model sees
exactly the same encoding offline and online. Inputs are already validated.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from chalicelib.manifest import PreprocessingSpec


def fit_numeric_stats(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and standard deviations of a training matrix (std 0 becomes 1)."""
    values = np.asarray(values, dtype=np.float64)
    mean = values.mean(axis=0)
    std = values.std(axis=0)
    return mean, np.where(std > 0, std, 1.0)


class FeatureEncoder:
    """Encodes raw numeric and categorical columns in the spec's encoded order."""

    def __init__(self, spec: PreprocessingSpec) -> None:
        self.spec = spec
        self.numeric_names = [f.name for f in spec.numeric]
        self._mean = np.array([f.mean for f in spec.numeric], dtype=np.float64)
        self._std = np.array([f.std for f in spec.numeric], dtype=np.float64)
        self.category_index = {
            f.name: {category: i for i, category in enumerate(f.categories)}
            for f in spec.categorical
        }
        self._widths = [len(f.categories) for f in spec.categorical]
        self.width = len(spec.numeric) + sum(self._widths)

    def encode(self, numeric: np.ndarray, category_codes: np.ndarray) -> np.ndarray:
        """Encode a (n, numeric) float matrix and a (n, categorical) int code matrix."""
        rows = numeric.shape[0]
        out = np.zeros((rows, self.width), dtype=np.float32)
        out[:, : len(self._mean)] = (numeric - self._mean) / self._std
        offset = len(self._mean)
        row_index = np.arange(rows)
        for column, width in enumerate(self._widths):
            out[row_index, offset + category_codes[:, column]] = 1.0
            offset += width
        return out

    def encode_columns(self, columns: Mapping[str, Sequence[object]]) -> np.ndarray:
        """Encode named raw columns (numbers, category strings); unknown categories: KeyError."""
        numeric = (
            np.column_stack(
                [np.asarray(columns[name], dtype=np.float64) for name in self.numeric_names]
            )
            if self.numeric_names
            else np.zeros((_length(columns), 0))
        )
        codes = (
            np.column_stack(
                [
                    np.fromiter((index[v] for v in columns[name]), dtype=np.intp)  # type: ignore[index]
                    for name, index in self.category_index.items()
                ]
            )
            if self.category_index
            else np.zeros((numeric.shape[0], 0), dtype=np.intp)
        )
        return self.encode(numeric, codes)


def _length(columns: Mapping[str, Sequence[object]]) -> int:
    return len(next(iter(columns.values()))) if columns else 0
