"""Entity finding (spaCy NER plus proper-noun and compound-noun runs), normalisation and aliases."""
from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from ..inference import nlp
from ..extraction.small_talk import SMALL_TALK_WORDS

MAX_MENTIONS = 24  # entity links kept per memory; a long note links its first, most named ones
MAX_CHARS = 5000  # text looked at per memory
_KEEP_LABELS = {"PERSON", "ORG", "GPE", "LOC", "NORP", "FAC", "EVENT", "WORK_OF_ART", "PRODUCT",
                "LANGUAGE"}
_RANK = {"ent": 0, "PROPN": 1, "THING": 2}  # named entities first, then proper nouns, then things
KINDS = {"PERSON": "Person", "GPE": "Place", "LOC": "Place", "FAC": "Place", "ORG": "Organisation",
         "NORP": "Group", "EVENT": "Event", "WORK_OF_ART": "Title", "PRODUCT": "Product",
         "LANGUAGE": "Language", "PROPN": "Name", "THING": "Thing", "EXTRACTED": "Named by the model"}
_PERSONISH = {"PERSON", "PROPN", "EXTRACTED"}
# Words that never name an entity on their own: pronouns, titles, interjections and reactions
# (spaCy often tags a capitalised "Glad" or "Congrats" at the start of a message as a name),
# calendar words and their short forms (dates are the temporal module's business, not
# entities), spoken fillers ("Wanna", "Gonna") and chat shorthand ("FYI").
_CALENDAR = frozenset("""
january february march april may june july august september october november december jan feb mar
apr jun jul aug sep sept oct nov dec monday tuesday wednesday thursday friday saturday sunday
mon tue tues wed weds thu thur thurs fri sat sun
today yesterday tomorrow tonight weekend week weeks month months year years day days morning
evening afternoon night noon midnight spring summer autumn fall winter christmas easter
""".split())
_NOT_NAMES = SMALL_TALK_WORDS | _CALENDAR | frozenset("""
i me my you your we our they them he she him her it its his mr mrs ms dr sir madam
yep yup nope nah ugh aw aww ooh oops hmm huh whoa wow yay yikes omg lol haha congrats
congratulations glad understood indeed anyway btw ok okay sure thanks cheers welcome sorry please
exactly definitely absolutely totally really honestly seriously hopefully luckily anyway
woohoo woo hooray yippee whoa wahoo phew
wanna gonna gotta kinda sorta lemme gimme dunno ya yeah yea
fyi tbh tbf imo imho idk irl smh afaik brb ttyl jk
""".split())
_PROPER_TAGS = {"NNP", "NNPS"}
_NAMING = {"PERSON", "ORG", "GPE", "LOC", "FAC", "NORP", "PROPN"}  # kinds that name someone or somewhere
_TITLES = {"WORK_OF_ART", "EVENT", "PRODUCT"}  # titles are often common words ("Summer Sounds", "Brave")
# Penn tags no one-word name carries: verbs, adverbs, modals, interjections, pronouns, function words
# (NER reads a capitalised "Cherish the moments" as a group of people)
_NOT_NAME_TAGS = {"VB", "VBD", "VBG", "VBN", "VBP", "VBZ", "MD", "RB", "RBR", "RBS", "UH", "PRP", "PRP$",
                  "DT", "PDT", "WDT", "WP", "WP$", "WRB", "IN", "CC", "TO", "EX"}
_SENTENCE_END = ".!?…"
# English plurals that do modify a noun ("clothes store", "sports car", "media presence"); any
# other plural before a singular noun ends a compound (and so do "-ics" words: "electronics")
_PLURAL_MODIFIERS = frozenset("""
clothes media sports arts savings sales goods arms news jeans pants glasses data customs systems
services operations communications resources admissions humanities
""".split())
_SPACE = re.compile(r"\s+")
_EDGE = re.compile(r"^[^\w]+|[^\w]+$")
_QUOTES = re.compile(r"^[\"'\u201c\u201d\u2018\u2019\-\u2013\u2014]+|[\"'\u201c\u201d\u2018\u2019\-\u2013\u2014]+$")


def normalise(name: str) -> str:
    """Canonical key of an entity: case-folded, no 'the', no possessive, last word singular."""
    text = _SPACE.sub(" ", _EDGE.sub("", name.replace("\u2019", "'"))).strip().casefold()
    if text.startswith("the "):
        text = text[4:]
    if text.endswith("'s") or text.endswith("s'"):
        text = text[:-2] if text.endswith("'s") else text[:-1]
    words = text.split(" ")
    last = words[-1] if words else ""
    if len(last) > 3 and not last.endswith(("ss", "us", "is")):
        if last.endswith("ies") and len(last) > 4:
            last = last[:-3] + "y"
        elif last.endswith("s"):
            last = last[:-1]
    words[-1] = last
    return " ".join(w for w in words if w)


def kind_name(label: str) -> str:
    """A word a person understands for a spaCy label ("ORG" -> "Organisation")."""
    return KINDS.get(label, label.replace("_", " ").capitalize() if label else "")


def is_plausible(name: str) -> bool:
    """False for names that are really interjections, pronouns, dates or numbers."""
    key = normalise(name)
    if len(key) < 2 or key.replace(" ", "").isdigit():
        return False
    words = key.split(" ")
    return not all(w.strip("'") in _NOT_NAMES or w.isdigit() for w in words)


@dataclass(frozen=True, slots=True)
class Mention:
    """An entity found in a text: the key it links by, how it was written, its kind."""

    key: str
    text: str
    label: str


class EntityExtractor:
    """Finds the people, places and things a text mentions, with the shared spaCy pipeline."""

    def __init__(self, model: str = nlp.SPACY_MODEL) -> None:
        self._model_name = model

    def load(self) -> None:
        """Load the shared spaCy pipeline now (otherwise it loads on first use)."""
        nlp.spacy_pipeline(self._model_name)

    def extract_many(self, texts: Sequence[str], *, background: bool = False) -> list[list[Mention]]:
        """Mentions for each text, deduplicated by key, at most MAX_MENTIONS, named ones first
        (background=True: in short slices that let foreground callers of spaCy go first)."""
        docs = nlp.parse(texts, disable=("parser", "lemmatizer"), batch_size=128, max_chars=MAX_CHARS,
                         model=self._model_name, background=background)
        return [mentions(doc) for doc in docs]

    def extract(self, text: str) -> list[Mention]:
        return self.extract_many([text])[0]


def _trim(tokens: list[Any], *, words: bool = True) -> list[Any]:
    """Drop interjections, calendar words (words=False: neither, as in a title), punctuation and a
    possessive 's at the edges ("Congrats Mel" -> "Mel", "Ed Sheeran's" -> "Ed Sheeran")."""
    def noise(tok: Any) -> bool:
        return bool((words and tok.lower_ in _NOT_NAMES) or tok.is_punct or tok.is_space or tok.tag_ == "POS")

    while tokens and noise(tokens[0]):
        tokens = tokens[1:]
    while tokens and noise(tokens[-1]):
        tokens = tokens[:-1]
    return tokens


def mentions(doc: Any, limit: int = MAX_MENTIONS) -> list[Mention]:
    """The entities of one spaCy Doc (tagger and NER are enough; the parser is not needed)."""
    found: dict[str, tuple[int, int, Mention]] = {}
    covered: set[int] = set()

    def keep(tokens: list[Any], label: str, rank: str) -> None:
        tokens = _trim(tokens, words=label not in _TITLES)
        if not tokens or not _well_formed(doc, tokens, label):
            return
        text = _QUOTES.sub("", doc[tokens[0].i:tokens[-1].i + 1].text.strip())
        if not is_plausible(text):
            return
        key = normalise(text)
        if key not in found:
            found[key] = (_RANK[rank], tokens[0].i, Mention(key, text, label))

    for ent in doc.ents:
        covered.update(range(ent.start, ent.end))  # dates, numbers and money are no entities
        if ent.label_ in _KEEP_LABELS:
            keep(list(ent), ent.label_, "ent")
    run: list[Any] = []
    for tok in [*doc, None]:
        if tok is not None and tok.pos_ == "PROPN" and tok.i not in covered and tok.is_alpha:
            run.append(tok)
            continue
        if run:
            keep(run, "PROPN", "PROPN")
            run = []
    # compound nouns ("support group", "pottery class"): two or more nouns in a row
    # (a plural before a singular noun mostly ends one: "the words happiness" on a sign are no compound)
    nouns: list[Any] = []
    for tok in [*doc, None]:
        noun = tok is not None and tok.pos_ == "NOUN" and tok.is_alpha and tok.i not in covered \
            and tok.lower_ not in _CALENDAR
        if noun and not (nouns and tok.tag_ == "NN" and _plural_ends_compound(nouns[-1])):
            nouns.append(tok)
            continue
        if len(nouns) >= 2:
            keep(nouns, "THING", "THING")
        nouns = [tok] if noun else []
    best = sorted(found.values(), key=lambda item: (item[0], item[1]))[:limit]
    return [m for _rank, _pos, m in sorted(best, key=lambda item: item[1])]


def _plural_ends_compound(tok: Any) -> bool:
    """A plural noun before a singular one is no modifier of it ("the words happiness"), unless it
    is one of the plurals English uses so ("clothes store")."""
    return bool(tok.tag_ == "NNS" and tok.lower_ not in _PLURAL_MODIFIERS and not tok.lower_.endswith("ics"))


def _well_formed(doc: Any, tokens: list[Any], label: str) -> bool:
    """Whether a trimmed span can be what its label says: a thing is still two or more nouns, a
    name is written with a capital, is no piece of a longer word ("Gon" of "Gonna"), and a
    one-word name is not a word the tagger or the text itself reads as a common one."""
    first, last = tokens[0], tokens[-1]
    if (first.i > 0 and doc[first.i - 1].is_alpha and not doc[first.i - 1].whitespace_) or \
            (last.i + 1 < len(doc) and doc[last.i + 1].is_alpha and not last.whitespace_):
        return False
    if label == "THING":
        return len(tokens) >= 2
    if not any(c.isupper() for tok in tokens for c in tok.text):
        return False  # "trans", "the kids & work": names are written with a capital
    if len(tokens) > 1 or label not in _NAMING:
        return True
    return not _common_word(doc, first, label)


def _common_word(doc: Any, tok: Any, label: str) -> bool:
    """A one-word name that is really a common word: a person or organisation the tagger reads as
    a common noun ("Pottery"), any name it reads as a verb, adverb or the like ("Cherish the
    moments"), or a capitalised first word of a sentence the same text also writes in lower case
    ("Blue's my fave ... the blue vase")."""
    if tok.tag_ in _NOT_NAME_TAGS or (label in ("PERSON", "ORG") and tok.tag_ not in _PROPER_TAGS):
        return True
    return _starts_sentence(doc, tok) and any(
        other.lower_ == tok.lower_ and other.text.islower() and other.pos_ != "PROPN" for other in doc)


def _starts_sentence(doc: Any, tok: Any) -> bool:
    """The token opens the text or a sentence (after . ! ? and any quotes or brackets)."""
    i = tok.i - 1
    while i >= 0 and (doc[i].is_space or doc[i].is_quote or doc[i].is_left_punct):
        i -= 1
    return i < 0 or doc[i].text[-1] in _SENTENCE_END


def aliases(keys: Mapping[str, str], counts: Mapping[str, int] | None = None) -> dict[str, str]:
    """Short names that stand for one longer name of the same person: {"mel": "melanie"}.

    `keys` maps entity keys to their labels, `counts` (optional) to how many memories mention
    each. A one-word person-like key of three or more letters is an alias of a longer one-word
    person-like key that starts with it, when that key is the only one, or is mentioned at
    least three times as often as all the others together (a typo such as "Mell" does not
    block "Mel" -> "Melanie"; a real "Melissa" of similar weight does).
    """
    counts = counts or {}
    people = sorted(k for k, label in keys.items() if label in _PERSONISH and " " not in k and k.isalpha())
    out: dict[str, str] = {}
    for short in people:
        if len(short) < 3:
            continue
        i = bisect.bisect_right(people, short)
        longer = []
        while i < len(people) and people[i].startswith(short):
            longer.append(people[i])
            i += 1
        if len(longer) == 1:
            out[short] = longer[0]
        elif longer:
            top = max(longer, key=lambda k: counts.get(k, 0))
            rest = sum(counts.get(k, 0) for k in longer if k != top)
            if counts.get(top, 0) >= 3 * max(rest, 1):
                out[short] = top
    return out


def links(found: Sequence[Mention], names: Sequence[str]) -> list[tuple[str, str, str]]:
    """A memory's (key, text, label) links: spaCy's mentions, then the names the extractor gave
    that spaCy missed (label EXTRACTED), at most MAX_MENTIONS."""
    rows = {m.key: (m.key, m.text, m.label) for m in found}
    for name in names:
        key = normalise(name)
        if key and key not in rows and is_plausible(name) and len(rows) < MAX_MENTIONS:
            rows[key] = (key, name, "EXTRACTED")
    return list(rows.values())

