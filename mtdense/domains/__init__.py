"""Application domains. Each registers its plugins and CLI verbs through a ``plugin`` module named
by an entry point of the group ``mtdense.plugins`` (pyproject.toml) — the mechanism a third-party
package uses. The core never imports a domain."""
