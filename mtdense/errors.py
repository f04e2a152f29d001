"""One exception hierarchy for everything a user can fix; the CLI prints any of them as one line.

- ``MtdenseError``: the base class the CLI catches (``--debug`` shows the traceback).
- ``ConfigError`` (also a ``ValueError``): a config key or value. It may carry ``key``, a path
  *relative to the component that raised it*; ``Registry.build`` prefixes the config path it was
  called with (``ConfigError.under``), so a plugin never types its own location.
- ``RegistryError``: an unknown plugin name or option (a ``ConfigError``).
- ``CheckpointError``, ``DataError`` (a reader's file problem; always names the file),
  ``TrainingError`` (e.g. a non-finite loss), ``ExportError``.

``check_keys`` is the one helper that rejects unknown keys of a mapping with a did-you-mean hint.
"""

from __future__ import annotations

import difflib
from typing import Iterable, Mapping


class MtdenseError(Exception):
    """Base class of every error mtdense reports to a user as one line."""

    def __str__(self) -> str:
        return " ".join(super().__str__().split())  # one line, always


class ConfigError(MtdenseError, ValueError):
    """A configuration problem: ``key`` (dotted, relative to the raiser) and what to do."""

    def __init__(self, message: str, key: str | None = None):
        super().__init__(message)
        self.message = message
        self.key = key

    def __str__(self) -> str:
        text = " ".join(self.message.split())
        return f"{self.key}: {text}" if self.key else text

    def under(self, prefix: str) -> "ConfigError":
        """The same error with ``prefix`` put in front of its key (used by ``Registry.build``);
        unchanged if the key already starts with ``prefix`` (a nested build named its full path)."""
        if not prefix or (self.key and (self.key == prefix or self.key.startswith(prefix + "."))):
            return self
        key = f"{prefix}.{self.key}" if self.key else prefix
        err = type(self).__new__(type(self))
        ConfigError.__init__(err, self.message, key)
        return err


class RegistryError(ConfigError):
    """An unknown plugin name or a bad plugin option."""


class CheckpointError(MtdenseError):
    """A checkpoint or run folder that is missing, corrupt or does not fit the model."""


class DataError(MtdenseError, ValueError):
    """A data file that is missing, truncated or not in the expected format (names the file)."""


class TrainingError(MtdenseError, RuntimeError):
    """Training cannot continue (e.g. a non-finite loss); the message says what to try."""


class ExportError(MtdenseError):
    """A model cannot be exported in the requested format."""


def closest(word: str, choices: Iterable[str], cutoff: float = 0.5) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices``, or an empty string."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=cutoff)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_keys(section: Mapping, accepted: Iterable[str], what: str = "key") -> None:
    """Reject the first key of ``section`` not in ``accepted``: a ``ConfigError`` keyed by it."""
    accepted = list(accepted)
    for key in section:
        if key not in accepted:
            raise ConfigError(f"unknown {what}{closest(key, accepted)}; accepted: {', '.join(map(str, accepted))}",
                              key=str(key))
