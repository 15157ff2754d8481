"""The safety layer: red-flag rules that run first, on every message, independent of the classifier.

A message that matches a red flag gets urgent-care advice (or crisis lines for self-harm) before anything
else, even when the red flag is buried inside another question. Past events ("two years ago, she is fine
now") and hypotheticals ("what should I do if…") defuse the physical categories unless the message also
says it is happening now; breathing is calmed only by information questions and hypotheticals ("how do you
do CPR if someone stops breathing?"), self-harm never. Each message is tried as normalised, with
typos repaired, and with texting spellings read out ("kiero", "cnt", "wanna", "q"); figures of speech and
denials ("me muero de ganas", "no quiero hacerme daño") are taken out first.

The rules are the floor. A small learned net (training/train_safety.py, `safety` in the manifest) then reads what
the rules let through and adds the emergencies they miss, above a threshold fitted on the development sets; it
can add a red flag, never take one away.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from inference.intents import IntentModel

from .normalize import TypoRepair, normalize

NO_FLAG = "none"  # the net's label for an ordinary message


class RedFlag(StrEnum):
    UNCONSCIOUS = "unconscious"
    NOT_BREATHING = "not_breathing"
    SEIZURE = "seizure"
    STROKE = "stroke"
    WORST_HEADACHE = "worst_headache"
    HEAD_INJURY = "head_injury"
    VISION_SPEECH_LOSS = "vision_speech_loss"
    SELF_HARM = "self_harm"


@dataclass(frozen=True)
class _Rule:
    flag: RedFlag
    patterns: tuple[re.Pattern, ...]
    signs: tuple[re.Pattern, ...]  # when set, one of these must match as well (head injuries)
    defusable: bool


_WORD = re.compile(r"[a-z]{5,}")


def _compile(patterns: list[str]) -> tuple[re.Pattern, ...]:
    return tuple(re.compile(p) for p in patterns)


class SafetyLayer:
    def __init__(self, rules: dict, known_words: set[str], net: IntentModel | None = None) -> None:
        self.net = net
        self.net_threshold = net.spec.thresholds["min_flag_probability"] if net is not None else 1.0
        self.acute = _compile(rules["acute"])
        # Information questions, hypotheticals, worries about the future and choking that is over: these calm every
        # physical category, breathing included; the other defusers (past events, calm wording) do not calm breathing.
        self.questions = _compile(rules.get("questions", []) + rules.get("over", []))
        # Figures of speech ("casi me desmayo", "my head is exploding with all this information") and denials ("no
        # quiero hacerme daño"): taken out of the message before any rule reads it.
        self.idioms = _compile(rules.get("idioms", []))
        self.defusers = _compile(rules["defusers"]) + self.questions
        # Texting spellings read as the full words, for the rules only (the normal form itself stays as it is).
        self.texting: dict[str, str] = dict(rules.get("texting", {}))
        self.rules = tuple(
            _Rule(RedFlag(name), _compile(spec["patterns"]), _compile(spec.get("signs", [])), bool(spec.get("defusable")))
            for name, spec in rules["categories"].items())
        self._defusable = {rule.flag: rule.defusable for rule in self.rules}
        # The literal words of the rules are what a typo is repaired towards ("seisure" -> "seizure").
        sources = [p.pattern for r in self.rules for p in r.patterns + r.signs]
        targets = {w for s in sources for w in _WORD.findall(re.sub(r"\\[a-z]", " ", s))}
        # Real words near a rule word stay as written ("fainting" is not "fitting", "mandarme" not "matarme").
        self.repair = TypoRepair(targets, known_words | set(rules.get("keep_words", [])))

    def reading(self, text: str) -> str:
        """What the net reads: the message normalised without its figures of speech and denials (a bag of stems
        cannot tell "no quiero morirme" from "quiero morirme"), texting spellings read out and typos repaired."""
        return self.repair.text(self._texting(self._plain(text)))

    def _plain(self, text: str) -> str:
        normal = normalize(text)
        for idiom in self.idioms:
            normal = idiom.sub(" ", normal)
        return normal if normal.strip() else ""

    def _texting(self, normal: str) -> str:
        return " ".join(self.texting.get(w, w) for w in normal.split())

    def check(self, text: str, lang: str = "es") -> RedFlag | None:
        """The first red flag the rules raise (self-harm first), else the net's, or None."""
        candidates = self._candidates(text)
        flag = self._ruled_on(candidates)
        if flag is not None or self.net is None:
            return flag
        probs = self.net.probabilities(self.reading(text), lang)
        if not probs or 1.0 - probs[NO_FLAG] < self.net_threshold:
            return None
        guess = RedFlag(max((label for label in probs if label != NO_FLAG), key=probs.__getitem__))
        return None if self._calmed_on(guess, candidates) else guess

    def calms(self, flag: RedFlag, text: str) -> bool:
        """The net reads words, not time: what calms a rule ("last week", "she is fine now") calms its guess too."""
        return self._calmed_on(flag, self._candidates(text))

    def _calmed_on(self, flag: RedFlag, candidates: set[str]) -> bool:
        """What would calm the rule of this category: its defusers, or for breathing only questions and choking
        that is over; nothing calms self-harm."""
        if not candidates or flag == RedFlag.SELF_HARM:
            return False
        return self._defused(candidates, None if self._defusable[flag] else self.questions)

    def _candidates(self, text: str) -> set[str]:
        """The readings the rules try: normalised (figures of speech taken out), typos repaired, texting read out."""
        normal = self._plain(text)
        if not normal:
            return set()
        return {normal, self.repair.text(normal), self.repair.text(self._texting(normal))}

    def ruled(self, text: str) -> RedFlag | None:
        """The rules' own flag, without the net: evaluation reports it beside recall, to show what the net adds."""
        return self._ruled_on(self._candidates(text))

    def _ruled_on(self, candidates: set[str]) -> RedFlag | None:
        if not candidates:
            return None
        defused = None
        asked = None
        for rule in sorted(self.rules, key=lambda r: r.flag != RedFlag.SELF_HARM):
            if not any(p.search(c) for c in candidates for p in rule.patterns):
                continue
            if rule.signs and not any(p.search(c) for c in candidates for p in rule.signs):
                continue
            if rule.defusable:
                if defused is None:
                    defused = self._defused(candidates)
                if defused:
                    continue
            elif rule.flag != RedFlag.SELF_HARM and self.questions:
                if asked is None:
                    asked = self._defused(candidates, self.questions)
                if asked:
                    continue
            return rule.flag
        return None

    def _defused(self, candidates: set[str], defusers: tuple[re.Pattern, ...] | None = None) -> bool:
        """Calm wording, and no sign of "now" outside the calm phrases themselves.

        The signs of "now" are read in the whole message (so "help someone" stays an exception to "help" even when
        "someone who" is a calm phrase); only a sign that overlaps a calm phrase ("fine now") does not count.
        """
        defusers = self.defusers if defusers is None else defusers
        if not any(p.search(c) for c in candidates for p in defusers):
            return False
        for c in candidates:
            calm = [m.span() for p in defusers for m in p.finditer(c)]
            for p in self.acute:
                if any(not any(m.start() < b and a < m.end() for a, b in calm) for m in p.finditer(c)):
                    return False
        return True
