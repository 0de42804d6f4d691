"""The grid table: package data, lookups, suggestions and uncertainty."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from importlib import resources
from pathlib import Path

import pytest

from quantzero_ci.carbon import grid
from quantzero_ci.carbon.grid import ATTRIBUTION, GridIntensity, get_grid, list_grid
from quantzero_ci.errors import UnknownKeyError


def _packaged_csv() -> bytes:
    return (resources.files("quantzero_ci.carbon") / "data" / "grid_intensity.csv").read_bytes()


def test_loads_from_package_data_whatever_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    grid._table.cache_clear()
    monkeypatch.chdir(tmp_path)
    rows = list_grid()
    assert len(rows) == 211
    assert (rows[0].iso2, rows[1].iso2) == ("WORLD", "EU")
    assert grid.table_sha256() == hashlib.sha256(_packaged_csv()).hexdigest()


def test_rows_match_the_csv() -> None:
    records = list(csv.DictReader(io.StringIO(_packaged_csv().decode("utf-8"))))
    rows = list_grid()
    assert [r.iso2 for r in rows] == [rec["iso2"] for rec in records]
    assert [r.g_per_kwh for r in rows] == [float(rec["g_co2_per_kwh"]) for rec in records]


def test_table_is_read_once() -> None:
    assert grid._table() is grid._table()


def test_attribution_data_file_ships_with_the_table() -> None:
    readme = (resources.files("quantzero_ci.carbon") / "data" / "README.md").read_text("utf-8")
    assert "Ember (2025) – Yearly Electricity Data" in readme
    assert "CC BY 4.0" in readme
    assert ATTRIBUTION.startswith("Grid carbon intensity: Ember (2025) – Yearly Electricity Data")
    assert "CC BY 4.0" in ATTRIBUTION and "1σ" in ATTRIBUTION


def test_germany() -> None:
    de = get_grid("DE")
    assert (de.country, de.year, de.g_per_kwh, de.rel_sigma) == ("Germany", 2024, 344.14, 0.10)
    assert "Ember" in de.source and "CC BY 4.0" in de.source and "1σ 10%" in de.source


@pytest.mark.parametrize(
    ("query", "iso2"),
    [
        ("de", "DE"),
        ("DEU", "DE"),
        ("deu", "DE"),
        ("germany", "DE"),
        ("  GERMANY ", "DE"),
        ("uk", "GB"),
        ("United Kingdom", "GB"),
        ("world", "WORLD"),
        ("WLD", "WORLD"),
        ("eu", "EU"),
        ("Taiwan", "TW"),  # the name without its qualifier "(China)"
        ("Congo", "CG"),  # an exact name wins over "Congo (DRC)"
        ("xk", "XK"),
    ],
)
def test_lookup_by_code_or_name_any_case(query: str, iso2: str) -> None:
    assert get_grid(query).iso2 == iso2


def test_unknown_country_suggests_close_names() -> None:
    with pytest.raises(UnknownKeyError) as info:
        get_grid("Germny")
    message = str(info.value)
    assert message.startswith("unknown country 'Germny' (deployment.country).")
    assert "Did you mean Germany (DE)?" in message
    assert "`quantzero countries`" in message


def test_unknown_code_suggests_close_codes() -> None:
    with pytest.raises(UnknownKeyError, match=r"Did you mean .*\(DE\)"):
        get_grid("DEX")


def test_unknown_without_anything_close_still_says_how_to_fix() -> None:
    with pytest.raises(UnknownKeyError) as info:
        get_grid("Atlantis-on-Sea")
    assert "Did you mean" not in str(info.value)
    assert "see `quantzero countries` for the list" in str(info.value)


def test_ambiguous_short_name_lists_the_candidates() -> None:
    with pytest.raises(UnknownKeyError) as info:
        get_grid("Virgin Islands")
    message = str(info.value)
    assert message.startswith("ambiguous country 'Virgin Islands' (deployment.country)")
    assert "Virgin Islands (British) (VG)" in message and "Virgin Islands (U.S.) (VI)" in message


def test_uncertainty_grows_with_the_age_of_the_data() -> None:
    by_iso2 = {r.iso2: r for r in list_grid()}
    assert by_iso2["FR"].year == 2024 and by_iso2["FR"].rel_sigma == 0.10
    assert by_iso2["KE"].year == 2024 and by_iso2["KE"].rel_sigma == 0.10
    assert by_iso2["GH"].year == 2023 and by_iso2["GH"].rel_sigma == 0.15
    assert by_iso2["UA"].year == 2022 and by_iso2["UA"].rel_sigma == 0.20
    assert by_iso2["CF"].g_per_kwh == 0.0 and by_iso2["CF"].rel_sigma == 0.50
    assert sum(r.rel_sigma == 0.50 for r in by_iso2.values()) == 18


def test_round_trip_through_json() -> None:
    row = get_grid("KE")
    assert GridIntensity.from_dict(json.loads(json.dumps(row.to_dict()))) == row
