"""Refuse common and breached-looking passwords, offline.

zxcvbn ships its lists in the package (30,000 passwords seen in breaches, common
words and names) and estimates how many guesses a password takes, seeing
through l33t, repeats, sequences, dates and keyboard walks. A password an
attacker would find within a million guesses (score 0 or 1) is refused.
"""

from __future__ import annotations

from zxcvbn import zxcvbn

MAX_CHECKED = 128  # the forms accept at most 128 characters
MIN_SCORE = 2  # 0-1: guessed within 10^6 tries; 2: 10^8; 3: 10^10; 4: more


def weakness(password: str, user_inputs: tuple[str, ...] = ()) -> str | None:
    """Why `password` is too easy to guess, or None when it will do."""
    words = [w for value in user_inputs if value for w in (value, *value.replace("@", " ").split())]
    result = zxcvbn(password[:MAX_CHECKED], user_inputs=words, max_length=MAX_CHECKED)
    if result["score"] >= MIN_SCORE:
        return None
    warning = result["feedback"]["warning"] or "It would be guessed quickly."
    return f"This password is too common or easy to guess. {warning.rstrip('.')}. Try three or four unrelated words."
