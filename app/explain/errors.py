"""The engine's error type."""


class ExplainerError(ValueError):
    """Bad input, settings or model structure for an explanation; the message says what to do."""
