"""The base of every error a user causes and can fix: a bad config, annotation, media file, checkpoint,
path, flag or environment. Command-line tools (:func:`svitt_mm.apis.cli.run_tool`) print such an error
as one ``error: ...`` line (or a short list) and exit with status 2; any other exception is a bug and
keeps its traceback.

An error type joins by listing :class:`UserError` first among its bases, e.g.
``class BrokenMediaError(UserError, RuntimeError)``. Its message names the file, entry, key or value and
says what to do. An error that can be raised in a data-loader worker must be constructible from its
message alone: torch re-raises it in the main process as ``type(error)(message)``, the message holding
the worker's traceback (which :func:`svitt_mm.apis.cli.user_message` removes).
"""
from __future__ import annotations


class UserError(Exception):
    """An error the user can fix from its message alone (see the module docstring)."""


class InputFileError(UserError, ValueError):
    """A file the user named is missing or malformed (a config, an annotation file, an answer list ...);
    the message names the file and, where there is one, the entry and key."""


class MissingFileError(UserError, FileNotFoundError):
    """A file or folder the user named does not exist (an annotation file, media files, a checkpoint, a
    tokenizer); the message names it and where it was expected to come from."""
