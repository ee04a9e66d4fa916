"""Network trunks, one module per architecture.

Each module defines its trunk and registers it in the architecture table
(:func:`~napari_xrfquant.models.description.register_architecture`); the table
imports every module of this package the first time it is read
(:func:`~napari_xrfquant.models.description.architectures`). Adding an
architecture is adding a module here.
"""
