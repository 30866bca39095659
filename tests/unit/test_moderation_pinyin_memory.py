"""Moderation loads pypinyin without its phrase dictionary, and reads every character the same.

Issue 8: the bot's resident memory. pypinyin's phrase dictionary and its defensive copies of
both dictionaries cost about 43 MB per process; moderation only ever asks for one character
at a time, for which the phrases change nothing. Each check runs in a fresh interpreter, as
pypinyin reads its switches once, when first imported.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Every character's readings, as moderation asks for them (bot.moderation.normalise and
# bot.moderation.lexicon), over the whole CJK basic block and extension A.
_READINGS = """
import hashlib, json
import bot.moderation.lexicon
from pypinyin import Style, lazy_pinyin, pinyin
from pypinyin.constants import PHRASES_DICT
chars = [chr(c) for c in list(range(0x3400, 0x4DC0)) + list(range(0x4E00, 0xA000))]
out = [
    (
        lazy_pinyin(ch, style=Style.NORMAL, v_to_u=False, errors="ignore"),
        pinyin(ch, style=Style.NORMAL, heteronym=True, v_to_u=False),
    )
    for ch in chars
]
print(len(PHRASES_DICT), hashlib.sha256(json.dumps(out).encode()).hexdigest())
"""


def _run(env_overrides: dict[str, str]) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYPINYIN_")}
    env.update(env_overrides)
    done = subprocess.run(
        [sys.executable, "-c", _READINGS],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    phrases, digest = done.stdout.split()
    return int(phrases), digest


def test_moderation_skips_the_phrase_dictionary_and_reads_every_character_the_same() -> None:
    lean = _run({})
    # pypinyin treats an empty value as "off": this is pypinyin with its phrase dictionary.
    full = _run({"PYPINYIN_NO_PHRASES": "", "PYPINYIN_NO_DICT_COPY": ""})
    assert lean[0] == 0, "importing bot.moderation loaded pypinyin's phrase dictionary"
    assert full[0] > 10_000
    assert lean[1] == full[1]


def test_an_operator_setting_wins() -> None:
    """setdefault: an explicit choice in the environment is kept."""
    phrases, _ = _run({"PYPINYIN_NO_PHRASES": ""})
    assert phrases > 10_000
