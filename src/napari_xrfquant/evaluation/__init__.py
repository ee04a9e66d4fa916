"""Which model to trust on labelled measured spectra: k-fold cross-validation.

:func:`~.compare.compare` fits the published baselines (``lr``, ``lasso``,
``fcnn``, ``cnn``; :mod:`.baselines`) and our fine-tuned network (``mlp``, and
``axs`` with the analysis-by-synthesis reconstruction) on every fold, and
reports MSE +- SE and MAE per element and the best model on each
(:func:`~.compare.write_report`; ``xrfquant compare`` on the command line).
"""
