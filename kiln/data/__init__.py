"""The data side of the lifecycle: read a source into a table, split it.

``read_source`` turns a file, folder, in-memory frame or bundled dataset name into a pandas
DataFrame with one row per example; ``split_frame`` and ``kfold`` split that table. pandas
and the other readers are imported only when used (``pip install "kiln[data]"``).
"""

from kiln.data.bundled import BUNDLED, load_bundled
from kiln.data.sources import read_source
from kiln.data.split import SPLITS, kfold, split_frame

__all__ = ["read_source", "load_bundled", "BUNDLED", "split_frame", "kfold", "SPLITS"]
