"""The one exception type raised for user mistakes."""


class LensRelearnError(Exception):
    """A user mistake: bad model spec, bad data, impossible request.

    The message says what was wrong and what to do instead.

    Example:
        >>> try:
        ...     raise LensRelearnError("k=9000 is larger than the 6144 neurons at site 'mlp'")
        ... except LensRelearnError as error:
        ...     print(error)
        k=9000 is larger than the 6144 neurons at site 'mlp'
    """
