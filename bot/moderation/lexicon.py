"""The moderation lexicon: keyword rules, offer and warning cues, compiled into automata.

The default lexicon is ``lexicon.yaml`` beside this module. :meth:`Lexicon.from_yaml` reads
another file of the same shape, so an ops-edited ``moderation:`` file can replace it later
without code changes. Every term is normalised exactly as messages are
(:func:`bot.moderation.normalise.normalise`), so a list may say ``POS机`` or ``ＰＯＳ机``.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

import ahocorasick
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pypinyin import Style, pinyin
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from bot.moderation.normalise import is_han, normalise

__all__ = ["CueKind", "Lexicon", "LexiconError", "Strength", "Term", "default_lexicon"]

DEFAULT_PATH = Path(__file__).with_name("lexicon.yaml")
Strength = Literal["strong", "weak"]
CueKind = Literal["strong_cue", "weak_cue", "warning", "assurance", "benign", "question"]

_MIN_PINYIN = 5  # shorter pinyin keys ("tie" for 提额) would match inside ordinary words
_MAX_VARIANTS = 32  # heteronym combinations kept per term
_MAX_TERM = 64  # characters of a term or cue: keeps the automata small and the scan linear


class LexiconError(ValueError):
    """A lexicon file that cannot be used; the message names the file and what is wrong."""


class _RuleSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=60)
    pinyin: bool = True
    strong: list[str] = []
    weak: list[str] = []


class _LexiconSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rules: dict[str, _RuleSpec]
    reasons: dict[str, str] = {}
    strong_cues: list[str] = []
    weak_cues: list[str] = []
    warnings: list[str] = []
    assurances: list[str] = []
    questions: list[str] = []
    benign: list[str] = []


@dataclass(frozen=True, slots=True)
class Term:
    """A keyword of a rule, as found in the compact form of a message."""

    rule: str
    strength: Strength
    length: int


def _compact(word: str) -> str:
    return normalise(word, _MAX_TERM).compact


def _pinyin_variants(compact: str) -> list[str]:
    """Every reading of ``compact`` (heteronyms combined), letters kept, digits as breaks."""
    options: list[list[str]] = []
    for ch in compact:
        if is_han(ch):
            readings = pinyin(ch, style=Style.NORMAL, heteronym=True, v_to_u=False)[0]
            options.append(list(dict.fromkeys(readings)))
        else:
            options.append([ch if ch.isalpha() else "#"])
    variants = ("".join(combo) for combo in itertools.product(*options))
    return [v for v in itertools.islice(variants, _MAX_VARIANTS) if len(v) >= _MIN_PINYIN]


class Lexicon:
    """Compiled keyword automata and the Chinese reason of every rule."""

    def __init__(self, spec: _LexiconSpec, source: str) -> None:
        self.source = source
        self.rules: tuple[str, ...] = tuple(spec.rules)
        self._reasons = {rule: r.reason for rule, r in spec.rules.items()} | spec.reasons
        words: dict[str, list[Term | CueKind]] = defaultdict(list)
        sounds: dict[str, set[str]] = defaultdict(set)
        for rule, r in spec.rules.items():
            for strength, terms in (("strong", r.strong), ("weak", r.weak)):
                for term in terms:
                    key = _compact(term)
                    if not key:
                        raise LexiconError(f"{source}: rules.{rule}: term {term!r} is empty")
                    words[key].append(Term(rule, strength, len(key)))  # type: ignore[arg-type]
                    if strength == "strong" and r.pinyin:
                        for variant in _pinyin_variants(key):
                            sounds[variant].add(rule)
        cue_lists: dict[CueKind, list[str]] = {
            "strong_cue": spec.strong_cues,
            "weak_cue": spec.weak_cues,
            "warning": spec.warnings,
            "assurance": spec.assurances,
            "benign": spec.benign,
        }
        for kind, cues in cue_lists.items():
            for cue in cues:
                if key := _compact(cue):
                    words[key].append(kind)
        self.words = ahocorasick.Automaton()
        for key, entries in words.items():
            self.words.add_word(key, (len(key), tuple(entries)))
        self.words.make_automaton()
        self.sounds = ahocorasick.Automaton()
        for key, rules in sounds.items():
            self.sounds.add_word(key, (len(key), tuple(sorted(rules))))
        self.sounds.make_automaton()
        # Question words keep their punctuation: they are read on the folded text.
        self.questions = ahocorasick.Automaton()
        for q in spec.questions:
            if q:
                self.questions.add_word(q.casefold(), len(q))
        if len(self.questions):
            self.questions.make_automaton()

    def reason(self, rule: str) -> str:
        """The Chinese reason a warning gives for ``rule`` (never any member text)."""
        return self._reasons.get(rule, "违反群规")

    def is_question(self, folded: str) -> bool:
        """True when the folded text contains a question mark or question word."""
        if not len(self.questions):
            return False
        return next(self.questions.iter(folded), None) is not None

    @classmethod
    def from_yaml(cls, path: Path) -> Lexicon:
        """Read and compile a lexicon file; :class:`LexiconError` names what is wrong."""
        try:
            data = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, YAMLError) as exc:
            raise LexiconError(f"{path}: cannot read the lexicon: {exc}") from exc
        try:
            spec = _LexiconSpec.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or '(top)'}: {e['msg']}" for e in exc.errors()
            )
            raise LexiconError(f"{path}: {problems}") from exc
        return cls(spec, str(path))


@cache
def default_lexicon() -> Lexicon:
    """The lexicon shipped with the package, compiled once per process."""
    return Lexicon.from_yaml(DEFAULT_PATH)
