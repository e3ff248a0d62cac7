"""The small error hierarchy. Library code raises these; only the CLI and the app turn
them into exit codes and messages, so every message says what happened and what to do."""


class RagError(Exception):
    """Base class for every error the user can act on."""


class InputError(RagError):
    """A question, flag or cases file the user gave is not acceptable."""


class CorpusError(RagError):
    """The corpus folder is missing or holds no usable document."""


class StoreError(RagError):
    """The index is missing, stale, corrupt or built with other settings."""


class ModelError(RagError):
    """A model file is missing, corrupt, or fails to load."""
