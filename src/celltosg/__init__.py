"""celltosg: build, load, model and explain Text-Omic Signaling Graphs.

``celltosg.CellTOSGFM`` (:mod:`celltosg.fm`) is the model object; it is imported on first use, so that
``import celltosg`` stays cheap.
"""

__all__ = ["CellTOSGFM"]


def __getattr__(name: str):
    if name == "CellTOSGFM":
        from celltosg.fm import CellTOSGFM

        return CellTOSGFM
    raise AttributeError(f"module 'celltosg' has no attribute {name!r}")
