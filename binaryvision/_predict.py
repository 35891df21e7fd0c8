"""The methods of a fitted classifier: probabilities, labels, prediction sets, evaluation, plots.

:class:`~binaryvision.ImageBinaryClassifier` inherits them from :class:`_PredictMethods`;
they read only the fitted attributes (``model_``, ``transforms_``, ``classes_``,
``positive_class_``, ``calibrator_``, ``threshold_``, ``conformal_scores_``) and hand the
work to the stages: the feature pass (:mod:`binaryvision.features`), the decisions
(:mod:`binaryvision.decisions`) and the outputs (:mod:`binaryvision.outputs`). Kept apart
from :mod:`binaryvision.classifier`, which holds the hyperparameters and training, so that
each module stays readable in one sitting.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import torch
from sklearn.metrics import accuracy_score

from .data import ImageSet, as_image_set
from .data.bad_images import describe_item
from .decisions import conformal_quantile, prediction_sets, sigmoid
from .exceptions import BinaryVisionWarning, DataWarning, InvalidParameterError, NotFittedError
from .outputs.label_issues import LabelIssues
from .outputs.plots import ConfidenceDisplay
from .outputs.report import EvaluationReport
from .training.cross_fit import cross_fit_logits, fold_indices, neighbour_agreement
from .training.model import _Head
from .training.probe import cross_fit_probe
from .transforms import tta_views

__all__: list[str] = []


class _PredictMethods:
    """What a fitted (or loaded) classifier answers; mixed into ImageBinaryClassifier."""

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise NotFittedError(
                f"This {type(self).__name__} is not fitted yet. Call fit(...) first, or "
                f"{type(self).__name__}.load('model.bv')."
            )

    def _targets(self, labels: np.ndarray) -> np.ndarray:
        unknown = sorted({str(v) for v in labels.tolist()} - {str(c) for c in self.classes_})
        if unknown:
            raise InvalidParameterError(
                f"y holds labels {unknown} that are not among the fitted classes "
                f"{list(self.classes_)}."
            )
        return self._is_positive(labels).astype(np.float32)

    def _is_positive(self, labels: np.ndarray) -> np.ndarray:
        pos = self.positive_class_
        return np.array([v == pos or str(v) == str(pos) for v in labels.tolist()], dtype=bool)

    def _pos_index(self) -> int:
        """Column of ``positive_class_`` in ``classes_`` (and in :meth:`predict_proba`)."""
        return 0 if self._is_positive(self.classes_[:1])[0] else 1

    def _raw_logits(self, items: list, tta: int = 0) -> np.ndarray:
        """Uncalibrated logits of ``positive_class_``, one row per TTA view: ``(views, n)``."""
        trainer, extractor = self._make_trainer(), self._feature_pass()
        rows = []
        for view in tta_views(tta):
            desc = "features" if view == "identity" else f"features ({view})"
            features = extractor.features(items, trainer, desc, view=view)
            with torch.inference_mode():
                logits = _Head(self.model_.head).eval()(features)
            rows.append(logits.double().numpy().reshape(-1))
        return np.stack(rows)

    def _calibrated(self, logits: np.ndarray) -> np.ndarray:
        if getattr(self, "calibrator_", None) is None:
            return sigmoid(logits)
        return self.calibrator_.transform(logits)

    def _positive_proba(
        self, X: Any, tta: int = 0, on_bad_image: str = "raise"
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Calibrated P(positive), its spread over TTA views, and the mean raw logit."""
        self._check_fitted()
        data = as_image_set(X)
        if on_bad_image not in ("raise", "nan"):
            raise InvalidParameterError(
                f"on_bad_image must be 'raise' or 'nan'; got {on_bad_image!r}."
            )
        if on_bad_image == "nan":
            extractor = self._feature_pass()

            def probe(items: list) -> list[str]:  # the feature pass doubles as the check
                return extractor.probe(items, self._make_trainer())

            reasons = self._scan(data.items, probe)
            good = [i for i, r in enumerate(reasons) if not r]
            if len(good) < len(reasons):
                bad = [
                    f"{describe_item(data.items[i], i)}: {r}" for i, r in enumerate(reasons) if r
                ]
                more = f" (and {len(bad) - 3} more)" if len(bad) > 3 else ""
                warnings.warn(
                    f"{len(bad)} of {len(reasons)} images cannot be read; their rows are NaN: "
                    f"{'; '.join(bad[:3])}{more}.",
                    DataWarning,
                    stacklevel=3,
                )
            p, spread, mean = (np.full((len(reasons),), np.nan) for _ in range(3))
            if good:
                sub = self._positive_proba([data.items[i] for i in good], tta)
                for out, values in zip((p, spread, mean), sub):
                    out[good] = values
            return p, spread, mean
        logits = self._raw_logits(data.items, tta)
        mean = logits.mean(axis=0)
        spread = self._calibrated(logits).std(axis=0) if len(logits) > 1 else np.zeros_like(mean)
        return self._calibrated(mean), spread, mean

    def _columns(self, p_pos: np.ndarray) -> np.ndarray:
        """``(n, 2)`` probabilities in ``classes_`` order from P(positive)."""
        out = np.empty((len(p_pos), 2))
        pos = self._pos_index()
        out[:, pos], out[:, 1 - pos] = p_pos, 1.0 - p_pos
        return out

    def decision_function(self, X: Any) -> np.ndarray:
        """Uncalibrated logit of ``classes_[1]`` for each image, shape ``(n,)``.

        Follows scikit-learn: larger means more ``classes_[1]``, whatever
        ``positive_class`` is. Ranking metrics (ROC-AUC) can use it directly; for
        probabilities use :meth:`predict_proba`, which is calibrated.
        """
        self._check_fitted()
        logits = self._raw_logits(as_image_set(X).items)[0]
        return logits if self._pos_index() == 1 else -logits

    def predict_proba(
        self, X: Any, *, tta: int = 0, return_std: bool = False, on_bad_image: str = "raise"
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Calibrated class probabilities, shape ``(n, 2)``, columns in ``classes_`` order.

        Parameters
        ----------
        X : str, path, list or numpy.ndarray
            A folder (flat, or with class subfolders), one image path, a list of paths or
            PIL images, or a uint8 array ``(n, H, W, 3)``.
        tta : int, default=0
            Test-time augmentation: average the logits of this many deterministic views
            (identity, horizontal flip, central zoom, zoom + flip, four corner crops; see
            :data:`binaryvision.transforms.TTA_VIEWS`) before calibrating. 0 or 1: none.
            Costs one backbone pass per view.
        return_std : bool, default=False
            Also return, per image, the standard deviation of the calibrated
            positive-class probability across the views: an uncertainty signal (zero
            when ``tta <= 1``).
        on_bad_image : {"raise", "nan"}, default="raise"
            ``"raise"``: a file that cannot be read as an image raises
            :class:`~binaryvision.ImageDecodeError` naming it. ``"nan"``: its row is NaN,
            the other images are predicted, and one
            :class:`~binaryvision.exceptions.DataWarning` lists the unreadable files and
            why (the feature pass doubles as that check).

        Returns
        -------
        numpy.ndarray or (numpy.ndarray, numpy.ndarray)
            Rows sum to 1 (NaN rows for unreadable images with ``on_bad_image="nan"``);
            with ``return_std``, also the spread of shape ``(n,)``.
        """
        p, spread, _ = self._positive_proba(X, tta, on_bad_image)
        proba = self._columns(p)
        return (proba, spread) if return_std else proba

    def predict(
        self,
        X: Any,
        *,
        tta: int = 0,
        coverage: float | None = None,
        uncertain_label: Any = "uncertain",
    ) -> np.ndarray:
        """Predicted label per image: ``positive_class_`` where its probability >= ``threshold_``.

        Parameters
        ----------
        X
            Images, as for :meth:`predict_proba`.
        tta : int, default=0
            Test-time views to average (see :meth:`predict_proba`).
        coverage : float, optional
            Abstain: images whose conformal prediction set at this coverage holds both
            labels (see :meth:`predict_set`) get ``uncertain_label`` instead of a class.
        uncertain_label : default="uncertain"
            The value returned for abstentions.

        Returns
        -------
        numpy.ndarray of shape (n,)
            Class labels (an object array holding ``uncertain_label`` too when
            ``coverage`` is given).
        """
        p, _, _ = self._positive_proba(X, tta)
        positive = p >= self.threshold_
        pos = self._pos_index()
        labels = self.classes_[np.where(positive, pos, 1 - pos)]
        if coverage is None:
            return labels
        labels = labels.astype(object)
        labels[self._prediction_sets(p, coverage).all(axis=1)] = uncertain_label
        return labels

    def _prediction_sets(self, p_pos: np.ndarray, coverage: float) -> np.ndarray:
        """Membership ``(n, 2)`` in ``classes_`` order."""
        if getattr(self, "conformal_scores_", None) is None:
            raise InvalidParameterError(
                "Prediction sets need validation images kept from fit, and this model has none "
                "(it was fitted with valid_size=0, or loaded from an older file). Refit with "
                "valid_size > 0 or a valid/ folder."
            )
        n = len(self.conformal_scores_)
        q = conformal_quantile(self.conformal_scores_, coverage)
        if not np.isfinite(q):
            # the smallest n whose conformal rank ceil((n + 1) * coverage) exists, computed
            # with the very formula conformal_quantile uses
            needed = next(k for k in range(1, 10**7) if math.ceil((k + 1) * coverage) <= k)
            warnings.warn(
                BinaryVisionWarning(
                    f"coverage={coverage} needs at least {needed} "
                    f"validation images and the model kept {n}: every prediction set holds both "
                    "labels. Lower coverage or fit with more validation images."
                ),
                stacklevel=3,
            )
        member = prediction_sets(p_pos, q)  # columns: negative, positive
        return member if self._pos_index() == 1 else member[:, ::-1]

    def predict_set(
        self, X: Any, coverage: float = 0.9, *, tta: int = 0, return_mask: bool = False
    ) -> list | np.ndarray:
        """Split-conformal prediction sets: the labels each image plausibly has.

        With probability at least ``coverage``, a new image's true label is in its set
        (marginally over images like the validation ones, which the model kept from
        :meth:`fit`; Vovk et al., Angelopoulos & Bates). A set with both labels means the
        model cannot tell at that coverage: abstain, or ask a person. Sets are never
        empty (the most probable label is always in). The guarantee is for ``tta=0``,
        the setting the validation scores were computed with.

        Parameters
        ----------
        X
            Images, as for :meth:`predict_proba`.
        coverage : float, default=0.9
            Target probability that the set holds the true label, in (0, 1). Higher
            coverage means more two-label sets.
        tta : int, default=0
            Test-time views to average.
        return_mask : bool, default=False
            Return a boolean ``(n, 2)`` membership array in ``classes_`` order instead
            of a list of sets.

        Returns
        -------
        list of set or numpy.ndarray
            ``[{"hotdog"}, {"hotdog", "not_hotdog"}, ...]`` or the mask.
        """
        p, _, _ = self._positive_proba(X, tta)
        member = self._prediction_sets(p, coverage)
        if return_mask:
            return member
        return [{c for c, m in zip(self.classes_.tolist(), row) if m} for row in member]

    def evaluate(
        self, X: Any, y: Any = None, *, tta: int = 0, coverage: float | None = None
    ) -> EvaluationReport:
        """Every binary metric on labelled images, in one report.

        Accuracy, balanced accuracy, precision, recall, F1, MCC, ROC-AUC, average
        precision (PR-AUC), log loss, Brier score, ECE (15 bins, before and after
        calibration), the confusion matrix at ``threshold_`` and, with ``coverage``, the
        number of abstentions. All computed by :mod:`sklearn.metrics`.

        Parameters
        ----------
        X, y
            Labelled images, as for :meth:`score`. Use images the model did not see in
            :meth:`fit` (neither for training nor as validation) for honest figures.
        tta : int, default=0
            Test-time views to average.
        coverage : float, optional
            Also count abstentions of conformal sets at this coverage.

        Returns
        -------
        EvaluationReport
            ``print(report)`` for a summary; ``report.to_dict()``; attributes per metric
            (``report.roc_auc``); ``report.plot_reliability()`` and the other plots.
        """
        self._check_fitted()
        data, labels = self._labelled(X, y)
        targets = self._targets(labels).astype(int)
        p, _, mean_logit = self._positive_proba(data.items, tta)
        pos = self._pos_index()
        abstained = None if coverage is None else self._prediction_sets(p, coverage).all(axis=1)
        return EvaluationReport(
            classes=[str(self.classes_[1 - pos]), str(self.classes_[pos])],
            y_true=targets,
            y_prob=p,
            threshold=self.threshold_,
            y_prob_uncalibrated=None if self.calibrator_ is None else sigmoid(mean_logit),
            abstained=abstained,
            coverage=coverage,
            selection=getattr(self, "selection_", None),
        )

    def _labelled(self, X: Any, y: Any) -> tuple[ImageSet, np.ndarray]:
        data = as_image_set(X, y)
        if data.labels is None:
            raise InvalidParameterError(
                "This needs labels: pass y, or X as a folder with one subfolder per class."
            )
        return data, data.labels

    def score(self, X: Any, y: Any = None, sample_weight: Any = None) -> float:
        """Accuracy on ``X`` (labels from ``y`` or from ``X``'s class subfolders)."""
        self._check_fitted()
        data, labels = self._labelled(X, y)
        self._targets(labels)  # refuses labels outside classes_
        predicted = self.predict(data.items)
        return float(
            accuracy_score(labels.astype(str), predicted.astype(str), sample_weight=sample_weight)
        )

    def plot_confidence(
        self,
        X: Any,
        y: Any = None,
        *,
        n_images: int = 4,
        tta: int = 0,
        coverage: float | None = None,
        random_state: int | None = 0,
        ax: Any = None,
    ) -> Any:
        """Show where the model is confident, wrong or unsure.

        Draws the five views of the fastai tutorial (random correct, random incorrect,
        most confident correct per class, most confident wrong per class, most
        uncertain), each image titled with its probability of the positive class, plus a
        histogram of predicted probabilities per true class. With ``coverage``, a view of
        the images the model abstains on; with ``tta > 1``, titles show the spread across
        views and a view of the images with the largest spread.

        Parameters
        ----------
        X, y
            Labelled images, as for :meth:`score`.
        n_images : int
            Images per view.
        tta : int, default=0
            Test-time views to average (see :meth:`predict_proba`).
        coverage : float, optional
            Show the images whose conformal prediction set holds both labels.
        random_state : int, optional
            Seed for the two random views.
        ax : matplotlib.axes.Axes, optional
            Draw into this axes' area instead of a new figure.

        Returns
        -------
        ConfidenceDisplay
            With ``.figure_`` (a matplotlib Figure) and ``.plot(ax=None)``.
        """
        self._check_fitted()
        data, labels = self._labelled(X, y)
        targets = self._targets(labels)
        p, spread, _ = self._positive_proba(data.items, tta)
        pos = self._pos_index()
        display = ConfidenceDisplay(
            items=data.items,
            probabilities=p,
            targets=targets.astype(int),
            classes=[str(self.classes_[1 - pos]), str(self.classes_[pos])],
            threshold=self.threshold_,
            n_images=n_images,
            random_state=random_state,
            abstained=None if coverage is None else self._prediction_sets(p, coverage).all(1),
            spread=spread if tta > 1 else None,
        )
        return display.plot(ax=ax)

    def label_issues(self, X: Any = None, y: Any = None, *, n: int | None = 20) -> LabelIssues:
        """Suspected label errors: images whose given label their neighbours and the model
        find least likely.

        Images are ranked by the share of their 15 nearest other images (on the fitted
        model's features) that carry the same label, ties broken by the probability of
        the given label from heads that never trained on the image (out-of-fold, see
        ``cv``): a wrong label cannot vouch for itself. Without ``X``: the training images
        of the last :meth:`fit` (kept in memory; no new computation). With ``X``: those
        images, cross-fitted now; no backbone pass where their features are cached.

        Parameters
        ----------
        X, y
            Labelled images, as for :meth:`score`; default: the training images.
        n : int or None, default=20
            Keep the ``n`` most suspect (None: rank them all).

        Returns
        -------
        LabelIssues
            ``.items``, ``.given``, ``.believed``, ``.p_given`` (calibrated),
            ``.agreement``, ``.suspect``, ``.reason(i)``, ``.to_list()``, ``print(...)``
            and ``.plot()``.
        """
        self._check_fitted()
        pos = self._pos_index()
        classes = (self.classes_[1 - pos], self.classes_[pos])
        if X is None:
            evidence = getattr(self, "_label_evidence", None)
            if evidence is None:
                raise InvalidParameterError(
                    "label_issues() without X ranks the training images of a cross-fitted "
                    "fit made in this process, and this model has none (cv=None, "
                    "fine-tuning, or loaded from a file). Pass the images: "
                    "clf.label_issues(X, y)."
                )
            data, logits, agreement = evidence
            p = self._calibrated(logits)
            return LabelIssues.rank(data.items, data.labels, p, classes, n, agreement)
        data, labels = self._labelled(X, y)
        targets = torch.from_numpy(self._targets(labels))
        trainer = self._make_trainer()
        features = self._feature_pass().features(data.items, trainer, "features")
        n_folds, seed = self.cv if self.cv is not None else 5, self._seed()
        folds = fold_indices(targets.numpy(), n_folds, seed)
        if not folds:
            raise InvalidParameterError("label_issues needs at least 2 images of each class in X.")
        if (getattr(self, "selection_", None) or {}).get("kept", "frozen_head") != "frozen_head":
            # the fitted model's recipe: the L2 head, its strength chosen out of fold again
            logits = cross_fit_probe(features.numpy(), targets.numpy(), folds).cross_fit.logits
        else:
            lr = self.lr_ if math.isfinite(self.lr_) else 0.01
            logits = cross_fit_logits(self, [features], targets, lr, trainer, seed, None, n_folds)
            logits = logits.logits
        agreement = neighbour_agreement(features, labels)
        p = self._calibrated(logits)
        return LabelIssues.rank(data.items, labels, p, classes, n, agreement)
