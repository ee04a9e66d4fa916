"""Campaigns: many frames quantified here or on a cluster, resumed, or watched as they arrive.

The headless side of ``xrfquant quantify`` (many files, ``--cluster``) and
``xrfquant watch``; the napari Quantify dock's Live switch uses the watcher too.

- :mod:`.frames`: one frame, read, quantified and exported, as a task that
  reports rather than raises (:func:`quantify_frame`, :class:`FrameSettings`).
- :mod:`.manifest`: the output folder's record of finished frames (resume).
- :mod:`.run`: plan, run in-process or on ``dask.distributed``, summary.
- :mod:`.watch`: new files in a folder, quantified once complete.
"""

from napari_xrfquant.campaign.frames import (
    FrameReport,
    FrameSettings,
    cached_model,
    quantify_frame,
    settings_key,
)
from napari_xrfquant.campaign.manifest import MANIFEST_FILE, load_manifest
from napari_xrfquant.campaign.run import (
    SUMMARY_FILE,
    CampaignPlan,
    CampaignSummary,
    connect,
    iter_campaign,
    plan_campaign,
)

__all__ = [
    "MANIFEST_FILE",
    "SUMMARY_FILE",
    "CampaignPlan",
    "CampaignSummary",
    "FrameReport",
    "FrameSettings",
    "cached_model",
    "connect",
    "iter_campaign",
    "load_manifest",
    "plan_campaign",
    "quantify_frame",
    "settings_key",
]
