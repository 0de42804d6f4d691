"""Grid carbon intensity per country (Ember, CC BY 4.0), shipped as package data.

The table is read once with :mod:`importlib.resources`, so it is found wherever the package is
installed, whatever the working directory.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from quantzero_ci.errors import UnknownKeyError

_DATA_FILE = "grid_intensity.csv"
_LATEST_YEAR = 2024

# Ember rounds emissions and generation, so these 18 systems under 0.2 TWh of demand show
# quantized intensities (data/README.md, "Caveats"): indicative only.
TINY_SYSTEMS = frozenset(
    [
        "AS",
        "CF",
        "CK",
        "DM",
        "FK",
        "GW",
        "KI",
        "KM",
        "MS",
        "NR",
        "PM",
        "SB",
        "ST",
        "TO",
        "VC",
        "VG",
        "VU",
        "WS",
    ]
)
_REL_SIGMA_BY_YEAR = {2024: 0.10, 2023: 0.15}
_REL_SIGMA_OLDER = 0.20
_REL_SIGMA_TINY = 0.50

# Common names that are not ISO 3166 codes.
_ALIASES = {"UK": "GB"}

UNCERTAINTY_NOTE = (
    "Relative uncertainty (1σ) of a country's intensity as the intensity a deployment will run "
    "on: 10% for data year 2024, 15% for 2023, 20% for 2022, 50% for the 18 tiny systems whose "
    "values Ember reports only coarsely. Basis: across Ember's national series 2022-2024 "
    "(tiny systems excluded), the 68th percentile of the absolute change is 6.6% over one year "
    "(251 country-years) and 16% over two years (89 countries); later Ember vintages differ "
    "from this copy by 1.2% RMS (OWID export) and 0.6% RMS (Green Web Foundation co2.js)."
)

ATTRIBUTION = (
    "Grid carbon intensity: Ember (2025) – Yearly Electricity Data, "
    "https://ember-energy.org/data/yearly-electricity-data/, licensed CC BY 4.0 "
    "(via github.com/ember-energy/ember-data-api, data/api_country_overview_yearly.csv @7191781, "
    "2025-06-25). Lifecycle emissions (g CO2e) per kWh of domestic generation, latest year "
    "per country (2022-2024). " + UNCERTAINTY_NOTE
)


@dataclass(frozen=True)
class GridIntensity:
    """Carbon intensity of one country's electricity, with its source and 1σ uncertainty."""

    iso2: str
    country: str
    year: int
    g_per_kwh: float
    source: str
    rel_sigma: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "iso2": self.iso2,
            "country": self.country,
            "year": self.year,
            "g_per_kwh": self.g_per_kwh,
            "source": self.source,
            "rel_sigma": self.rel_sigma,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> GridIntensity:
        return cls(
            iso2=str(d["iso2"]),
            country=str(d["country"]),
            year=int(d["year"]),
            g_per_kwh=float(d["g_per_kwh"]),
            source=str(d["source"]),
            rel_sigma=float(d["rel_sigma"]),
        )


def _rel_sigma(iso2: str, year: int) -> float:
    if iso2 in TINY_SYSTEMS:
        return _REL_SIGMA_TINY
    return _REL_SIGMA_BY_YEAR.get(year, _REL_SIGMA_OLDER)


@dataclass(frozen=True)
class _Table:
    rows: tuple[GridIntensity, ...]
    by_code: Mapping[str, GridIntensity]  # iso2 and iso3, upper case
    by_name: Mapping[str, GridIntensity]  # casefolded country name
    sha256: str


@cache
def _table() -> _Table:
    raw = (resources.files("quantzero_ci.carbon") / "data" / _DATA_FILE).read_bytes()
    rows: list[GridIntensity] = []
    by_code: dict[str, GridIntensity] = {}
    by_name: dict[str, GridIntensity] = {}
    for rec in csv.DictReader(io.StringIO(raw.decode("utf-8"))):
        iso2, year = rec["iso2"].strip(), int(rec["year"])
        rel_sigma = _rel_sigma(iso2, year)
        row = GridIntensity(
            iso2=iso2,
            country=rec["country"].strip(),
            year=year,
            g_per_kwh=float(rec["g_co2_per_kwh"]),
            source=f"{rec['source'].strip()}; 1σ {rel_sigma:.0%} (see grid.UNCERTAINTY_NOTE)",
            rel_sigma=rel_sigma,
        )
        rows.append(row)
        by_code[iso2.upper()] = row
        if rec["iso3"].strip():
            by_code[rec["iso3"].strip().upper()] = row
        by_name[row.country.casefold()] = row
    return _Table(tuple(rows), by_code, by_name, hashlib.sha256(raw).hexdigest())


def list_grid() -> list[GridIntensity]:
    """Every row of the table, in file order (World and EU-27 first)."""
    return list(_table().rows)


def table_sha256() -> str:
    """SHA-256 of the shipped CSV's bytes."""
    return _table().sha256


def _short_name(name: str) -> str:
    """A country name without its parenthesised or bracketed qualifier."""
    for mark in ("(", "["):
        name = name.split(mark, 1)[0]
    return name.strip()


def get_grid(iso2: str) -> GridIntensity:
    """Look up a country by ISO alpha-2 or alpha-3 code or by name, case-insensitively.

    A name may omit its qualifier ("Taiwan" for "Taiwan (China)") when that is unambiguous.
    """
    table = _table()
    query = " ".join(iso2.split())
    code = _ALIASES.get(query.upper(), query.upper())
    if code in table.by_code:
        return table.by_code[code]
    folded = query.casefold()
    if folded in table.by_name:
        return table.by_name[folded]
    short = [r for r in table.rows if _short_name(r.country).casefold() == folded]
    if len(short) == 1:
        return short[0]
    if short:
        choices = ", ".join(f"{r.country} ({r.iso2})" for r in short)
        raise UnknownKeyError(
            f"ambiguous country {iso2!r} (deployment.country): it could be {choices}. Use the "
            "ISO code (see `quantzero countries`)."
        )
    raise UnknownKeyError(
        f"unknown country {iso2!r} (deployment.country).{_suggest(query, table)} Use an ISO "
        "3166-1 alpha-2 or alpha-3 code or the country name; see `quantzero countries` for "
        "the list."
    )


def _suggest(query: str, table: _Table) -> str:
    folded = query.casefold()
    names = {r.country.casefold(): r for r in table.rows}
    names.update({_short_name(r.country).casefold(): r for r in table.rows})
    found = [names[m] for m in difflib.get_close_matches(folded, list(names), n=3, cutoff=0.6)]
    if len(query) <= 3:
        codes = difflib.get_close_matches(query.upper(), list(table.by_code), n=3, cutoff=0.5)
        found += [table.by_code[c] for c in codes]
    unique = list(dict.fromkeys(found))[:3]
    if not unique:
        return ""
    return " Did you mean " + ", ".join(f"{r.country} ({r.iso2})" for r in unique) + "?"
