"""espeak-ng voice settings: which base voices, variants, speeds and pitches training uses, and
which are kept for evaluation only (so evaluation hears voice combinations never trained on)."""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass

# Base voices per language. The *_EVAL_ONLY ones never occur in training.
TRAIN_BASES = {
    "en": ["en-us", "en-gb", "en-gb-x-rp", "en-gb-scotland", "en-029", "en-gb-x-gbclan"],
    "de": ["de"], "fr": ["fr-fr", "fr-be"], "es": ["es"], "it": ["it"],
}
EVAL_BASES = {
    "en": ["en-us-nyc", "en-gb-x-gbcwmd", "en-us", "en-gb"],
    "de": ["de"], "fr": ["fr-ch", "fr-fr"], "es": ["es-419", "es"], "it": ["it"],
}
# Variants (files under espeak-ng-data/voices/!v); "" is the base voice itself.
TRAIN_VARIANTS = ["", "m1", "m2", "m3", "m4", "m5", "m8", "f1", "f2", "f3", "f5", "adam", "Alex", "Andrea", "Annie",
                  "benjamin", "caleb", "edward", "iven", "kaukovalta", "klatt", "klatt3", "Lee", "Mario", "michel",
                  "Mike", "norbert", "paul", "quincy", "rob", "robert", "steph", "travis", "zac", "Jacky", "anika"]
EVAL_VARIANTS = ["m6", "m7", "f4", "linda", "john", "max", "belinda", "david"]
SPEED = (130, 200)  # words per minute
PITCH = (25, 75)


@dataclass(frozen=True)
class Voice:
    name: str  # base voice, e.g. en-us
    variant: str = ""
    speed: int = 170
    pitch: int = 50

    @property
    def espeak_voice(self) -> str:
        return f"{self.name}+{self.variant}" if self.variant else self.name

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def parse(cls, spec: str) -> "Voice":
        """'en-us+f3:160:40' (voice[+variant][:speed[:pitch]])."""
        parts = spec.strip().split(":")
        name, _, variant = parts[0].partition("+")
        try:
            speed = int(parts[1]) if len(parts) > 1 else 170
            pitch = int(parts[2]) if len(parts) > 2 else 50
        except ValueError as e:
            raise ValueError(f"voice {spec!r}: expected VOICE[+VARIANT][:SPEED[:PITCH]] with integer speed/pitch") from e
        return cls(name, variant, speed, pitch)


def random_voice(r: random.Random, lang: str, *, heldout: bool) -> Voice:
    """Training draws base and variant from the training lists; evaluation uses an eval-only
    variant, so every evaluation combination is unseen."""
    bases = EVAL_BASES if heldout else TRAIN_BASES
    variants = EVAL_VARIANTS if heldout else TRAIN_VARIANTS
    return Voice(r.choice(bases[lang]), r.choice(variants), r.randint(*SPEED), r.randint(*PITCH))
