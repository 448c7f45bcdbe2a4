"""Controlled vocabularies shared by catalog ingestion and health profiles: allergens and diet tags.

Token normalisation — the one rule, mirrored exactly in SQL:

    Python:  re.sub(r"[^a-zA-Z0-9]+", " ", raw).lower().strip()
    SQL:     btrim(lower(regexp_replace(raw, '[^a-zA-Z0-9]+', ' ', 'g')))

Every run of characters other than ASCII letters and digits (spaces, punctuation, underscores, accented
letters) becomes a single space; then ASCII lower-casing; then trimming. Replacing before lower-casing leaves
only ASCII for `lower`, so Python and PostgreSQL agree whatever the locale. There is no stemming: plurals,
spelling variants (sulfite/sulphite) and abbreviations ("GF") are recognised only because they are listed
as synonyms. Allergen synonyms also get their regular English plural generated into the table ("almond" →
"almonds"; words already ending in "s" or a digit get none). `synonym_rows()` yields every accepted spelling
already normalised, so a SQL join against that table decides exactly what Python decides.

A raw cell is split into tokens on `,` `;` `|` and line breaks
(SQL: `regexp_split_to_table(raw, '[,;|\\r\\n]+')`). A blank token is skipped, and one of the vocabulary's
empty markers means "nothing declared": for diet tags EMPTY_MARKERS ("none", "n/a", ...), for allergens only
"none" (UNAMBIGUOUS_EMPTY_MARKERS). Any other token with no synonym is returned as unknown, never
dropped — "?", "-" and words in other scripts ("花生", which normalises to "") included, and a cell made only
of separators: ingestion turns them into a row error, a health profile into a validation error, so an
allergen no one could read is never stored as "contains none".

Bit indexes feed the matching engine's bitmask features (allergens contained, diet tags carried) and are
persisted in feature snapshots: they are stable forever. Never renumber or reuse one; add new terms with
fresh indexes. Indexes stay below 63 so a mask fits a signed 64-bit integer (PostgreSQL bigint).

Implications (`Term.implies`) are product-side facts: a product containing wheat contains gluten; a vegan
product is also vegetarian, dairy-free, lactose-free and plant-based. Compute product bitmasks from
`implied_closure` so such products meet those requirements; `codes_implying` gives the allergens a person
must avoid given the ones they named (avoiding gluten means avoiding wheat).

"Plant-based" is its own diet tag, not a synonym of vegan: it is an unregulated marketing claim that some
products make while containing egg, dairy or honey, so it must never satisfy a vegan's hard requirement.
Likewise "lactose-free" is not dairy-free (lactose-free milk is dairy), and "shellfish" means crustaceans,
as in the US FALCPA; molluscs are their own EU allergen.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

MAX_BIT_INDEX = 62
TOKEN_SEPARATORS = re.compile(r"[,;|\r\n]+")
_NOT_ALPHANUMERIC = re.compile(r"[^a-zA-Z0-9]+")

EMPTY_MARKERS = frozenset({"none", "n a", "na", "nil", "null", "not applicable", "none declared"})
"""Normalised tokens that declare "nothing" rather than name a term."""
UNAMBIGUOUS_EMPTY_MARKERS = frozenset({"none", "none declared"})
"""The markers that can only mean "nothing": "n/a", "null" and "nil" also stand for "not available" in data
exports, and of allergens, "unknown" read as "none" is the dangerous mistake."""


def normalize_token(raw: str) -> str:
    """Normalise one token; see the module docstring for the exact rule and its SQL twin."""
    return _NOT_ALPHANUMERIC.sub(" ", raw).lower().strip()


def _plural(phrase: str) -> str | None:
    """Regular English plural of the last word, or None where guessing would be wrong or pointless."""
    if phrase[-1].isdigit() or phrase.endswith("s"):
        return None
    if phrase.endswith(("x", "z", "ch", "sh")):
        return phrase + "es"
    if phrase.endswith("y") and phrase[-2:-1] not in ("a", "e", "i", "o", "u"):
        return phrase[:-1] + "ies"
    return phrase + "s"


@dataclass(frozen=True, slots=True)
class Term:
    code: str
    bit: int
    synonyms: tuple[str, ...] = ()
    implies: tuple[str, ...] = ()


class Vocabulary(Mapping[str, Term]):
    """A read-only mapping code → Term, plus the synonym lookup built from it."""

    def __init__(self, kind: str, terms: Iterable[Term], *, generate_plurals: bool,
                 empty_markers: frozenset[str] = EMPTY_MARKERS) -> None:
        self.kind = kind
        self.empty_markers = empty_markers
        self._terms: dict[str, Term] = {}
        for term in terms:
            if term.code in self._terms:
                raise ValueError(f"{kind}: duplicate code {term.code!r}")
            self._terms[term.code] = term
        self._check_bits_and_implications()
        self._lookup = self._build_lookup(generate_plurals)

    def _check_bits_and_implications(self) -> None:
        bits = [term.bit for term in self._terms.values()]
        if len(set(bits)) != len(bits) or not all(0 <= bit <= MAX_BIT_INDEX for bit in bits):
            raise ValueError(f"{self.kind}: bit indexes must be unique and within 0..{MAX_BIT_INDEX}")
        for term in self._terms.values():
            unknown = set(term.implies) - self._terms.keys()
            if unknown:
                raise ValueError(f"{self.kind}: {term.code} implies unknown codes {sorted(unknown)}")

    def _build_lookup(self, generate_plurals: bool) -> dict[str, str]:
        lookup: dict[str, str] = {}
        for term in self._terms.values():
            for spelling in (term.code, *term.synonyms):
                normalized = normalize_token(spelling)
                if not normalized:
                    raise ValueError(f"{self.kind}: {term.code} has a spelling with no letters or digits")
                plural = _plural(normalized) if generate_plurals else None
                for variant in (normalized, plural):
                    if variant is None:
                        continue
                    if lookup.setdefault(variant, term.code) != term.code:
                        raise ValueError(
                            f"{self.kind}: {variant!r} would mean both {lookup[variant]} and {term.code}"
                        )
        return lookup

    def __getitem__(self, code: str) -> Term:
        return self._terms[code]

    def __iter__(self) -> Iterator[str]:
        return iter(self._terms)

    def __len__(self) -> int:
        return len(self._terms)

    def normalize(self, raw: str | Iterable[str]) -> tuple[frozenset[str], list[str]]:
        """Canonical codes named in `raw`, and the raw tokens that named nothing (first-seen order)."""
        cells = [raw] if isinstance(raw, str) else raw
        codes: set[str] = set()
        unknown: dict[str, str] = {}  # normalised → first raw spelling, so each unknown is reported once
        for cell in cells:
            tokens = [token.strip() for token in TOKEN_SEPARATORS.split(cell) if token.strip()]
            if not tokens and cell.strip():  # only separators: it names nothing, not even "none"
                unknown.setdefault(cell.strip(), cell.strip())
            for token in tokens:
                normalized = normalize_token(token)
                if normalized in self.empty_markers:
                    continue
                code = self._lookup.get(normalized) if normalized else None
                if code is not None:
                    codes.add(code)
                else:  # "?", "-" or "花生" (no ASCII letters) is as unknown as a misspelling, never "none"
                    unknown.setdefault(normalized or token, token)
        return frozenset(codes), list(unknown.values())

    def synonym_items(self) -> list[tuple[str, str]]:
        """Every accepted normalised spelling with its code, sorted."""
        return sorted(self._lookup.items())

    def bitmask(self, codes: Iterable[str]) -> int:
        mask = 0
        for code in codes:
            mask |= 1 << self._terms[code].bit
        return mask

    def codes_in(self, mask: int) -> frozenset[str]:
        return frozenset(term.code for term in self._terms.values() if mask >> term.bit & 1)

    def implied_closure(self, codes: Iterable[str]) -> frozenset[str]:
        """`codes` plus everything they imply, transitively (product side: what the product also is/has)."""
        closure: set[str] = set()
        pending = list(codes)
        while pending:
            code = pending.pop()
            if code not in closure:
                closure.add(code)
                pending.extend(self._terms[code].implies)
        return frozenset(closure)

    def codes_implying(self, codes: Iterable[str]) -> frozenset[str]:
        """`codes` plus every code whose closure reaches one of them: avoiding gluten means avoiding wheat."""
        wanted = frozenset(codes)
        return wanted | {code for code in self._terms if self.implied_closure([code]) & wanted}


def _term(code: str, bit: int, synonyms: str = "", implies: tuple[str, ...] = ()) -> Term:
    """A Term whose synonyms are written as one comma-separated string, to keep the tables compact."""
    return Term(code, bit, tuple(s.strip() for s in synonyms.split(",") if s.strip()), implies)


ALLERGENS = Vocabulary(
    "allergen",
    [
        # The 9 major US allergens (FALCPA + FASTER Act) ...
        _term(
            "milk",
            0,
            "dairy, milk protein, milk solids, milk powder, skim milk, lactose, whey, whey protein,"
            " casein, caseinate, sodium caseinate, lactalbumin, butter, buttermilk, cream, cheese, yogurt,"
            " yoghurt, ghee",
        ),
        _term("eggs", 1, "egg, egg white, egg yolk, whole egg, egg powder, albumen, ovalbumin"),
        _term("fish", 2, "anchovy, cod, haddock, pollock, salmon, sardine, tilapia, trout, tuna, fish sauce"),
        _term(
            "crustacean_shellfish",
            3,
            "crustacean, shellfish, shrimp, prawn, crab, lobster, crayfish, crawfish, langoustine, krill",
        ),
        _term(
            "tree_nuts",
            4,
            "tree nut, nut, almond, brazil nut, cashew, filbert, hazelnut, macadamia, macadamia nut, pecan,"
            " pine nut, pistachio, walnut",
        ),
        _term("peanuts", 5, "peanut, groundnut, ground nut, arachis, peanut butter, peanut oil, monkey nut"),
        _term(
            "wheat",
            6,
            "wheat flour, whole wheat, wheat starch, wheat gluten, durum, durum wheat, semolina, spelt,"
            " kamut, khorasan, einkorn, emmer, farro, bulgur, couscous, seitan, triticale",
            implies=("gluten",),
        ),
        _term(
            "soybeans",
            7,
            "soy, soya, soybean, soy bean, soy protein, soy lecithin, soya lecithin, edamame, tofu, tempeh,"
            " miso",
        ),
        _term("sesame", 8, "sesame seed, sesame oil, tahini, benne, gingelly"),
        # ... and the rest of the EU 14 (Regulation 1169/2011, Annex II).
        _term("gluten", 9, "cereals containing gluten, barley, rye, oat, malt"),
        _term("mustard", 10, "mustard seed, mustard flour, mustard oil"),
        _term("celery", 11, "celeriac, celery seed, celery salt"),
        _term("lupin", 12, "lupine, lupin flour, lupini"),
        _term(
            "molluscs",
            13,
            "mollusc, mollusk, clam, mussel, oyster, scallop, squid, calamari, octopus, cuttlefish, snail,"
            " escargot, abalone, whelk, cockle",
        ),
        _term(
            "sulphites",
            14,
            "sulphite, sulfite, sulphur dioxide, sulfur dioxide, so2, metabisulfite, metabisulphite,"
            " sodium metabisulfite, sodium metabisulphite, "
            # E220-E228, written both "E220" and "E 220" (which normalises to two words)
            + ", ".join(f"e{number}, e {number}" for number in range(220, 229)),
        ),
    ],
    generate_plurals=True,
    empty_markers=UNAMBIGUOUS_EMPTY_MARKERS,
)

DIET_TAGS = Vocabulary(
    "diet_tag",
    [
        _term(
            "vegan",
            0,
            "vg, certified vegan, vegan friendly, suitable for vegans",
            implies=("vegetarian", "dairy_free", "plant_based"),
        ),
        _term(
            "vegetarian",
            1,
            "veggie, lacto ovo vegetarian, ovo lacto vegetarian, lacto vegetarian, ovo vegetarian,"
            " suitable for vegetarians",
        ),
        _term("gluten_free", 2, "gf, glutenfree, no gluten, without gluten, certified gluten free"),
        _term("dairy_free", 3, "df, non dairy, no dairy, milk free", implies=("lactose_free",)),
        _term("keto", 4, "ketogenic, keto friendly"),
        _term("paleo", 5, "paleolithic, paleo friendly"),
        _term("halal", 6, "halal certified"),
        _term("kosher", 7, "kosher certified, pareve, parve"),
        _term("low_sodium", 8, "low salt, very low sodium, sodium free, salt free"),
        _term("low_sugar", 9, "sugar free, zero sugar, no sugar"),
        _term("high_protein", 10, "high in protein, protein rich, rich in protein"),
        _term(
            "high_fiber",
            11,
            "high fibre, high in fiber, high in fibre, fiber rich, fibre rich, rich in fiber, rich in fibre",
        ),
        _term("organic", 12, "certified organic, usda organic, eu organic, bio"),
        _term("nut_free", 13, "nuts free, free from nuts, no nuts"),
        _term("plant_based", 14, "plantbased"),
        _term("lactose_free", 15, "no lactose"),
    ],
    generate_plurals=False,
)


# A product carrying one of these diet tags cannot also contain these allergens: a "vegan" product that declares
# milk says two contradictory things, and a person who needs the tag must be spared the product (its allergen
# declaration is the regulated one). Tags without an allergen counterpart (keto, halal, low_sodium…) have none.
DIET_TAG_CONTRADICTIONS: Mapping[str, frozenset[str]] = {
    "vegan": frozenset({"milk", "eggs", "fish", "crustacean_shellfish", "molluscs"}),
    "vegetarian": frozenset({"fish", "crustacean_shellfish", "molluscs"}),
    "dairy_free": frozenset({"milk"}),
    "gluten_free": frozenset({"gluten"}),
    "nut_free": frozenset({"tree_nuts", "peanuts"}),
    "kosher": frozenset({"crustacean_shellfish", "molluscs"}),
}


def allergens_contradicting(diet_tags: Iterable[str]) -> frozenset[str]:
    """The allergens a product may not declare to meet every one of `diet_tags` (wheat too for gluten-free)."""
    return ALLERGENS.codes_implying(
        allergen for tag in diet_tags for allergen in DIET_TAG_CONTRADICTIONS.get(tag, frozenset()))


def normalize_allergens(raw: str | Iterable[str]) -> tuple[frozenset[str], list[str]]:
    """(allergen codes, unknown raw tokens) of a delimited string ("Milk; Soy, tree nuts|eggs") or a list."""
    return ALLERGENS.normalize(raw)


def normalize_diet_tags(raw: str | Iterable[str]) -> tuple[frozenset[str], list[str]]:
    """(diet tag codes, unknown raw tokens); same splitting and normalisation as allergens."""
    return DIET_TAGS.normalize(raw)


def synonym_rows() -> Iterator[tuple[str, str, str]]:
    """(kind, normalised synonym, code) for a SQL lookup table; kind is "allergen" or "diet_tag".

    Codes themselves are included as synonyms, so one join normalises every accepted spelling.
    """
    for vocabulary in (ALLERGENS, DIET_TAGS):
        for synonym, code in vocabulary.synonym_items():
            yield vocabulary.kind, synonym, code


def implication_rows() -> Iterator[tuple[str, str, str]]:
    """(kind, code, implied code) of every direct implication, for computing product bitmasks in SQL."""
    for vocabulary in (ALLERGENS, DIET_TAGS):
        for term in vocabulary.values():
            for implied in term.implies:
                yield vocabulary.kind, term.code, implied
