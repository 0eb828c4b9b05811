"""Job functions that need an importable home (rq refuses functions of ``__main__``)."""


def noop() -> None:
    return None
