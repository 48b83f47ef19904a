"""The DuckDB registry engine gives the pandas engine's numbers on the same patients.

Classification (ER category, statuses, HER2 category under any cut-points), the sidebar's flow of
patients, intention-to-treat pCR, and every counts-first analysis (Kaplan-Meier, log-rank, pCR
rates, comparisons, Cox with categorical terms and its PH test, subgroup forests) are compared
between ``Registry`` (Parquet read by DuckDB) and ``CohortFilter`` + the row-level functions on
the same data read by pandas. Also: the registry refuses codings it would misread, spills only
into its own private folder (an in-memory one never), and the data folder never offers or opens
anything outside itself.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from her2er_dash import contrasts, datasets, response, simulate, subgroups, survival
from her2er_dash.counts import COUNT
from her2er_dash.engine import DataFolder, Registry
from her2er_dash.errors import AnalysisError, CohortError
from her2er_dash.filters import CohortFilter

T, E = "efs_months", "efs_event"
DERIVED = ("er_category", "er_status", "er_status_recorded", "pr_status", "hr_status",
           "hr_status_recorded", "her2_status", "her2_category")
REL = 1e-9


def as_text(values: pd.Series) -> list:
    return [None if pd.isna(v) else str(v) for v in values]


def classified_both(frame: pd.DataFrame, flt: CohortFilter) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(pandas classification, registry classification), rows in patient_id order (made
    unique: pooled cohorts repeat IDs across studies)."""
    frame = frame.assign(patient_id=[f"{i:06d}" for i in range(len(frame))])
    reg = Registry.from_frame(frame, threads=1)
    ours = reg.sample(flt, size=10**9).sort_values("patient_id").reset_index(drop=True)
    theirs = flt.classify(frame).sort_values("patient_id").reset_index(drop=True)
    return theirs, ours


def assert_close(a, b, rel=REL) -> None:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    nan = np.isnan(a) & np.isnan(b)
    assert (nan | (np.abs(a - b) <= rel * np.maximum(np.abs(a), np.abs(b)))).all(), (a, b)


def assert_frames(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert list(a.columns) == list(b.columns)
    assert len(a) == len(b)
    for column in a.columns:
        if pd.api.types.is_numeric_dtype(a[column]) and not pd.api.types.is_bool_dtype(a[column]):
            assert_close(a[column], b[column])
        else:
            assert as_text(a[column]) == as_text(b[column]), column


# ------------------------------------------------------------------------------------------------
# Classification: SQL rules = classify_cohort
# ------------------------------------------------------------------------------------------------

STATUS = st.sampled_from(["positive", "negative", None])


@st.composite
def receptor_frames(draw):
    n = draw(st.integers(1, 60))

    def column(strategy):
        return draw(st.lists(strategy, min_size=n, max_size=n))

    frame = pd.DataFrame({"patient_id": [f"P{i:03d}" for i in range(n)]})
    optional = {
        "er_percent": st.one_of(st.none(), st.sampled_from([0.0, 0.5, 1.0, 5.0, 10.0, 10.5, 80.0])),
        "er_allred": st.one_of(st.none(), st.sampled_from([0.0, 2.0, 3.0, 8.0])),
        "er_status": STATUS, "pr_status": STATUS, "hr_status": STATUS, "her2_status": STATUS,
        "pr_percent": st.one_of(st.none(), st.sampled_from([0.0, 0.9, 1.0, 50.0])),
        "her2_ihc": st.one_of(st.none(), st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.0])),
        "her2_ish_ratio": st.one_of(st.none(), st.sampled_from([1.0, 1.99, 2.0, 3.5])),
        "her2_copy_number": st.one_of(st.none(), st.sampled_from([2.0, 3.99, 4.0, 5.9, 6.0, 9.0])),
        "her2_category": st.one_of(st.none(), st.sampled_from(["HER2-positive", "HER2-low"])),
    }
    chosen = draw(st.sets(st.sampled_from(sorted(optional)), min_size=1))
    for name in sorted(chosen):
        values = column(optional[name])
        frame[name] = pd.to_numeric(pd.Series(values, dtype=object)) if name in (
            "er_percent", "er_allred", "pr_percent", "her2_ihc", "her2_ish_ratio",
            "her2_copy_number") else pd.Series(values, dtype=object)
    return frame


CUTS = st.sampled_from([CohortFilter(), CohortFilter(er_low=5.0, er_high=50.0),
                        CohortFilter(er_high=1.0), CohortFilter(er_measure="er_allred"),
                        CohortFilter(er_measure="er_allred", er_high=4.0)])


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(receptor_frames(), CUTS)
def test_sql_classification_equals_classify_cohort(frame, flt):
    theirs, ours = classified_both(frame, flt)
    for column in DERIVED:
        assert (column in theirs.columns) == (column in ours.columns), column
        if column in theirs.columns:
            assert as_text(theirs[column]) == as_text(ours[column]), column


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """A synthetic trial with missing values sprinkled in, as Parquet and as pandas reads it."""
    df = simulate.trial(6000, seed=5, n_studies=5)
    rng = np.random.default_rng(1)
    for column in ("er_percent", "pr_percent", "age", "pcr", T, "her2_ihc"):
        df.loc[rng.random(len(df)) < 0.03, column] = np.nan
    df.loc[rng.random(len(df)) < 0.05, "er_status"] = np.nan
    path = tmp_path_factory.mktemp("reg") / "trial.parquet"
    df.to_parquet(path, index=False)
    return path, pd.read_parquet(path)


@pytest.mark.parametrize("key", ["ispy1", "ispy2", "curated_neoadjuvant", "gbsg2", "synthetic"])
@pytest.mark.parametrize("recorded", [False, True], ids=["as_loaded", "classified_file"])
def test_sql_classification_equals_classify_on_bundled_cohorts(key, recorded):
    frame = datasets.bundled(key).data
    if not recorded:  # else: a file written from classified data (with *_recorded columns)
        frame = frame.drop(columns=[c for c in ("er_category", "er_status_recorded",
                                                "hr_status_recorded") if c in frame.columns])
    for flt in (CohortFilter(), CohortFilter(er_low=5.0, er_high=20.0)):
        theirs, ours = classified_both(frame, flt)
        for column in DERIVED:
            if column in theirs.columns:
                assert as_text(theirs[column]) == as_text(ours[column]), (key, column)


# ------------------------------------------------------------------------------------------------
# The flow of patients through the filters
# ------------------------------------------------------------------------------------------------

FILTERS = [
    CohortFilter(),
    CohortFilter(her2_status=("positive",)),
    CohortFilter(her2_status=("positive",), t_stage=("T1", "T2"), n_stage=("N0",)),
    CohortFilter(er_range=(1.0, 60.0), er_categories=("ER-low", "ER-positive")),
    CohortFilter(age_range=(40.0, 60.0), exclude_missing=("age",), pr_status=("negative",)),
    CohortFilter(er_low=5.0, er_high=30.0, hr_status=("positive",), pcr_itt=True),
    CohortFilter(pcr_itt=True, studies=("SYN-01", "SYN-03")),
    CohortFilter(er_measure="er_allred", arms=("Chemo + trastuzumab",), her2_category=("HER2-low",)),
]


@pytest.mark.parametrize("flt", FILTERS, ids=lambda f: f.describe()[:40])
def test_flow_and_notes_equal_the_pandas_selection(synthetic, flt):
    path, frame = synthetic
    reg = Registry.open(path, threads=2)
    selection = reg.select(flt)
    expected = flt.apply(frame)
    pd.testing.assert_frame_equal(selection.flow, expected.flow)
    assert selection.n == expected.n
    assert selection.notes == expected.notes
    sample = reg.sample(flt, size=10**9).sort_values("patient_id").reset_index(drop=True)
    rows = expected.data.sort_values("patient_id").reset_index(drop=True)
    assert_close(sample["pcr"], rows["pcr"])  # ITT recoding included


def test_a_filter_on_a_missing_column_is_refused_as_in_pandas(synthetic):
    _, frame = synthetic
    without_arm = frame.drop(columns=["arm"])
    flt = CohortFilter(arms=("Chemo + trastuzumab",))
    with pytest.raises(AnalysisError, match="no arm column") as pandas_refusal:
        flt.apply(without_arm)
    with pytest.raises(AnalysisError, match="no arm column") as engine_refusal:
        Registry.from_frame(without_arm).select(flt)
    assert str(pandas_refusal.value) == str(engine_refusal.value)


def test_levels_ranges_unknown_and_values_per_column_equal_pandas(synthetic):
    path, frame = synthetic
    reg = Registry.open(path)
    classified = CohortFilter().classify(frame)
    for column in ("arm", "study", "grade", "er_category", "her2_status", "pr_status"):
        expected = [str(c) for c in classified[column].cat.categories
                    if (classified[column] == c).any()]
        assert reg.levels(column) == expected
    flt = CohortFilter(her2_status=("positive",))
    chosen = flt.apply(frame).data
    assert reg.levels("arm", flt) == [str(c) for c in chosen["arm"].cat.categories
                                      if (chosen["arm"] == c).any()]
    assert reg.range("age") == (frame["age"].min(), frame["age"].max())
    assert reg.unknown("age") == int(frame["age"].isna().sum())
    counts = reg.values_per_column()
    assert counts["er_percent"] == frame["er_percent"].notna().sum()
    assert reg.cutpoints(CohortFilter(er_low=2.0)) == CohortFilter(er_low=2.0).cutpoints(frame)


@pytest.mark.parametrize("flt", [
    CohortFilter(),
    CohortFilter(her2_status=("positive",)),
    # filters that leave levels of other columns with no patient (the probes must drop them)
    CohortFilter(her2_status=("positive",), er_categories=("ER-low",)),
    CohortFilter(er_categories=("ER-negative",), pcr_itt=True),
], ids=["none", "her2", "her2-erlow", "erneg-itt"])
# the block sample shows every value (a small registry), or none: then one GROUP BY settles
# all columns, over their combinations or (past PRESENCE_MAX_GROUPS) one grouping per column
@pytest.mark.parametrize(("sample_rows", "max_groups"), [(100_000, 10**6), (0, 10**6), (0, 0)],
                         ids=["sampled", "scanned", "scanned-per-column"])
def test_levels_of_every_column_under_a_filter_equal_the_selected_rows(synthetic, flt, sample_rows,
                                                                        max_groups, monkeypatch):
    from her2er_dash.engine import registry as engine_registry

    monkeypatch.setattr(engine_registry, "PRESENCE_SAMPLE_ROWS", sample_rows)
    monkeypatch.setattr(engine_registry, "PRESENCE_MAX_GROUPS", max_groups)
    path, frame = synthetic
    reg = Registry.open(path)
    rows = flt.apply(frame).data
    for column in reg.classified_columns(reg.cutpoints(flt)):
        if column not in rows.columns or column in ("patient_id", "age", "er_percent"):
            continue
        values = rows[column].dropna()
        if isinstance(values.dtype, pd.CategoricalDtype):
            expected = [str(c) for c in values.cat.categories if (values == c).any()]
        elif pd.api.types.is_numeric_dtype(values) and reg._is_level_column(column):
            expected = sorted({str(float(v)) for v in values})
        else:
            continue
        assert reg.levels(column, flt) == expected, column


def test_the_sample_is_a_stable_random_subset(synthetic):
    path, frame = synthetic
    reg = Registry.open(path)
    flt = CohortFilter(her2_status=("positive",))
    first, again = reg.sample(flt, size=1000), reg.sample(flt, size=1000)
    pd.testing.assert_frame_equal(first, again)
    assert 800 < len(first) < 1200
    assert first.attrs["sample_of"] == flt.apply(frame).n
    assert set(first["patient_id"]) <= set(flt.apply(frame).data["patient_id"])
    # not the first rows of the file: drawn from all of it
    positions = frame.reset_index().set_index("patient_id").loc[first["patient_id"], "index"]
    assert positions.max() > 0.9 * len(frame)


# ------------------------------------------------------------------------------------------------
# Analyses on the registry's counts = analyses on the pandas rows
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def both(synthetic):
    path, frame = synthetic
    flt = CohortFilter(her2_status=("positive",), pcr_itt=True)
    return Registry.open(path, threads=2), flt, flt.apply(frame).data


def test_kaplan_meier_and_logrank(both):
    reg, flt, rows = both
    cells = reg.counts(flt, [T, E, "er_category", "study"])
    for by in (None, "er_category"):
        a = survival.kaplan_meier(rows, T, E, by=by)
        b = survival.kaplan_meier(cells, T, E, by=by)
        assert_frames(a.table, b.table)
        assert_frames(a.medians, b.medians)
        assert a.exclusions == b.exclusions
    for strata in (None, "study"):
        a = survival.logrank(rows, T, E, "er_category", pairwise=True, strata=strata)
        b = survival.logrank(cells, T, E, "er_category", pairwise=True, strata=strata)
        assert_close([a.statistic], [b.statistic])
        assert_frames(a.table, b.table)
        assert_frames(a.pairwise, b.pairwise)


def test_pcr_rates_comparisons_and_definitions(both):
    reg, flt, rows = both
    cells = reg.counts(flt, ["pcr", "er_category", "arm", "study", "pcr_definition"])
    assert_frames(response.pcr_rates(rows, ["er_category", "arm"]),
                  response.pcr_rates(cells, ["er_category", "arm"]))
    assert_frames(response.compare(rows, "er_category"), response.compare(cells, "er_category"))
    assert_frames(response.pcr_definitions(rows), response.pcr_definitions(cells))


def test_cox_with_categorical_terms_and_its_ph_test(both):
    reg, flt, rows = both
    cells = reg.counts(flt, [T, E, "er_category", "arm", "study"])
    for strata in (None, "study"):
        a = survival.cox(rows, T, E, ["er_category", "arm"], strata=strata)
        b = survival.cox(cells, T, E, ["er_category", "arm"], strata=strata)
        assert_frames(a.table, b.table)
        assert_frames(a.ph_test, b.ph_test)
        assert_close([a.lr_statistic, *a.loglik], [b.lr_statistic, *b.loglik])
        assert (a.n, a.events) == (b.n, b.events)


@pytest.mark.parametrize("outcome", ["pcr", (T, E)])
def test_subgroup_forests(both, outcome):
    reg, flt, rows = both
    wanted = ["arm", "grade", "t_stage", "n_stage"]
    outcomes = [outcome] if isinstance(outcome, str) else list(outcome)
    cells = reg.counts(flt, [*outcomes, "er_status", *wanted])
    a = subgroups.forest(rows, exposure="er_status", subgroups=wanted, outcome=outcome,
                         reference="negative")
    b = subgroups.forest(cells, exposure="er_status", subgroups=wanted, outcome=outcome,
                         reference="negative")
    assert_frames(a, b)
    cells = reg.counts(flt, [*outcomes, "er_category", *wanted])
    options = {"exposure": "er_category", "level": "ER-positive", "reference": "ER-negative",
               "subgroups_": wanted, "outcome": outcome}
    assert_frames(contrasts.two_level_forest(rows, **options),
                  contrasts.two_level_forest(cells, **options))


def test_a_folder_of_files_is_one_registry(synthetic, tmp_path):
    path, frame = synthetic
    folder = tmp_path / "split"
    folder.mkdir()
    for i, start in enumerate(range(0, len(frame), 2500)):
        frame.iloc[start:start + 2500].to_parquet(folder / f"part{i}.parquet", index=False)
    reg, whole = Registry.open(folder), Registry.open(path)
    flt = CohortFilter(her2_status=("positive",))
    pd.testing.assert_frame_equal(reg.select(flt).flow, whole.select(flt).flow)
    a = survival.kaplan_meier(reg.counts(flt, [T, E, "arm"]), T, E, by="arm")
    b = survival.kaplan_meier(whole.counts(flt, [T, E, "arm"]), T, E, by="arm")
    assert_frames(a.table, b.table)


def test_esr1_median_cutpoint_comes_from_the_whole_registry(tmp_path):
    frame = pd.DataFrame({"patient_id": [f"p{i}" for i in range(7)],
                          "esr1_mrna": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, np.nan]})
    frame.to_parquet(tmp_path / "m.parquet", index=False)
    reg = Registry.open(tmp_path / "m.parquet")
    cut = reg.cutpoints(CohortFilter(er_measure="esr1_mrna"))
    assert cut == CohortFilter(er_measure="esr1_mrna").cutpoints(frame)
    assert cut.high == 3.5


# ------------------------------------------------------------------------------------------------
# Refusals and privacy
# ------------------------------------------------------------------------------------------------


def test_registry_refuses_codings_it_would_misread(tmp_path):
    bad = pd.DataFrame({"patient_id": ["a", "b"], "er_status": ["Pos", "negative"]})
    bad.to_parquet(tmp_path / "bad.parquet", index=False)
    with pytest.raises(CohortError, match=r"er_status has 1 value\(s\) other than negative, "):
        Registry.open(tmp_path / "bad.parquet")
    text = pd.DataFrame({"patient_id": ["a"], "age": ["fifty"]})
    text.to_parquet(tmp_path / "text.parquet", index=False)
    with pytest.raises(CohortError, match="age .* must hold numbers"):
        Registry.open(tmp_path / "text.parquet")
    none = pd.DataFrame({"x": [1], "y": [2]})
    none.to_parquet(tmp_path / "none.parquet", index=False)
    with pytest.raises(CohortError, match="canonical column names"):
        Registry.open(tmp_path / "none.parquet")
    ihc = pd.DataFrame({"patient_id": ["a"], "her2_ihc": [5.0]})
    ihc.to_parquet(tmp_path / "ihc.parquet", index=False)
    with pytest.raises(CohortError, match="her2_ihc"):
        Registry.open(tmp_path / "ihc.parquet")
    (tmp_path / "junk.parquet").write_bytes(b"not parquet")
    with pytest.raises(CohortError, match="could not be read"):
        Registry.open(tmp_path / "junk.parquet")


def test_registry_never_spills_to_disk_and_reads_memory_tables(synthetic):
    _, frame = synthetic
    reg = Registry.from_frame(frame)
    assert reg._scalar("SELECT current_setting('temp_directory')") == ""
    assert reg.files == ()
    flt = CohortFilter(her2_status=("positive",))
    pd.testing.assert_frame_equal(reg.select(flt).flow, flt.apply(frame).flow)


def test_counts_refuse_unknown_columns_and_empty_selections(both):
    reg, flt, _ = both
    with pytest.raises(AnalysisError, match="no column 'nope'"):
        reg.counts(flt, ["nope"])
    with pytest.raises(AnalysisError, match="No patient is selected"):
        reg.counts(CohortFilter(studies=("no such study",)), ["arm"])


# ------------------------------------------------------------------------------------------------
# The operator's data folder
# ------------------------------------------------------------------------------------------------


@pytest.fixture
def data_folder(tmp_path, synthetic):
    path, frame = synthetic
    root = tmp_path / "registries"
    (root / "split").mkdir(parents=True)
    (root / "trial.parquet").write_bytes(path.read_bytes())
    frame.iloc[:100].to_parquet(root / "split" / "a.parquet", index=False)
    frame.iloc[100:].to_parquet(root / "split" / "b.parquet", index=False)
    (root / "notes.txt").write_text("not a registry")
    (root / ".hidden.parquet").write_bytes(path.read_bytes())
    (root / "empty").mkdir()
    outside = tmp_path / "secret"
    outside.mkdir()
    frame.iloc[:10].to_parquet(outside / "secret.parquet", index=False)
    os.symlink(outside / "secret.parquet", root / "linked_out.parquet")
    os.symlink(outside, root / "linked_folder")
    os.symlink(root / "trial.parquet", root / "alias.parquet")  # stays inside: allowed
    (root / "mixed").mkdir()
    frame.iloc[:10].to_parquet(root / "mixed" / "ok.parquet", index=False)
    os.symlink(outside / "secret.parquet", root / "mixed" / "escape.parquet")
    return root, outside


def test_data_folder_offers_only_registries_inside_it(data_folder):
    root, _ = data_folder
    folder = DataFolder(root)
    assert folder.entries() == ["alias.parquet", "trial.parquet", "split"]
    assert [p.name for p in folder.resolve("split")] == ["a.parquet", "b.parquet"]
    reg = folder.open("split")
    assert reg.n == 6000
    assert reg.name == "split"


@pytest.mark.parametrize("name", ["../secret/secret.parquet", "..", "/etc/passwd", "linked_out.parquet",
                                  "linked_folder", "mixed", ".hidden.parquet", "notes.txt",
                                  "split/a.parquet", "", "empty", "trial.parquet/..",
                                  "..\\secret\\secret.parquet"])
def test_data_folder_refuses_paths_outside_or_not_offered(data_folder, name):
    root, outside = data_folder
    with pytest.raises(CohortError, match="not a registry of the data folder|holds no readable"):
        DataFolder(root).resolve(name)


def test_data_folder_resolves_exactly_the_entries_it_offers(data_folder):
    """resolve() checks one entry without walking the folder: it must agree with entries()."""
    root, _ = data_folder
    folder = DataFolder(root)
    offered = folder.entries()
    for child in root.iterdir():
        try:
            folder.resolve(child.name)
            resolved = True
        except CohortError:
            resolved = False
        assert resolved == (child.name in offered), child.name


def test_data_folder_refuses_an_absolute_path_even_inside_it(data_folder):
    root, _ = data_folder
    with pytest.raises(CohortError, match="not a registry"):
        DataFolder(root).resolve(str(root / "trial.parquet"))


def test_data_folder_must_exist(tmp_path):
    with pytest.raises(CohortError, match="does not exist"):
        DataFolder(tmp_path / "nope")


# ------------------------------------------------------------------------------------------------
# The classification is computed once per registry and cut-points (a table), never reused stale
# ------------------------------------------------------------------------------------------------


def _category_counts(frame: pd.DataFrame) -> dict:
    return {str(k): int(v) for k, v in frame["er_category"].value_counts(dropna=False).items()}


def test_new_cutpoints_give_a_new_classification(synthetic):
    path, frame = synthetic
    reg = Registry.open(path, threads=1)
    default, moved = CohortFilter(), CohortFilter(er_low=30.0, er_high=60.0)
    first = reg.classified_table(default)
    assert reg.classified_table(default) == first  # computed once, then reused
    other = reg.classified_table(moved)
    assert other != first
    assert reg.fingerprint in other
    for flt in (moved, default, moved):  # switching back and forth: each its own numbers
        cells = reg.counts(flt, ["er_category"]).table
        ours = {str(k): int(v) for k, v in zip(cells["er_category"], cells["n_patients"],
                                                strict=True)}
        assert ours == _category_counts(flt.classify(frame))
    assert reg.classified_table(default) == first


def test_a_selection_follows_the_cutpoints(synthetic):
    path, frame = synthetic
    reg = Registry.open(path, threads=1)
    for low, high in ((1.0, 10.0), (30.0, 60.0), (1.0, 10.0)):
        flt = CohortFilter(er_low=low, er_high=high, er_categories=("ER-low",))
        assert reg.select(flt).n == len(flt.apply(frame).data)


def test_classified_tables_are_bounded_private_and_removed(synthetic, tmp_path, monkeypatch):
    import tempfile

    from her2er_dash.engine import registry as engine

    path, _ = synthetic
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    reg = Registry.open(path, threads=1)
    names = [reg.classified_table(CohortFilter(er_low=float(low), er_high=60.0))
             for low in (1, 5, 10)]
    tables = reg._fetch("SELECT table_name FROM duckdb_tables() WHERE database_name = "
                        "'classified'")["table_name"].tolist()
    kept = [n.rsplit(".", 1)[1] for n in names[-engine.KEEP_CLASSIFIED:]]
    kept += [f"{n}_head" for n in kept]
    assert sorted(tables) == sorted(kept)  # the oldest cut-points' tables were dropped
    scratch = [p for p in tmp_path.iterdir() if p.name.startswith("her2er-registry-")]
    assert len(scratch) == 1
    assert (scratch[0].stat().st_mode & 0o777) == 0o700
    assert not any(p.suffix == ".duckdb" for p in path.parent.iterdir())  # never beside the data
    reg.close()
    assert not scratch[0].exists()
    flt = CohortFilter(her2_status=("positive",))
    assert reg.select(flt).n == Registry.open(path).select(flt).n  # rebuilt on demand


def test_a_file_registrys_rows_are_stored_by_study_then_time_and_spill_only_privately(
        synthetic, tmp_path, monkeypatch):
    """The counts group rows of the same time together (see Registry._row_order): the stored
    table is ordered by study, then the first endpoint's time (missing times last within a
    study), and anything DuckDB spills goes into the registry's own private folder."""
    import tempfile

    path, frame = synthetic
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    reg = Registry.open(path, threads=2)
    table = reg.classified_table(CohortFilter())
    assert reg._row_order() == f' ORDER BY "study", "{T}"'
    stored = reg._fetch(f"SELECT study, {T} FROM {table} ORDER BY rowid")  # storage order
    study = stored["study"].astype(str).to_numpy()
    assert (study[1:] >= study[:-1]).all()
    for _, times in stored.groupby("study", observed=True, sort=False)[T]:
        known = times.dropna().to_numpy()
        assert (np.diff(known) >= 0).all()
        assert times.iloc[len(known):].isna().all()
    assert len(stored) == len(frame)
    spill = reg._scalar("SELECT current_setting('temp_directory')")
    scratch = next(p for p in tmp_path.iterdir() if p.name.startswith("her2er-registry-"))
    assert os.path.dirname(spill) == str(scratch)
    reg.close()
    assert not scratch.exists()
    # an in-memory registry (e.g. an upload) is never sorted, so it never spills
    memory = Registry.from_frame(frame)
    assert memory._row_order() == ""
    assert memory._scalar("SELECT current_setting('temp_directory')") == ""


def test_counts_many_equals_one_count_per_set(synthetic):
    path, _ = synthetic
    reg = Registry.open(path, threads=1)
    flt = CohortFilter(her2_status=("positive",), pcr_itt=True)
    sets = [[T, E, "er_category"], [T, E, "er_category", "study"], ["pcr", "arm"],
            [T, E, "er_category"]]
    for many, columns in zip(reg.counts_many(flt, sets), sets, strict=True):
        one = reg.counts(flt, columns)
        key = [*columns]
        a = many.table.sort_values(key).reset_index(drop=True)
        b = one.table.sort_values(key).reset_index(drop=True)
        pd.testing.assert_frame_equal(a, b, check_dtype=False, check_categorical=True)


def test_a_sample_from_the_lowest_keys_copy_equals_one_from_every_patient(synthetic, monkeypatch):
    from her2er_dash.engine import registry as engine

    path, _ = synthetic
    flt = CohortFilter(her2_status=("positive",), pcr_itt=True)
    monkeypatch.setattr(engine, "DEFAULT_SAMPLE", 100)
    samples = []
    for head in (5, 0):  # 500 patients' lowest keys copied / none (every patient scanned)
        monkeypatch.setattr(engine, "HEAD_SAMPLES", head)
        reg = Registry.open(path, threads=1)
        copied = reg._scalar(f"SELECT count(*) FROM {reg.classified_table(flt)}_head")
        assert copied == (0 if head == 0 else pytest.approx(500, rel=0.3))
        samples.append(reg.sample(flt, size=200))
    assert 100 < len(samples[0]) < 300
    pd.testing.assert_frame_equal(samples[0], samples[1])


def test_event_and_pcr_codes_are_stored_small_and_read_back_as_the_files_numbers(synthetic,
                                                                                 tmp_path):
    path, frame = synthetic
    flt = CohortFilter(her2_status=("positive",), pcr_itt=True)
    reg = Registry.open(path, threads=1)
    table = reg.classified_table(flt)
    types = dict(reg._fetch(f"DESCRIBE SELECT * FROM {table}")[["column_name",
                                                                "column_type"]].values)
    assert (types[E], types["pcr"]) == ("TINYINT", "TINYINT")
    assert types[T] == "DOUBLE"
    rows = flt.apply(frame).data
    sample = reg.sample(flt, size=10**9).sort_values("patient_id").reset_index(drop=True)
    expected = rows.sort_values("patient_id").reset_index(drop=True)
    for column in (E, "pcr", "os_event"):
        assert sample[column].dtype == np.float64
        assert_frames(expected[[column]], sample[[column]])
    assert reg.levels("pcr", flt) == sorted({str(v) for v in rows["pcr"].dropna()})
    # a value that is not a whole code keeps the column's numbers unchanged (DOUBLE)
    odd = frame.assign(efs_event=frame["efs_event"].where(frame.index != 3, 0.5))
    odd.to_parquet(tmp_path / "odd.parquet")
    other = Registry.open(tmp_path / "odd.parquet", threads=1)
    table = other.classified_table(CohortFilter())
    types = dict(other._fetch(f"DESCRIBE SELECT * FROM {table}")[["column_name",
                                                                  "column_type"]].values)
    assert (types[E], types["pcr"]) == ("DOUBLE", "TINYINT")
    assert 0.5 in set(other.sample(CohortFilter(), size=10**9)[E])


def test_writing_a_classified_table_imports_the_pages_modules_and_changes_nothing(
        synthetic, tmp_path, monkeypatch):
    import sys

    from her2er_dash.engine import registry as engine

    assert "scipy.stats" in engine.WARM_MODULES  # the response analyses' p-values and intervals
    probe = f"her2er_warm_probe_{os.getpid()}"
    (tmp_path / f"{probe}.py").write_text("IMPORTED = True\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, probe, raising=False)
    path, _ = synthetic
    flt = CohortFilter(her2_status=("positive",), pcr_itt=True)
    sets = [[T, E, "er_category", "study"], ["pcr", "er_category", "her2_status"]]
    results = []
    for modules in ((), (probe, "her2er_no_such_module")):
        monkeypatch.setattr(engine, "WARM_MODULES", modules)
        reg = Registry.open(path, threads=1)
        reg.classified_table(flt)
        assert (probe in sys.modules) == bool(modules)  # imported while the table was written
        results.append((reg.select(flt).flow, reg.counts_many(flt, sets), reg.sample(flt)))
    # a module that cannot be imported is left to fail where it is used; numbers are the same
    (flow, counts, sample), (flow2, counts2, sample2) = results
    pd.testing.assert_frame_equal(flow, flow2)
    pd.testing.assert_frame_equal(sample, sample2)
    for a, b in zip(counts, counts2, strict=True):
        key = [c for c in a.table.columns if c != COUNT]
        pd.testing.assert_frame_equal(a.table.sort_values(key).reset_index(drop=True),
                                      b.table.sort_values(key).reset_index(drop=True))


def test_a_narrower_filter_takes_its_sample_from_the_wider_one(synthetic):
    """The base sample's patients that a filter selects are a sample of that selection drawn by
    the same keys: the same rows, in the same order, as the base rows of the selected patients."""
    _, frame = synthetic
    frame = frame.assign(patient_id=[f"{i:06d}" for i in range(len(frame))])
    reg = Registry.from_frame(frame, threads=1)
    base_flt = CohortFilter()
    base = reg.sample(base_flt, size=1000)
    flt = CohortFilter(her2_status=("positive",))
    sub = reg.subsample(flt, base, base_flt=base_flt, minimum=100, size=1000)
    selected = set(reg.sample(flt, size=10**9)["patient_id"])
    expected = base[base["patient_id"].isin(selected)].reset_index(drop=True)
    assert 100 <= len(sub) < len(base)
    pd.testing.assert_frame_equal(sub, expected)
    assert sub.attrs["sample_of"] == reg.select(flt).n == flt.apply(frame).n
    # when it would keep too few, or the filter classifies or recodes differently: a new draw
    assert reg.subsample(flt, base, base_flt=base_flt, minimum=len(base), size=1000) is None
    for other in (CohortFilter(her2_status=("positive",), pcr_itt=True),
                  CohortFilter(her2_status=("positive",), er_low=2.0)):
        assert reg.subsample(other, base, base_flt=base_flt, minimum=1, size=1000) is None
    assert reg.subsample(flt, base.iloc[:-1], base_flt=base_flt, minimum=1, size=1000) is None


def test_a_filter_keeping_every_sampled_patient_shares_the_sample_without_changing_it(synthetic):
    _, frame = synthetic
    reg = Registry.from_frame(frame, threads=1)
    base = reg.sample(CohortFilter(), size=500)
    before = dict(base.attrs)
    everyone = CohortFilter(age_range=(0.0, 200.0))  # selects all, as a filter, not the default
    sub = reg.subsample(everyone, base, base_flt=CohortFilter(), minimum=1, size=500)
    pd.testing.assert_frame_equal(sub, base.reset_index(drop=True), check_like=False)
    assert all(np.shares_memory(sub[c].to_numpy(), base[c].to_numpy())
               for c in base.select_dtypes("number").columns)
    assert sub.attrs["sample_of"] == reg.select(everyone).n
    assert base.attrs == before  # the cached sample is not touched
