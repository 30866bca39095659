"""Measure the moderation detector on the labelled corpus: quality and speed.

    python bench/moderation.py [--corpus tests/data/moderation_corpus.yaml] [--runs 7]

Prints precision and recall per class (ad, personal_data, flood, ok), the share of ``ok``
messages flagged, then messages per second of ``ModerationDetector.check`` over the corpus and
of the baseline: bare pyahocorasick iteration of the compiled keyword automaton over the raw
texts, in the same process. Each speed is the median of ``--runs`` runs; the ratio
(baseline / detector) is printed last. Times only, no assertions: the floors are asserted
in tests/unit/test_moderation.py with :func:`evaluate`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, get_args

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ruamel.yaml import YAML  # noqa: E402

from bot.moderation import ModerationDetector, PastMessage, Verdict, VerdictClass  # noqa: E402

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "data" / "moderation_corpus.yaml"
CLASSES: tuple[VerdictClass, ...] = get_args(VerdictClass)
NOW = datetime.fromisoformat("2026-12-01T12:00:00+08:00")


@dataclass(frozen=True)
class Sample:
    """One labelled corpus message, ready for :meth:`ModerationDetector.check`."""

    text: str
    expect: VerdictClass
    kind: Any = "text"
    role: Any = "member"
    history: tuple[PastMessage, ...] = ()
    note: str = ""
    line: int = 0

    def check(self, detector: ModerationDetector) -> Verdict:
        """The detector's verdict on this message, at :data:`NOW`."""
        return detector.check(
            self.text, role=self.role, kind=self.kind, at=NOW, history=self.history
        )


def load_corpus(path: Path = CORPUS) -> list[Sample]:
    """The corpus entries, with their line numbers for failure messages."""
    data = YAML(typ="rt").load(path.read_text(encoding="utf-8"))
    samples = []
    for entry in data["messages"]:
        expect = entry["expect"]
        if expect not in CLASSES:
            raise ValueError(f"{path}:{entry.lc.line + 1}: expect must be one of {CLASSES}")
        history = tuple(
            PastMessage(NOW - timedelta(minutes=h["ago"]), h["text"])
            for h in entry.get("history", ())
        )
        samples.append(
            Sample(
                text=str(entry["text"]),
                expect=expect,
                kind=entry.get("kind", "text"),
                role=entry.get("role", "member"),
                history=history,
                note=entry.get("note", ""),
                line=entry.lc.line + 1,
            )
        )
    return samples


@dataclass
class Report:
    """Confusion counts over the corpus and the samples that went wrong."""

    pairs: Counter[tuple[str, str]] = field(default_factory=Counter)
    wrong: list[tuple[Sample, Verdict]] = field(default_factory=list)

    def precision(self, cls: str) -> float:
        """Of the messages given ``cls``, the share labelled ``cls`` (1.0 when none given)."""
        given = sum(n for (_, got), n in self.pairs.items() if got == cls)
        return self.pairs[(cls, cls)] / given if given else 1.0

    def recall(self, cls: str) -> float:
        """Of the messages labelled ``cls``, the share given ``cls`` (1.0 when none)."""
        labelled = sum(n for (want, _), n in self.pairs.items() if want == cls)
        return self.pairs[(cls, cls)] / labelled if labelled else 1.0

    def support(self, cls: str) -> int:
        """Messages labelled ``cls``."""
        return sum(n for (want, _), n in self.pairs.items() if want == cls)

    def flagged_share(self, cls: str = "ok") -> float:
        """Of the messages labelled ``cls``, the share given any other class."""
        labelled = self.support(cls)
        return 1 - self.pairs[(cls, cls)] / labelled if labelled else 0.0


def evaluate(detector: ModerationDetector, samples: list[Sample]) -> Report:
    """Run every sample through the detector and count expected against given classes."""
    report = Report()
    for sample in samples:
        verdict = sample.check(detector)
        report.pairs[(sample.expect, verdict.category)] += 1
        if verdict.category != sample.expect:
            report.wrong.append((sample, verdict))
    return report


def _median_rate(run: Any, count: int, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return count / statistics.median(times)


def main() -> None:
    """Print quality per class, then speed against the bare-automaton baseline."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=20, help="corpus passes per timed run")
    args = parser.parse_args()

    detector = ModerationDetector()
    samples = load_corpus(args.corpus)
    report = evaluate(detector, samples)
    print(f"corpus: {len(samples)} messages ({args.corpus})")
    print(f"{'class':<14}{'support':>8}{'precision':>11}{'recall':>8}")
    for cls in CLASSES:
        print(
            f"{cls:<14}{report.support(cls):>8}{report.precision(cls):>11.3f}"
            f"{report.recall(cls):>8.3f}"
        )
    print(f"ok messages flagged: {report.flagged_share('ok'):.1%}")
    for sample, verdict in report.wrong:
        print(f"  line {sample.line}: expected {sample.expect}, got {verdict.rule}")

    texts = [s.text for s in samples] * args.repeat
    work = [s for s in samples] * args.repeat
    automaton = detector.lexicon.words

    def baseline() -> None:
        for text in texts:
            for _ in automaton.iter(text):
                pass

    def detect() -> None:
        for sample in work:
            sample.check(detector)

    base = _median_rate(baseline, len(texts), args.runs)
    rate = _median_rate(detect, len(work), args.runs)
    print(f"baseline (bare pyahocorasick iter over raw texts): {base:,.0f} msg/s")
    print(f"detector (normalise + rules + personal data + flood): {rate:,.0f} msg/s")
    print(f"ratio baseline/detector: {base / rate:.1f}x")


if __name__ == "__main__":
    main()
