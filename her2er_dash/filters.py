"""Declarative cohort filters: what the sidebar selects, as one hashable, describable value.

A :class:`CohortFilter` is frozen (so it can key a cache), can serialise itself to a plain dict
(for the URL and the reproducibility bundle), applies itself to a canonical cohort, and reports the
flow of counts through every criterion so that no exclusion is silent.

A range (ER level, age) keeps the patients whose value is unknown: a filter never excludes
patients the user did not choose to exclude. Unknown values are excluded only by naming the
column in ``exclude_missing``, which is its own, counted step of the flow.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np
import pandas as pd

from ._data import matches_text
from .errors import AnalysisError

#: Categorical criteria: (field name, cohort column, label used in sentences).
_CATEGORICAL = (
    ("er_categories", "er_category", "ER category"),
    ("her2_status", "her2_status", "HER2 status"),
    ("her2_category", "her2_category", "HER2 category"),
    ("hr_status", "hr_status", "HR status"),
    ("pr_status", "pr_status", "PR status"),
    ("arms", "arm", "arm"),
    ("studies", "study", "study"),
    ("t_stage", "t_stage", "T stage"),
    ("n_stage", "n_stage", "N stage"),
)


@dataclass(frozen=True)
class CohortFilter:
    """Sidebar selection. Empty tuples and ``None`` ranges mean "no restriction".

    ``er_measure`` names the ER level column used for the range and for ER categories;
    ``er_low``/``er_high`` override its default category cut-points (see
    :class:`her2er_dash.classify.ERCutpoints`). Ranges keep patients with an unknown value;
    ``exclude_missing`` names the columns whose unknown values are excluded (e.g. ``("age",)``).
    ``pcr_itt`` counts patients without a pCR result (no surgery, or no pathology) as non-pCR,
    the intention-to-treat convention of CTNeoBC and the FDA, within studies that record pCR at
    all.
    """

    er_measure: str | None = None
    er_low: float | None = None
    er_high: float | None = None
    er_range: tuple[float, float] | None = None
    er_categories: tuple[str, ...] = ()
    her2_status: tuple[str, ...] = ()
    her2_category: tuple[str, ...] = ()
    hr_status: tuple[str, ...] = ()
    pr_status: tuple[str, ...] = ()
    arms: tuple[str, ...] = ()
    studies: tuple[str, ...] = ()
    t_stage: tuple[str, ...] = ()
    n_stage: tuple[str, ...] = ()
    age_range: tuple[float, float] | None = None
    exclude_missing: tuple[str, ...] = ()
    pcr_itt: bool = False

    # -- serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict:
        """Only the criteria that restrict something, as JSON-friendly values."""
        out = {}
        for key, value in asdict(self).items():
            if value is None or value is False or value == ():
                continue
            out[key] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls, data: dict) -> CohortFilter:
        """Inverse of :meth:`to_dict`; unknown keys are ignored, values are validated."""
        known = {f.name for f in fields(cls)}
        kwargs = {}
        for key, value in data.items():
            if key not in known or value is None:
                continue
            if key in ("er_range", "age_range"):
                low, high = (float(v) for v in value)
                kwargs[key] = (min(low, high), max(low, high))
            elif key in ("er_low", "er_high"):
                kwargs[key] = float(value)
            elif key == "er_measure":
                kwargs[key] = str(value)
            elif key == "pcr_itt":
                kwargs[key] = value is True or str(value).lower() in ("1", "true", "yes")
            else:
                kwargs[key] = tuple(str(v) for v in value)
        return cls(**kwargs)

    # -- application ---------------------------------------------------------------------
    def cutpoints(self, df: pd.DataFrame | None = None):
        """The ER category cut-points in force (defaults for the measure, with overrides)."""
        from .classify import ERCutpoints, default_cutpoints

        measure = self.er_measure or "er_percent"
        values = df[measure] if df is not None and measure in df.columns else None
        base = default_cutpoints(measure, values=values)
        low = self.er_low if self.er_low is not None else base.low
        high = self.er_high if self.er_high is not None else base.high
        return ERCutpoints(measure=measure, low=low, high=high)

    def classify(self, df: pd.DataFrame) -> pd.DataFrame:
        """The cohort with ER categories (and derivable statuses) under this filter's cut-points."""
        from .classify import classify_cohort

        return classify_cohort(df, er_cutpoints=self.cutpoints(df))

    def select(self, classified: pd.DataFrame) -> FilterResult:
        """Keep the rows of an already classified cohort that meet every criterion.

        Split from :meth:`classify` so that an app can classify once per cut-point setting and
        re-select cheaply on every other filter change.
        """
        keep = np.ones(len(classified), dtype=bool)
        steps = [("All patients", "", len(classified), 0)]
        for label, mask in self._criteria(classified):
            before = int(keep.sum())
            keep &= mask
            note = self._missing_note(classified, label)
            steps.append((label, note, int(keep.sum()), before - int(keep.sum())))
        flow = pd.DataFrame(steps, columns=["criterion", "note", "n_remaining", "n_excluded"])
        data = classified if keep.all() else classified.loc[keep]
        notes: tuple[str, ...] = ()
        if self.pcr_itt:
            data, notes = _pcr_intention_to_treat(data)
        return FilterResult(data=data, flow=flow, n_total=len(classified), notes=notes)

    def apply(self, df: pd.DataFrame) -> FilterResult:
        """Classify with this filter's cut-points, then keep the rows meeting every criterion."""
        return self.select(self.classify(df))

    def criteria(self, columns) -> list[Criterion]:
        """The criteria that apply to a cohort with these ``columns``, in the order of the flow.

        One description serves every engine (pandas masks here, SQL in ``her2er_dash.engine``),
        so labels, order and the handling of unknown values cannot drift apart.
        """
        columns = set(columns)
        out = []
        for column, span in ((self.er_measure, self.er_range), ("age", self.age_range)):
            if span is None or column not in columns:
                continue
            low, high = span
            out.append(Criterion(f"{column} in [{low:g}, {high:g}]", column, "range", (low, high)))
        for column in self.exclude_missing:
            if column in columns:
                out.append(Criterion(f"known {column}", column, "known", None))
        for name, column, label in _CATEGORICAL:
            chosen = getattr(self, name)
            if not chosen:
                continue
            if column not in columns:
                raise AnalysisError(
                    f"The filter on {label} cannot be applied: this cohort has no {column} column."
                )
            out.append(Criterion(f"{label}: {', '.join(chosen)}", column, "in", tuple(chosen)))
        return out

    def _criteria(self, data: pd.DataFrame):
        for criterion in self.criteria(data.columns):
            values = data[criterion.column]
            if criterion.kind == "range":
                low, high = criterion.value
                values = pd.to_numeric(values, errors="coerce")
                inside = values.between(low, high) | values.isna()  # unknown: kept (docstring)
                yield criterion.label, inside.to_numpy()
            elif criterion.kind == "known":
                yield criterion.label, values.notna().to_numpy()
            else:
                yield criterion.label, matches_text(values, criterion.value)

    @staticmethod
    def _missing_note(data: pd.DataFrame, label: str) -> str:
        column, kept = note_column(label)
        if column is None or column not in data.columns:
            return ""
        return missing_note(column, int(data[column].isna().sum()), kept)

    def describe(self) -> str:
        """A sentence for captions and the methods paragraph, e.g. "HER2 status: positive; age in [40, 70]"."""
        parts = []
        if self.er_range is not None:
            parts.append(f"{self.er_measure} in [{self.er_range[0]:g}, {self.er_range[1]:g}]"
                         + ("" if self.er_measure in self.exclude_missing else " (unknown kept)"))
        if self.age_range is not None:
            parts.append(f"age in [{self.age_range[0]:g}, {self.age_range[1]:g}]"
                         + ("" if "age" in self.exclude_missing else " (unknown kept)"))
        parts += [f"known {column}" for column in self.exclude_missing]
        for name, _, label in _CATEGORICAL:
            chosen = getattr(self, name)
            if chosen:
                parts.append(f"{label}: {', '.join(chosen)}")
        text = "; ".join(parts) if parts else "no filters (all patients)"
        if self.pcr_itt:
            text += "; pCR by intention to treat (no pCR result counted as non-pCR)"
        return text

    def exclusion_sentences(self, flow: pd.DataFrame) -> list[tuple[str, int]]:
        """Each exclusion of ``flow`` (from :meth:`select`) in plain words, with its count.

        E.g. ``("patients whose HER2 status was not positive (12 of them unknown)", 325)`` rather
        than the criterion label "HER2 status: positive".
        """
        sentences = []
        for row in flow.iloc[1:].itertuples():
            if row.n_excluded:
                sentences.append((self._sentence(row.criterion, row.note), int(row.n_excluded)))
        return sentences

    def _sentence(self, criterion: str, note: str) -> str:
        from .schema import column_label

        if criterion.startswith("known "):  # the explicit step excluding unknown values
            return f"patients with an unknown {column_label(criterion.removeprefix('known '))}"
        if " in [" in criterion:  # a range keeps unknown values (they are not excluded here)
            column, bounds = criterion.split(" in ", 1)
            return f"patients with {column_label(column)} outside {bounds}"
        unknown = ""
        if note:
            unknown = f" ({note.split(' with unknown')[0]} of them with an unknown value)"
        label, chosen = criterion.split(": ", 1)
        column = next((c for _, c, lab in _CATEGORICAL if lab == label), label)
        what = column_label(column)
        values = chosen.split(", ")
        wanted = values[0] if len(values) == 1 else f"{', '.join(values[:-1])} or {values[-1]}"
        return f"patients whose {what} was not {wanted}{unknown}"


@dataclass(frozen=True)
class Criterion:
    """One step of the flow: ``kind`` is "range" (``value`` = (low, high), unknown kept),
    "known" (unknown excluded) or "in" (``value`` = the chosen levels, as text)."""

    label: str
    column: str
    kind: str
    value: object


def note_column(label: str) -> tuple[str | None, bool]:
    """The column whose unknown values a criterion's note counts, and whether they are kept
    (ranges keep them; level choices exclude them; "known" steps need no note)."""
    column = next((c for _, c, lab in _CATEGORICAL if label.startswith(f"{lab}:")), None)
    if column is None and " in [" in label:
        return label.split(" in [")[0], True
    return column, False


def missing_note(column: str, n_missing: int, kept: bool) -> str:
    """Tell the user that patients with an unknown value fail (or pass) a criterion."""
    if not n_missing:
        return ""
    return f"{n_missing:,} with unknown {column} {'kept' if kept else 'excluded'}"


def itt_note(n_missing: int, n_without_surgery: int | None) -> str:
    """The sentence saying how many missing pCR results intention to treat counted as non-pCR."""
    note = f"pCR by intention to treat: {n_missing:,} patients without a pCR result"
    if n_without_surgery is not None:
        note += f" ({n_without_surgery:,} without surgery)"
    return note + " counted as non-pCR."


ITT_COMPLETE = "pCR by intention to treat: every patient has a pCR result."


def _pcr_intention_to_treat(data: pd.DataFrame) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """Missing pCR counted as non-pCR, within studies that record pCR for anyone."""
    if "pcr" not in data.columns:
        return data, ()
    pcr = pd.to_numeric(data["pcr"], errors="coerce")
    missing = pcr.isna().to_numpy()
    if "study" in data.columns:
        recorded = pcr.notna().groupby(data["study"].astype(object).fillna(""), sort=False).any()
        studies = data["study"].astype(object).fillna("")
        missing &= studies.map(recorded).fillna(False).to_numpy(dtype=bool)
    elif not pcr.notna().any():
        missing[:] = False
    if not missing.any():
        return data, (ITT_COMPLETE,)
    no_surgery = None
    if "surgery_months" in data.columns:
        no_surgery = int((missing & data["surgery_months"].isna().to_numpy()).sum())
    note = itt_note(int(missing.sum()), no_surgery)
    return data.assign(pcr=pcr.where(~missing, 0.0)), (note,)


@dataclass(frozen=True)
class FilterResult:
    """Filtered cohort plus the flow of counts through the criteria (and notes on how pCR was
    counted).

    ``n_selected`` is set when ``data`` holds only a random sample of the selected patients (a
    registry queried in a database): it is then the number selected, and ``data`` the sample.
    """

    data: pd.DataFrame
    flow: pd.DataFrame
    n_total: int
    notes: tuple[str, ...] = ()
    n_selected: int | None = None

    @property
    def n(self) -> int:
        return len(self.data) if self.n_selected is None else self.n_selected

    @property
    def sampled(self) -> bool:
        """True when ``data`` is a sample of fewer patients than were selected."""
        return self.n_selected is not None and len(self.data) < self.n_selected

    def describe(self) -> str:
        """ "n = 212 of 2,000 patients; excluded: 1,788 (HER2 status: positive 1,700; ...)"."""
        excluded = self.flow.iloc[1:]
        excluded = excluded[excluded["n_excluded"] > 0]
        text = f"n = {self.n:,} of {self.n_total:,} patients"
        kept = [str(r.note) for r in self.flow.iloc[1:].itertuples() if "kept" in str(r.note)]
        kept_text = f"; kept: {', '.join(kept)}" if kept else ""
        if excluded.empty:
            text += "; excluded: none"
        else:
            detail = "; ".join(f"{r.criterion} → −{r.n_excluded:,}" for r in excluded.itertuples())
            text = f"{text}; excluded: {self.n_total - self.n:,} ({detail})"
        return " ".join([text + kept_text, *self.notes])
