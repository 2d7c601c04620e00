"""torch and Lightning for the Lightning adapter (either the ``pytorch_lightning`` or the
``lightning`` package), with an error naming the extra to install when they are missing."""

from __future__ import annotations

from typing import TYPE_CHECKING

try:
    import torch
    from torch import nn
except ImportError as _error:  # pragma: no cover - exercised only without torch
    raise ImportError(
        "embedding_projector.lightning needs PyTorch and Lightning: "
        "pip install 'embedding-projector[lightning]'"
    ) from _error

if TYPE_CHECKING:
    import pytorch_lightning as pl
    from pytorch_lightning.utilities import rank_zero_warn
else:  # pragma: no branch
    try:
        import pytorch_lightning as pl
        from pytorch_lightning.utilities import rank_zero_warn
    except ImportError:  # pragma: no cover - only the unified `lightning` package installed
        try:
            import lightning.pytorch as pl
            from lightning.pytorch.utilities import rank_zero_warn
        except ImportError as _error:
            raise ImportError(
                "embedding_projector.lightning needs Lightning: "
                "pip install 'embedding-projector[lightning]'"
            ) from _error

__all__ = ["nn", "pl", "rank_zero_warn", "torch"]
