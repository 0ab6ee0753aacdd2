"""Identity: object keys and person references, normalised once, compared as Entra compares them.

- :class:`Key` is an object's key (``class:OAK:2026-27:9A``). It is a ``str`` holding the key as
  the source wrote it (Unicode NFC), so output, JSON and messages keep that spelling; its identity
  is its *folded* form (:attr:`Key.folded`: NFC, case-folded), as Entra compares the marker
  values. Two keys that differ only in case (or in Unicode composition) name one object.
- :class:`TeamKey` is a Team's key; it is always derived from its group's key by
  :func:`team_key` (``"team:" + group key``), and :func:`group_of` goes back.
- :data:`UserRef` is a person reference (UPN, mail, employeeId, or ``id:<objectId>``): its value
  *is* the folded form (:func:`user_ref`), so plain ``str`` comparison is already the right one
  and the diff's set arithmetic over hundreds of thousands of them stays C-speed.

Normalisation happens at the model boundary: the model's constructors make every key a
:class:`Key` (:mod:`reconciler.model`), and the document loader and the Entra read make every
reference with :func:`user_ref`. Keys compare exactly with ``==`` (so sets and dicts of keys stay
C-speed and a plain ``str`` finds its key); where two sources meet, keys are paired by identity:
the diff first respells the actual state's keys as the desired state spells them
(:func:`reconciler.plan.align.align`), so a source whose keys change only in case plans nothing.
"""

from __future__ import annotations

import re
import unicodedata
from typing import NewType

__all__ = ["TEAM_PREFIX", "Key", "TeamKey", "UserRef", "fold", "group_of", "team_key", "user_ref"]

TEAM_PREFIX = "team:"

UserRef = NewType("UserRef", str)


#: a run of percent-escapes of bytes >= 0x80: the UTF-8 of non-ASCII letters in a key's id
_ESCAPED_UTF8 = re.compile(r"(?:%[89A-Fa-f][0-9A-Fa-f])+")


def _unescape(run: re.Match[str]) -> str:
    try:
        return bytes.fromhex(run.group().replace("%", "")).decode("utf-8")
    except UnicodeDecodeError:
        return run.group()


def fold(text: str) -> str:
    """The form identity compares: Unicode NFC, then case-folded (NFC again after folding).

    Non-ASCII letters the generator percent-encoded in a key (``%C3%89`` for ``É``) are compared as
    the letters they encode, so an id that changes only in case is one key even then; escapes of
    ASCII characters (``%3A`` for ``:``) keep their meaning, and a run that is not UTF-8 is kept.
    """
    if "%" in text:
        text = _ESCAPED_UTF8.sub(_unescape, text)
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", text).casefold())


def user_ref(text: str) -> UserRef:
    """A person reference as the model holds it: trimmed and folded (:func:`fold`)."""
    return UserRef(fold(text.strip()))


class Key(str):
    """An object key: the source's spelling (NFC) as its text, its identity in :attr:`folded`.

    ``==`` and ``hash`` are the exact ``str`` ones (C speed, consistent with plain strings); the
    places that pair keys across sources pair them by :attr:`folded` (:meth:`same`,
    :func:`reconciler.plan.align.align`, the document checks, the read, the fingerprint).
    """

    #: the identity: NFC, case-folded (:func:`fold`)
    folded: str

    def __new__(cls, text: str) -> Key:
        if type(text) is cls:
            return text  # already normalised
        spelled = unicodedata.normalize("NFC", str(text))
        obj = super().__new__(cls, spelled)
        obj.folded = fold(spelled)
        return obj

    def same(self, other: str) -> bool:
        """Whether ``other`` names the same object (equal ignoring case and composition)."""
        return self.folded == (other.folded if isinstance(other, Key) else fold(other))


class TeamKey(Key):
    """A Team's key: ``"team:" + the key of its group``, made by :func:`team_key`."""


def team_key(group_key: str) -> TeamKey:
    """The key of the Team made from the group ``group_key``: the one place it is derived."""
    return TeamKey(TEAM_PREFIX + group_key)


def group_of(key: str) -> Key:
    """The key of the group a Team's key is derived from (``key`` itself when it is no Team key)."""
    text = str(key)
    return Key(text[len(TEAM_PREFIX):] if fold(text[: len(TEAM_PREFIX)]) == TEAM_PREFIX else text)
