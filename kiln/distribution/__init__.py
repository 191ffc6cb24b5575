"""Scale ``fit`` out over several processes and machines with PyTorch's own engine.

Keras 3's names: ``set_distribution(DataParallel())`` once per process (under ``torchrun``),
then the usual ``fit``; the CLI does it for ``kiln train cfg.yaml --nproc N``::

    import kiln
    kiln.distribution.set_distribution(kiln.distribution.DataParallel())
    model.fit(x, y, batch_size=64, epochs=3)   # same model as one process with batch 64

Files: distribution.py (DataParallel, set_distribution / distribution()), sharding.py (each
rank's rows of a global batch), reduce.py (metric sums across ranks), launch.py (the torchrun
command ``kiln train --nproc`` runs).
"""

from kiln.distribution.distribution import DataParallel, distribution, set_distribution

__all__ = ["DataParallel", "distribution", "set_distribution"]
