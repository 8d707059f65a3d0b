"""A synthetic, offline NER corpus whose concept of interest is LOC (location names).

Sentences are drawn from typed templates ("{PER} was born in {CITY} , {REGION} , in {YEAR} .")
and tagged in IOB2 over CoNLL-2003's nine tags. Everything comes from the small files in
``lens_relearn/data/resources`` (see its ``ATTRIBUTION.md``):

- real location names: GeoNames cities, countries, US states and continents, plus hand-written
  regions, rivers, seas, mountains and lakes (``the`` before "the Danube" is tagged O);
- fillers for the contrast classes: person names from many cultures (PER); companies, agencies,
  universities and clubs (ORG); nationalities, languages, events and products (MISC).

The splits test generalisation rather than memory. The location names are partitioned, per seed,
into train, validation and test pools; a name and every name inside it ("York" in "New York")
land in the same pool, so no split mentions another split's names at all. Test sentences come
from templates that train never uses; validation shares train's templates. ``novel_test`` uses
the test templates with invented place names ("Kairkhaven", "North Legrairkia", "the Nend
Mountains") that are no real name and share no word with the resources.

Distractors keep LOC from being "any capitalised word after *in*": place names inside ORG names
("University of Lima", "Bank of Ghana" are all ORG), place names that are also person names
("Paris Hilton"-like "Sydney Okafor" is PER), and nationality adjectives next to locations
("the French capital Paris": French is MISC, Paris is LOC). Each split draws from its own
random stream, so the test split depends on the seed only, never on the other sizes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

from lens_relearn.data.sentences import NerData, Sentence
from lens_relearn.errors import LensRelearnError

_RESOURCES = files("lens_relearn.data") / "resources"
_SPLITS = ("train", "validation", "test", "novel_test")
_POOL_SHARE = 0.15  # of each kind of place, for validation and for test alike; train has the rest
_KIND_OF = {  # kinds of place in the resource files -> the kind a template slot asks for
    "city": "city",
    "country": "region",
    "us_state": "region",
    "continent": "region",
    "region": "region",
    "feature": "feature",
}
_PLACE_SLOTS = {"LOC": None, "CITY": "city", "REGION": "region", "FEATURE": "feature"}  # None: any
_LOC_KINDS, _LOC_WEIGHTS = ("city", "region"), (3, 2)  # what a bare {LOC} slot draws
_MISC_SLOTS = {"NAT": "nationality", "LANG": "language", "EVENT": "event", "PRODUCT": "product"}
_P_PLACE_PERSON = 0.15  # share of PER fillers that carry a place name ("Jack London")
_P_PLACE_ORG = 0.25  # share of ORG fillers that carry a place name ("Bank of England")
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_ONSETS = (
    "b",
    "br",
    "c",
    "d",
    "dr",
    "f",
    "g",
    "gr",
    "h",
    "k",
    "l",
    "m",
    "n",
    "p",
    "r",
    "s",
    "st",
    "t",
    "tr",
    "v",
    "w",
    "z",
)
_VOWELS = ("a", "e", "i", "o", "u", "ai", "ea", "ou")
_CODAS = ("", "", "n", "r", "l", "s", "m", "nd", "rk")
_INVENTED_FORMS = {  # {S} is an invented stem; "the " in front is an article, tagged O
    "city": (
        "{S}ville",
        "{S}burg",
        "{S}ton",
        "{S}ford",
        "{S}field",
        "{S}haven",
        "{S}mouth",
        "{S}stad",
        "{S}dorf",
        "{S}polis",
        "{S}abad",
        "Port {S}",
        "{S} Falls",
        "New {S}ton",
        "San {S}o",
        "{S} Springs",
    ),
    "region": ("{S}ia", "{S}land", "{S}stan", "{S}onia", "North {S}ia", "East {S}land", "Upper {S}a"),
    "feature": ("Lake {S}", "Mount {S}", "the {S} River", "the {S} Mountains", "the {S} Sea", "the {S} Desert"),
}
_AFFIX_WORDS = frozenset(
    word for forms in _INVENTED_FORMS.values() for form in forms for word in form.split() if "{" not in word
)


@dataclass(frozen=True)
class _Place:
    """A location name, the kind of slot it fills, and its article ("the Danube")."""

    name: str
    kind: str
    article: str = ""


@dataclass(frozen=True)
class _Lexicon:
    """Everything read from the resource files."""

    places: tuple[_Place, ...]
    first_names: tuple[str, ...]
    surnames: tuple[str, ...]
    place_person_names: tuple[tuple[str, str], ...]  # (place name, "first" or "last")
    organisations: dict[str, tuple[str, ...]]  # "name", "stem", "suffix", "place_pattern"
    misc: dict[str, tuple[str, ...]]  # "nationality", "language", "event", "product"
    templates: dict[str, tuple[str, ...]]  # "train", "test"


def _rows(file_name: str) -> list[list[str]]:
    """The non-empty lines of a resource file, split at tabs."""
    text = (_RESOURCES / file_name).read_text(encoding="utf-8")
    return [line.split("\t") for line in text.splitlines() if line.strip()]


def _grouped(rows: list[list[str]]) -> dict[str, tuple[str, ...]]:
    """``key<TAB>value`` rows as a tuple of values by key, in file order."""
    groups: dict[str, list[str]] = {}
    for key, value in rows:
        groups.setdefault(key, []).append(value)
    return {key: tuple(values) for key, values in groups.items()}


@cache
def _lexicon() -> _Lexicon:
    """The resource files, read once."""
    places: dict[str, _Place] = {}
    for name, kind in _rows("locations_geonames.tsv"):
        places.setdefault(name, _Place(name, _KIND_OF[kind]))
    for name, kind, article in _rows("places_handwritten.tsv"):
        places.setdefault(name, _Place(name, _KIND_OF[kind], article))
    return _Lexicon(
        places=tuple(places.values()),
        first_names=tuple(row[0] for row in _rows("first_names.txt")),
        surnames=tuple(row[0] for row in _rows("surnames.txt")),
        place_person_names=tuple((name, position) for name, position in _rows("place_person_names.tsv")),
        organisations=_grouped(_rows("organisations.tsv")),
        misc=_grouped(_rows("misc.tsv")),
        templates=_grouped(_rows("templates.tsv")),
    )


@cache
def _known_words() -> frozenset[str]:
    """Every word, lowercased, that a real-name sentence can contain, bar numbers."""
    lexicon = _lexicon()
    texts = [place.name for place in lexicon.places]
    texts += [*lexicon.first_names, *lexicon.surnames, *_MONTHS, *_WEEKDAYS]
    for entries in (*lexicon.organisations.values(), *lexicon.misc.values(), *lexicon.templates.values()):
        texts += entries
    return frozenset(word.lower() for text in texts for word in text.split())


def _name_groups(places: tuple[_Place, ...]) -> list[list[_Place]]:
    """The places grouped so that a name and every name inside it share a group.

    "York", "New York" and "New York City" form one group, as do "Mexico", "New Mexico",
    "Mexico City" and "Gulf of Mexico". Groups come sorted by their first name.
    """
    by_name = {place.name: place for place in places}
    parent = {name: name for name in by_name}

    def root(name: str) -> str:
        while parent[name] != name:
            name = parent[name]
        return name

    for name in by_name:
        words = name.split()
        for start in range(len(words)):
            for end in range(start + 1, len(words) + 1):
                part = " ".join(words[start:end])
                if part != name and part in by_name and root(part) != root(name):
                    parent[root(part)] = root(name)
    groups: dict[str, list[_Place]] = {}
    for name, place in by_name.items():
        groups.setdefault(root(name), []).append(place)
    return sorted(groups.values(), key=lambda group: group[0].name)


def _location_pools(seed: int) -> dict[str, dict[str, tuple[_Place, ...]]]:
    """The real places partitioned, per seed, into train, validation and test pools.

    Each kind of place (city, region, feature) is split on its own, so each pool holds some of
    every kind; a group of nested names (see ``_name_groups``) goes to one pool whole.

    Args:
        seed: Seeds the partition.

    Returns:
        ``{split: {kind: places}}`` for the splits train, validation and test.
    """
    rng = random.Random(seed)
    pools: dict[str, dict[str, list[_Place]]] = {
        split: {kind: [] for kind in ("city", "region", "feature")} for split in ("train", "validation", "test")
    }
    groups = _name_groups(_lexicon().places)
    for kind in ("city", "region", "feature"):
        kind_groups = [group for group in groups if group[0].kind == kind]
        rng.shuffle(kind_groups)
        n_held_out = max(1, round(_POOL_SHARE * len(kind_groups)))
        for index, group in enumerate(kind_groups):
            split = "test" if index < n_held_out else "validation" if index < 2 * n_held_out else "train"
            for place in group:
                pools[split][place.kind].append(place)
    return {split: {kind: tuple(places) for kind, places in by_kind.items()} for split, by_kind in pools.items()}


def _invent_place(rng: random.Random, kind: str) -> _Place:
    """A plausible place name that is no real name and holds no word of the resources.

    Args:
        rng: The random stream to draw from.
        kind: ``"city"``, ``"region"`` or ``"feature"``.

    Returns:
        The invented place, e.g. ``_Place("Drouton", "city")`` or ``_Place("Kai River", "feature", "the")``.
    """
    known = _known_words()
    while True:
        syllables = [rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(rng.randint(1, 2))]
        stem = ("".join(syllables) + rng.choice(_CODAS)).capitalize()
        form = rng.choice(_INVENTED_FORMS[kind]).format(S=stem)
        article, name = ("the", form.removeprefix("the ")) if form.startswith("the ") else ("", form)
        if all(word in _AFFIX_WORDS or word.lower() not in known for word in name.split()):
            return _Place(name, kind, article)


def _entity(words: list[str], kind: str) -> tuple[list[str], list[str]]:
    """Words tagged as one IOB2 entity of a kind."""
    return words, [f"B-{kind}"] + [f"I-{kind}"] * (len(words) - 1)


class _Filler:
    """Fills template slots with words and their tags for one split.

    Args:
        rng: The split's random stream.
        lexicon: The resource lists.
        pool: The split's real places by kind, or None to invent every place name.
    """

    def __init__(self, rng: random.Random, lexicon: _Lexicon, pool: dict[str, tuple[_Place, ...]] | None) -> None:
        self.rng = rng
        self.lexicon = lexicon
        self.pool = pool
        names = {place.name for places in pool.values() for place in places} if pool is not None else set()
        self.place_person_names = tuple(entry for entry in lexicon.place_person_names if entry[0] in names)

    def fill(self, slot: str) -> tuple[list[str], list[str]]:
        """The words and tags for one slot, e.g. ``"CITY"`` -> ``(["Buenos", "Aires"], ["B-LOC", "I-LOC"])``."""
        if slot in _PLACE_SLOTS:
            place = self.place(_PLACE_SLOTS[slot] or self.rng.choices(_LOC_KINDS, _LOC_WEIGHTS)[0])
            words, tags = _entity(place.name.split(), "LOC")
            return ([place.article, *words], ["O", *tags]) if place.article else (words, tags)
        if slot == "PER":
            return _entity(self.person(), "PER")
        if slot == "ORG":
            return _entity(self.organisation(), "ORG")
        if slot in _MISC_SLOTS:
            return _entity(self.rng.choice(self.lexicon.misc[_MISC_SLOTS[slot]]).split(), "MISC")
        words = self.number_words(slot)
        return words, ["O"] * len(words)

    def place(self, kind: str) -> _Place:
        """A place of a kind from the split's pool, or an invented one."""
        if self.pool is None:
            return _invent_place(self.rng, kind)
        return self.rng.choice(self.pool[kind])

    def person(self) -> list[str]:
        """A person's name, 1 to 3 words, sometimes with a place name in it ("Sydney Okafor")."""
        rng = self.rng
        first, last = rng.choice(self.lexicon.first_names), rng.choice(self.lexicon.surnames)
        if self.place_person_names and rng.random() < _P_PLACE_PERSON:
            place, position = rng.choice(self.place_person_names)
            return [place, *last.split()] if position == "first" else [first, place]
        form = rng.random()
        if form < 0.15:
            return last.split()
        if form < 0.25 and " " not in last:
            return [first, f"{rng.choice(self.lexicon.first_names)[0]}.", last]
        return [first, *last.split()]

    def organisation(self) -> list[str]:
        """An organisation's name, sometimes with a place name in it ("University of Lima")."""
        rng, organisations = self.rng, self.lexicon.organisations
        if rng.random() < _P_PLACE_ORG:
            words: list[str] = []
            for token in rng.choice(organisations["place_pattern"]).split():
                is_slot = token in ("{CITY}", "{REGION}")
                words += self.place(token[1:-1].lower()).name.split() if is_slot else [token]
            return words
        if rng.random() < 0.5:
            return rng.choice(organisations["name"]).split()
        stem = rng.choice(rng.choice((organisations["stem"], self.lexicon.surnames)))
        return [*stem.split(), rng.choice(organisations["suffix"])]

    def number_words(self, slot: str) -> list[str]:
        """The words of a number or date slot: NUM, DEC, INT, YEAR or DATE."""
        rng = self.rng
        if slot == "NUM":
            return rng.choice(
                (
                    [str(rng.randint(2, 999))],
                    [f"{rng.randint(1_000, 999_999):,}"],
                    [f"{rng.randint(1, 99)}.{rng.randint(1, 9)}", rng.choice(("million", "billion"))],
                )
            )
        if slot == "DEC":
            return [f"{rng.randint(0, 19)}.{rng.randint(1, 9)}"]
        if slot == "INT":
            return [str(rng.randint(2, 12))]
        if slot == "YEAR":
            return [str(rng.randint(1950, 2024))]
        if slot == "DATE":
            day, month, year = str(rng.randint(1, 28)), rng.choice(_MONTHS), str(rng.randint(1990, 2024))
            return rng.choice(([day, month, year], [month, day], [rng.choice(_WEEKDAYS)], [month, year]))
        raise ValueError(f"Unknown template slot {{{slot}}}")


def _render(template: str, filler: _Filler) -> Sentence:
    """A template with its slots filled, e.g. ``"Rain in {CITY} ."`` -> Rain/O in/O Oslo/B-LOC ./O."""
    words: list[str] = []
    tags: list[str] = []
    for token in template.split():
        if token.startswith("{") and token.endswith("}"):
            slot_words, slot_tags = filler.fill(token[1:-1])
        else:
            slot_words, slot_tags = [token], ["O"]
        words += slot_words
        tags += slot_tags
    return Sentence(words, tags)


def _split_templates() -> dict[str, tuple[str, ...]]:
    """The templates each split draws from.

    Validation shares train's templates; test's never occur in train; novel_test uses the test
    templates that name at least one place.

    Returns:
        ``{split: templates}`` for train, validation, test and novel_test.
    """
    templates = _lexicon().templates
    with_place = tuple(
        template for template in templates["test"] if any(f"{{{slot}}}" in template for slot in _PLACE_SLOTS)
    )
    return {
        "train": templates["train"],
        "validation": templates["train"],
        "test": templates["test"],
        "novel_test": with_place,
    }


def _corpus(seed: int, sizes: dict[str, int]) -> dict[str, list[tuple[str, Sentence]]]:
    """Each split's sentences with the template each came from.

    Args:
        seed: Seeds the location pools and each split's own random stream.
        sizes: Sentences per split, keyed by split name (train, validation, test, novel_test).

    Returns:
        ``{split: [(template, sentence), ...]}``.
    """
    lexicon = _lexicon()
    pools = _location_pools(seed)
    templates = _split_templates()
    corpus: dict[str, list[tuple[str, Sentence]]] = {}
    for split, size in sizes.items():
        rng = random.Random(f"{seed}:{split}")
        filler = _Filler(rng, lexicon, pools.get(split))
        drawn = [rng.choice(templates[split]) for _ in range(size)]
        corpus[split] = [(template, _render(template, filler)) for template in drawn]
    return corpus


def generate_synthetic(
    *,
    seed: int = 0,
    # The sizes are objects, not ints: they are checked below, with advice.
    n_train: object = 6000,
    n_validation: object = 1000,
    n_test: object = 1000,
    n_novel: object = 300,
) -> NerData:
    """A synthetic NER corpus for the concept LOC, offline and deterministic.

    The same seed gives the same corpus. Test and validation name only places that train never
    mentions, test uses templates that train never uses, and ``novel_test`` names only invented
    places (see the module docstring).

    Args:
        seed: Seeds the partition of place names and every draw.
        n_train: Training sentences.
        n_validation: Validation sentences.
        n_test: Test sentences (real places held out of train, unseen templates).
        n_novel: ``novel_test`` sentences (invented places, the test templates).

    Returns:
        The corpus, tagged in IOB2 over ``CONLL_TAGS``, with source ``"synthetic"``.

    Raises:
        LensRelearnError: A size is not a whole number >= 0.

    Example:
        >>> data = generate_synthetic(seed=1, n_train=20, n_validation=5, n_test=5, n_novel=5)
        >>> {split: len(sentences) for split, sentences in data.splits().items()}
        {'train': 20, 'validation': 5, 'test': 5, 'novel_test': 5}
        >>> data.source
        'synthetic'
    """
    arguments = {"n_train": n_train, "n_validation": n_validation, "n_test": n_test, "n_novel": n_novel}
    sizes: list[int] = []
    for argument, size in arguments.items():
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise LensRelearnError(f"{argument}={size!r} is not a size: give a whole number >= 0")
        sizes.append(size)
    corpus = _corpus(seed, dict(zip(_SPLITS, sizes, strict=True)))
    train, validation, test, novel_test = ([sentence for _, sentence in corpus[split]] for split in _SPLITS)
    return NerData(train, validation, test, source="synthetic", novel_test=novel_test)
