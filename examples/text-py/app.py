"""`text`: a utility connector of small text transformations, the kind a low-code flow
needs between two services' steps: the twin in Python of `examples/text` (Rust),
declared with the Python SDK and held to the same tests (examples/text/tests/text.rs).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Annotated

from sluice_sdk import Component, Context, InvalidInput, schema_options

component = Component("text", "0.1.0", label="Text",
                      description="Small text transformations between steps.")

I64_MIN, I64_MAX = -(2**63), 2**63 - 1
# What Rust's `str::parse::<i64>` accepts: an optional sign and ASCII digits.
INTEGER = re.compile(r"[+-]?[0-9]+")


@schema_options(deny_unknown_fields=True)
@dataclass
class ReplaceInput:
    """Replace every occurrence of a substring."""

    text: Annotated[str, "The text to change"]
    find: Annotated[str, "The substring to look for (must not be empty)"]
    replacement: Annotated[str, "What replaces each occurrence"] = ""


@schema_options(deny_unknown_fields=True)
@dataclass
class ToIntegerInput:
    """Read an integer written in text."""

    text: Annotated[str, "Decimal digits, optionally signed and surrounded by white space"]


def replace(input: ReplaceInput) -> str:
    """Every occurrence of `find` in `text` replaced by `replacement`."""
    if not input.find:
        raise InvalidInput("`find` must not be empty")
    return input.text.replace(input.find, input.replacement)


def to_integer(input: ToIntegerInput) -> int:
    """The integer `text` holds."""
    digits = input.text.strip()
    if not INTEGER.fullmatch(digits):
        reason = "cannot parse integer from empty string" if not digits \
            else "invalid digit found in string"
        raise InvalidInput(f"`{input.text}` is not an integer: {reason}")
    value = int(digits)
    if not I64_MIN <= value <= I64_MAX:
        raise InvalidInput(f"`{input.text}` is not an integer: number too large to fit "
                           "in target type")
    return value


@component.action("replace", label="Replace",
                  description="Replaces every occurrence of a substring.")
def replace_action(ctx: Context, input: ReplaceInput) -> str:
    return replace(input)


@component.action("toInteger", label="To integer",
                  description="Reads an integer written in text.")
def to_integer_action(ctx: Context, input: ToIntegerInput) -> int:
    return to_integer(input)
