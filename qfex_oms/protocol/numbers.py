"""The market number domain: every price, size and amount the client and the simulator accept.

One definition, used by the codec (each numeric field read from the wire, each number written), by
``core.args`` (a strategy's arguments) and, through the codec, by the simulator's request decoding.
A number outside it is not a market number but an attack or a bug: ``1e999999999`` overflows the
first sum it enters, and ``1e-30000000`` written out in positional notation is 30 million digits.

The bounds come from QFEX's reference data (qfex-api.md §6, §15.6): tick and lot sizes such as
``0.05`` and ``0.001``, quantities up to ``100000000``, balances around ``1e10``. They leave wide room:

* magnitude below ``1e16`` (``MAX_MAGNITUDE_EXPONENT``): ten million times the largest quantity;
* a non-zero magnitude of at least ``1e-18`` (``MIN_MAGNITUDE_EXPONENT``), the finest resolution any
  market uses. The bound is on the leading digit, not the last one: a fee the exchange computed in
  binary floating point arrives with 17 significant digits, whose last digit may lie well below
  ``1e-18``. A zero carries no leading digit; its own exponent must lie within the same range;
* at most ``MAX_SIGNIFICANT_DIGITS`` digits in the coefficient (trailing zeros count: they are kept).

Together these bound a number's positional text to ``MAX_FIXED_TEXT`` characters. Checking is cheap
and never expands a number: ``adjusted()`` is O(1), and the digit count is only looked up when the
text or the Decimal could hold more digits than the limit. Change the bounds here and nowhere else.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

MAX_MAGNITUDE_EXPONENT = 15
MIN_MAGNITUDE_EXPONENT = -18
MAX_SIGNIFICANT_DIGITS = 34
# A numeric string longer than this is refused before it is parsed: the longest in-domain number in
# positional notation is MAX_FIXED_TEXT characters; the rest leaves room for an exponent.
MAX_NUMBER_TEXT = 80
# sign + "0." + 17 zeros + 34 digits: no number in the domain writes longer in positional notation.
MAX_FIXED_TEXT = 3 - MIN_MAGNITUDE_EXPONENT - 1 + MAX_SIGNIFICANT_DIGITS

# JSON's number grammar, loosened only where a venue's decimal text might be (a leading "+", "1." or
# ".5", leading zeros); ASCII digits only, no "_", no whitespace, no NaN or Infinity.
_NUMBER_TEXT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z", re.ASCII)
_INT_BOUND = 10 ** (MAX_MAGNITUDE_EXPONENT + 1)
_PREVIEW = 40


class NumberError(ValueError):
    """Not a number, or a number outside the market number domain; the message never expands it."""


def preview(value: object) -> str:
    """``value`` as a short text for an error message: a Decimal's ``str`` keeps a huge exponent as
    an exponent (only positional formatting expands it), and anything long is cut with the cut marked."""
    if isinstance(value, str):
        text = repr(value[:_PREVIEW]) if len(value) > _PREVIEW else repr(value)
        size = len(value)
    else:
        text = str(value)
        size = len(text)
    if size > _PREVIEW:
        text = f"{text[:_PREVIEW + 2]}...(cut, {size} characters)"
    return text


def _range_problem(value: Decimal) -> str | None:
    if not value.is_finite():
        return "is not a finite number"
    adjusted = value.adjusted()
    if adjusted > MAX_MAGNITUDE_EXPONENT:
        return f"is too large (the magnitude must be below 1e{MAX_MAGNITUDE_EXPONENT + 1})"
    if adjusted < MIN_MAGNITUDE_EXPONENT:
        if value.is_zero():
            return f"is a zero with more than {-MIN_MAGNITUDE_EXPONENT} decimal places"
        return f"is smaller than 1e{MIN_MAGNITUDE_EXPONENT} in magnitude"
    return None


def problem(value: Decimal) -> str | None:
    """Why ``value`` is outside the domain, or None. Linear in the Decimal's own digits at worst."""
    found = _range_problem(value)
    if found is None and len(value.as_tuple().digits) > MAX_SIGNIFICANT_DIGITS:
        found = f"has more than {MAX_SIGNIFICANT_DIGITS} significant digits"
    return found


def checked(value: Decimal) -> Decimal:
    """``value`` if it is in the domain; ``NumberError`` otherwise."""
    found = problem(value)
    if found is not None:
        raise NumberError(f"{preview(value)} {found}")
    return value


def parse(value: object) -> Decimal:
    """A JSON number or numeric string (or a strategy's Decimal) as a Decimal in the domain.

    ``TypeError`` for what is not a number at all (a boolean, null, an array), ``NumberError`` for a
    number outside the domain or a string that is not a number. A float goes through its shortest
    repr, so at most 17 digits; an int is bounded before it is converted.
    """
    if isinstance(value, bool):
        raise TypeError("a boolean is not a number")
    if isinstance(value, float):
        result = Decimal(repr(value))
        found = _range_problem(result)
    elif isinstance(value, int):
        if -_INT_BOUND < value < _INT_BOUND:
            return Decimal(value)
        # Not its digits: a huge int's decimal text costs quadratic time (and Python refuses it).
        raise NumberError(f"an integer of {value.bit_length()} bits is too large (the magnitude must be "
                          f"below 1e{MAX_MAGNITUDE_EXPONENT + 1})")
    elif isinstance(value, str):
        return _parse_text(value)
    elif isinstance(value, Decimal):
        return checked(value)
    else:
        raise TypeError(f"expected a number, got {type(value).__name__}")
    if found is not None:
        raise NumberError(f"{preview(value)} {found}")
    return result


def _parse_text(value: str) -> Decimal:
    if len(value) > MAX_NUMBER_TEXT:
        raise NumberError(f"{preview(value)} is longer than {MAX_NUMBER_TEXT} characters")
    if _NUMBER_TEXT.match(value) is None:
        raise NumberError(f"{preview(value)} is not a number")
    try:
        result = Decimal(value)
    except InvalidOperation:  # an exponent beyond what Decimal can hold at all
        raise NumberError(f"{preview(value)} is out of range") from None
    # A text of at most MAX_SIGNIFICANT_DIGITS characters cannot hold more digits than that.
    found = _range_problem(result) if len(value) <= MAX_SIGNIFICANT_DIGITS else problem(result)
    if found is not None:
        raise NumberError(f"{preview(value)} {found}")
    return result


def size(value: Decimal) -> Decimal:
    """``value`` if it can be a size (a quantity traded or ordered): greater than zero."""
    if not value > 0:
        raise NumberError(f"a size must be greater than zero, got {preview(value)}")
    return value


def fixed_text(value: Decimal) -> str:
    """``value`` in positional notation, as the wire carries it; ``NumberError`` outside the domain.

    The O(1) range check comes first, so positional formatting never expands a huge exponent; the
    digit count is looked up only when the text is long enough to hold too many digits.
    """
    found = _range_problem(value)
    if found is None:
        text = format(value, "f")
        if len(text) <= MAX_SIGNIFICANT_DIGITS:
            return text
        found = problem(value)
        if found is None:
            return text
    raise NumberError(f"cannot send {preview(value)}: it {found}")
