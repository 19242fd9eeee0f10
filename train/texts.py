"""Sentences to speak: English (templates, common-word sequences, numbers, dates, times) and
short German, French, Spanish and Italian sentences.

Every sentence falls on one side of a fixed hash split (`is_heldout`), so training texts
and evaluation texts are disjoint by construction whatever seeds or counts are used. The
demo clip's sentence is never a training text.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from train.score import normalize_text as normalize

LANGUAGES = {"en": "English", "de": "German", "fr": "French", "es": "Spanish", "it": "Italian"}
HELDOUT_BUCKETS = 8  # one sentence in 8 (by hash) is reserved for evaluation

_BLOCKED = {"fuck", "fucking", "shit", "sex", "porn", "damn", "bitch", "ass", "dick", "gay", "nigga", "cock",
            "pussy", "hell", "sexy", "nude", "naked", "rape", "kill", "killed", "dead", "cum"}


@dataclass(frozen=True)
class Sentence:
    lang: str
    text: str


def is_heldout(text: str) -> bool:
    digest = hashlib.blake2b(normalize(text).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % HELDOUT_BUCKETS == 0


def is_demo(text: str) -> bool:
    """The demo clip's sentence (runtime.DEMO_TEXT) and anything close to it stay out of training."""
    return "quick brown fox" in normalize(text)


@lru_cache(maxsize=8)
def common_words(lang: str, n: int = 2500) -> tuple[str, ...]:
    """The n most frequent plain words of a language (wordfreq), profanity dropped."""
    try:
        from wordfreq import top_n_list
    except ImportError as e:
        raise RuntimeError("the recipe needs wordfreq: pip install -e '.[train]'") from e
    letters = re.compile(r"^[^\W\d_]+$")
    vowel = re.compile(r"[aeiouyàâäéèêëíìîïóòôöúùûü]")
    out = [w for w in top_n_list(lang, n)
           if letters.match(w) and vowel.search(w) and w not in _BLOCKED and (len(w) > 1 or w in "ai")]
    return tuple(out)


# Word roots kept out of the wide vocabulary (below), which reaches far past the hand-checked list above.
_BLOCKED_ROOTS = re.compile(r"fuck|shit|cunt|whore|slut|bitch|nigg|porn|dildo|penis|vagin|boob|^tits$|fag|^rapist|^raping|"
                            r"masturb|orgasm|horny|hooker|stripper|^nazis?$|^cocks?$|^dicks?$|^rape[sd]?$|sexual|sexy|nude|naked")
WIDE_VOCABULARY = 12000  # wordfreq's most frequent words that wide-vocabulary clips draw from


@lru_cache(maxsize=8)
def wide_words(lang: str) -> tuple[str, ...]:
    """The words up to WIDE_VOCABULARY past the common ones. With 2,400 words the model can learn
    each spelling by heart; with many it has to spell from the sound (the demo's "jumps" and "lazy"
    are rank 8530 and 4615)."""
    common = set(common_words(lang))
    return tuple(w for w in common_words(lang, WIDE_VOCABULARY) if w not in common and not _BLOCKED_ROOTS.search(w))


def _cap(s: str) -> str:
    return s[0].upper() + s[1:]


# --- English -------------------------------------------------------------------------------
_EN = dict(
    name=["Anna", "David", "Maria", "John", "Sarah", "Peter", "Emma", "Tom", "Laura", "Michael", "Lucy", "James",
          "Kate", "Robert", "Alice", "Daniel", "Helen", "Paul", "Nina", "Frank", "Grace", "Oliver", "Sophie", "Mark"],
    subject=["my brother", "the teacher", "our neighbor", "a young woman", "the old man", "her friend", "the doctor",
             "my mother", "the driver", "a small child", "the manager", "his sister", "the students", "our team",
             "the farmer", "my father", "the children", "a tall man", "the nurse", "your uncle", "the singer"],
    verb=["found", "bought", "painted", "opened", "carried", "washed", "sold", "wanted", "cleaned", "closed", "fixed",
          "lost", "moved", "needed", "watched", "liked", "brought", "made", "saw", "took", "kept", "left", "chose"],
    adj=["old", "new", "small", "big", "red", "green", "blue", "heavy", "empty", "broken", "warm", "cold", "quiet",
         "bright", "dark", "clean", "strange", "famous", "simple", "wooden", "yellow", "long", "short", "happy"],
    noun=["house", "car", "book", "garden", "window", "letter", "chair", "table", "bottle", "camera", "bicycle",
          "picture", "door", "kitchen", "shirt", "phone", "basket", "ticket", "apple", "river", "boat", "road",
          "map", "radio", "coat", "box", "lamp", "cup", "song", "story", "computer", "bridge", "market", "dog"],
    place=["at the station", "in the park", "near the school", "in the kitchen", "at the market", "on the beach",
           "in the city", "at home", "in the garden", "at the office", "by the river", "in the library",
           "at the airport", "on the farm", "in the hospital", "at the hotel", "in the village", "on the train"],
    time=["this morning", "last night", "on Monday", "on Friday", "yesterday", "every day", "after lunch",
          "before dinner", "in the evening", "last week", "on Sunday", "in the afternoon", "next year", "today",
          "on Tuesday", "at noon", "in summer", "in winter", "on Saturday", "tomorrow"],
    month=["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"],
    weekday=["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
    thing=["apples", "books", "chairs", "tickets", "eggs", "cars", "houses", "letters", "boxes", "birds", "dogs",
           "students", "pages", "rooms", "cups", "bottles", "people", "trees", "minutes", "days", "miles"],
)


def _en_template(r: random.Random) -> str:
    w = {k: r.choice(v) for k, v in _EN.items()}
    who = r.choice([w["name"], _cap(w["subject"])]) if r.random() < 0.5 else w["name"]
    obj = f"the {w['adj']} {w['noun']}" if r.random() < 0.6 else f"a {w['adj']} {w['noun']}"
    obj = obj.replace("a old", "an old").replace("a empty", "an empty")
    forms = [
        f"{who} {w['verb']} {obj} {w['place']}.",
        f"{who} {w['verb']} {obj} {w['time']}.",
        f"{_cap(w['time'])}, {w['name']} {w['verb']} {obj}.",
        f"Where is the {w['adj']} {w['noun']}?",
        f"Did {w['name']} see the {w['noun']} {w['place']}?",
        f"The {w['noun']} was {w['adj']} and {r.choice(_EN['adj'])}.",
        f"{who} wants to visit {obj} {w['time']}.",
        f"I think the {w['noun']} is too {w['adj']}.",
        f"Please put the {w['noun']} {w['place']}.",
        f"We will meet {w['name']} {w['time']}.",
        f"Can you bring me the {w['adj']} {w['noun']}?",
        f"{who} is reading a {w['adj']} book {w['place']}.",
    ]
    return _cap(r.choice(forms))


def _en_numbers(r: random.Random) -> str:
    name, thing, month, day = r.choice(_EN["name"]), r.choice(_EN["thing"]), r.choice(_EN["month"]), r.choice(_EN["weekday"])
    hour, minute = r.randint(1, 12), r.choice([0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55, r.randint(0, 59)])
    clock = f"{hour}:{minute:02d}"
    forms = [
        f"{name} has {r.randint(2, 99)} {thing}.",
        f"The train leaves at {clock}.",
        f"The meeting starts at {clock} on {day}.",
        f"She was born on {month} {r.randint(1, 28)}, {r.randint(1950, 2023)}.",
        f"We counted {r.randint(2, 999)} {thing} in the room.",
        f"The shop opens at {clock} every {day}.",
        f"My flight is on {month} {r.randint(1, 30)} at {clock}.",
        f"It costs {r.randint(2, 500)} dollars.",
        f"There are {r.randint(2, 60)} {thing} on the table.",
        f"In {r.randint(1900, 2030)}, {name} moved to a new city.",
        f"Call me at {clock} on {month} {r.randint(1, 28)}.",
    ]
    return r.choice(forms)


def _word_sequence(r: random.Random, lang: str, lo: int, hi: int, wide: bool = False) -> str:
    """Mostly frequent words; wide ones take half their words from past the common list."""
    words = common_words(lang)
    first, share = (wide_words(lang), 0.5) if wide else (words[:1500], 0.7)
    seq = [r.choice(first) if r.random() < share else r.choice(words) for _ in range(r.randint(lo, hi))]
    if lang == "en":
        seq = ["I" if s == "i" else s for s in seq]
    return _cap(" ".join(seq)) + r.choice([".", ".", ".", "?", "!"])


# --- German, French, Spanish, Italian --------------------------------------------------------
_FOREIGN = {
    "de": dict(
        s=["Der Mann", "Die Frau", "Mein Bruder", "Das Kind", "Unser Lehrer", "Meine Mutter", "Der Arzt", "Die Kinder",
           "Mein Freund", "Die Nachbarin", "Der Fahrer", "Anna", "Peter", "Lukas", "Sophie"],
        v=["kauft", "sieht", "findet", "sucht", "liest", "braucht", "öffnet", "verkauft", "malt", "trägt", "bringt"],
        o=["das alte Haus", "ein neues Auto", "den roten Ball", "die kleine Katze", "das dicke Buch", "einen Brief",
           "den Schlüssel", "die grüne Tasche", "ein warmes Brot", "die Zeitung", "einen großen Tisch", "das Fenster"],
        p=["im Garten", "am Bahnhof", "in der Stadt", "heute Morgen", "am Montag", "jeden Tag", "nach der Schule",
           "im Sommer", "in der Küche", "am Abend", "auf dem Markt", "morgen früh"],
        q=["Wo ist {o}?", "Hast du {o} gesehen?", "Wie spät ist es?", "Ich habe {o} vergessen.", "Es regnet {p}.",
           "Wir gehen {p} spazieren.", "Das Wetter ist heute schön.", "Kannst du mir bitte helfen?"],
    ),
    "fr": dict(
        s=["L'homme", "La femme", "Mon frère", "L'enfant", "Notre professeur", "Ma mère", "Le médecin", "Les enfants",
           "Mon ami", "La voisine", "Le chauffeur", "Marie", "Pierre", "Julien", "Claire"],
        v=["achète", "voit", "trouve", "cherche", "lit", "ouvre", "vend", "porte", "prend", "regarde", "apporte"],
        o=["la vieille maison", "une nouvelle voiture", "le ballon rouge", "le petit chat", "un gros livre",
           "une lettre", "la clé", "le sac vert", "du pain chaud", "le journal", "une grande table", "la fenêtre"],
        p=["dans le jardin", "à la gare", "en ville", "ce matin", "lundi", "tous les jours", "après l'école",
           "en été", "dans la cuisine", "le soir", "au marché", "demain matin"],
        q=["Où est {o}?", "As-tu vu {o}?", "Quelle heure est-il?", "J'ai oublié {o}.", "Il pleut {p}.",
           "Nous allons nous promener {p}.", "Il fait beau aujourd'hui.", "Peux-tu m'aider, s'il te plaît?"],
    ),
    "es": dict(
        s=["El hombre", "La mujer", "Mi hermano", "El niño", "Nuestro profesor", "Mi madre", "El médico", "Los niños",
           "Mi amigo", "La vecina", "El conductor", "María", "Pablo", "Lucía", "Carlos"],
        v=["compra", "ve", "encuentra", "busca", "lee", "abre", "vende", "lleva", "toma", "mira", "trae"],
        o=["la casa vieja", "un coche nuevo", "la pelota roja", "el gato pequeño", "un libro grande", "una carta",
           "la llave", "la bolsa verde", "pan caliente", "el periódico", "una mesa grande", "la ventana"],
        p=["en el jardín", "en la estación", "en la ciudad", "esta mañana", "el lunes", "todos los días",
           "después de la escuela", "en verano", "en la cocina", "por la noche", "en el mercado", "mañana temprano"],
        q=["¿Dónde está {o}?", "¿Has visto {o}?", "¿Qué hora es?", "He olvidado {o}.", "Llueve {p}.",
           "Vamos a pasear {p}.", "Hace buen tiempo hoy.", "¿Puedes ayudarme, por favor?"],
    ),
    "it": dict(
        s=["L'uomo", "La donna", "Mio fratello", "Il bambino", "Il nostro professore", "Mia madre", "Il medico",
           "I bambini", "Il mio amico", "La vicina", "L'autista", "Giulia", "Marco", "Luca", "Chiara"],
        v=["compra", "vede", "trova", "cerca", "legge", "apre", "vende", "porta", "prende", "guarda", "disegna"],
        o=["la vecchia casa", "una macchina nuova", "la palla rossa", "il gatto piccolo", "un libro grande",
           "una lettera", "la chiave", "la borsa verde", "il pane caldo", "il giornale", "un tavolo grande",
           "la finestra"],
        p=["in giardino", "alla stazione", "in città", "stamattina", "lunedì", "ogni giorno", "dopo la scuola",
           "d'estate", "in cucina", "la sera", "al mercato", "domani mattina"],
        q=["Dov'è {o}?", "Hai visto {o}?", "Che ore sono?", "Ho dimenticato {o}.", "Piove {p}.",
           "Andiamo a fare una passeggiata {p}.", "Oggi fa bel tempo.", "Puoi aiutarmi, per favore?"],
    ),
}


def _foreign_template(r: random.Random, lang: str) -> str:
    g = _FOREIGN[lang]
    if r.random() < 0.3:
        return _cap(r.choice(g["q"]).format(o=r.choice(g["o"]), p=r.choice(g["p"])))
    return f"{r.choice(g['s'])} {r.choice(g['v'])} {r.choice(g['o'])} {r.choice(g['p'])}."


Kind = Literal["sentence", "words", "wide"]


def sentence(r: random.Random, lang: str, short: bool = False, kind: Kind = "sentence") -> str:
    """One text of a kind: a sentence (`short` keeps it to a few words, for multi-sentence clips);
    "words", one to three common words (clips of a second or so, where language identification is
    hardest); "wide", two to seven words from the wide vocabulary."""
    if kind == "words":
        return _word_sequence(r, lang, 1, 3)
    if kind == "wide":
        return _word_sequence(r, lang, 2, 7, wide=True)
    x = r.random()
    if lang == "en":
        if x < 0.45:
            return _en_template(r)
        if x < 0.6:
            return _en_numbers(r)
        return _word_sequence(r, "en", 2, 5 if short else 9)
    if x < 0.65:
        return _foreign_template(r, lang)
    return _word_sequence(r, lang, 2, 4 if short else 7)


def sentences(seed: int, lang: str, n: int, *, heldout: bool, short: bool = False, kind: Kind = "sentence",
              exclude: set[str] = frozenset()) -> list[Sentence]:
    """n distinct texts of a kind from one side of the split; `exclude` holds normalized texts to skip."""
    r = random.Random(f"{seed}-{lang}-{heldout}-{short}" + ("" if kind == "sentence" else f"-{kind}"))
    out: dict[str, Sentence] = {}
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > 50 * n + 1000:
            raise RuntimeError(f"could not make {n} distinct {lang} sentences; lower the count")
        text = sentence(r, lang, short, kind)
        key = normalize(text)
        if key in out or key in exclude or is_heldout(text) != heldout or is_demo(text):
            continue
        out[key] = Sentence(lang, text)
    return list(out.values())
