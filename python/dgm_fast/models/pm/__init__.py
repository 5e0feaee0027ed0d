"""Predictability minimization (Schmidhuber 1992): code units against their predictors
(:mod:`.model`), trained off-line, with the measures of a learned code (:mod:`.train`)."""

from .model import PredictabilityMinimization, predictor_error, reconstruction_error, unpredictability
from .train import CodeReport, code_report, fit_pm, pm_losses

__all__ = ["CodeReport", "PredictabilityMinimization", "code_report", "fit_pm", "pm_losses", "predictor_error",
           "reconstruction_error", "unpredictability"]
