"""Hostile Python guests, one action each, for the runtime's containment tests
(runtime/tests/hostile_python.rs): what the Rust guests under examples/hostile do,
written the way a Python author would, plus the SDK's own failure paths."""

from __future__ import annotations

import sys

from sluice_sdk import Component, Context

component = Component("hostile-py", "0.1.0", label="Hostile Python guests")


@component.action("spin")
def spin(ctx: Context, input: dict) -> None:
    """Loops forever: fuel or the wall-clock deadline must stop it."""
    n = 0
    while True:
        n += 1


@component.action("memoryBomb")
def memory_bomb(ctx: Context, input: dict) -> int:
    """Allocates 1 MiB blocks and keeps them until memory runs out."""
    blocks = []
    while True:
        blocks.append(bytearray(1 << 20))


@component.action("deepRecursion")
def deep_recursion(ctx: Context, input: dict) -> int:
    """Recurses without end under Python's own recursion limit."""

    def down(n: int) -> int:
        return down(n + 1) + 1

    return down(0)


@component.action("unboundedRecursion")
def unbounded_recursion(ctx: Context, input: dict) -> int:
    """Lifts Python's recursion limit first, so only the stack itself can stop it."""
    sys.setrecursionlimit(10_000_000)

    def down(n: int) -> int:
        return down(n + 1) + 1

    return down(0)


@component.action("raises")
def raises(ctx: Context, input: dict) -> int:
    """An uncaught exception: the SDK reports it as `fatal` with its traceback."""
    return {}["missing"]


@component.action("prints")
def prints(ctx: Context, input: dict) -> str:
    """`print` goes to stdout, which the host captures into the execution log."""
    print("hello from print", input.get("n"))
    return "printed"


@component.action("bigOutput")
def big_output(ctx: Context, input: dict) -> str:
    """A string result of `bytes` characters (JSON-encoded: two more for the quotes)."""
    return "x" * int(input["bytes"])


@component.action("lazyImport")
def lazy_import(ctx: Context, input: dict) -> str:
    """Imports a standard module at call time, which the build did not snapshot."""
    import decimal  # noqa: PLC0415 - the point of this guest

    return str(decimal.Decimal("1.10") + decimal.Decimal("2.205"))


@component.action("readFile")
def read_file(ctx: Context, input: dict) -> str:
    """Opens a path: there is no filesystem, whatever the path."""
    with open(input.get("path", "/etc/passwd")) as file:
        return file.read()


@component.action("bigRows")
def big_rows(ctx: Context, input: dict) -> list:
    """About `bytes` of JSON as rows of objects, the shape of a real export."""
    row = {"id": 0, "name": "customer name", "email": "someone@example.com", "active": True}
    size = len('{"id":100000,"name":"customer name","email":"someone@example.com","active":true},')
    return [{**row, "id": 100000 + i} for i in range(int(input["bytes"]) // size)]
