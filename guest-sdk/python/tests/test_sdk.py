"""Native unit tests of the SDK's pure parts: schema derivation, input parsing, the
manifest, HMAC. Run with `python -m unittest discover -s tests` from guest-sdk/python
(runtime/tests/python_sdk.rs runs them too, in the build's venv)."""

from __future__ import annotations

import enum
import unittest
from dataclasses import dataclass, field
from typing import Annotated, Literal, NotRequired, Optional, TypedDict

from sluice_sdk import (Component, ConnectionType, Context, InvalidInput, NoInput, Request,
                        TriggerResponse, hmac, object_schema, parse, schema_options)


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclass
class Inner:
    n: int


@schema_options(rename_all="camelCase", deny_unknown_fields=True)
@dataclass
class Outer:
    """An outer thing."""

    full_name: Annotated[str, "The name"]
    inner: Inner
    tags: list[str] = field(default_factory=list)
    color: Color = Color.RED
    nickname: Optional[str] = None
    mode: Literal["a", "b"] = "a"
    ratio: float = 1.0
    extra: dict[str, int] = field(default_factory=dict)


class Move(TypedDict):
    x: int
    label: NotRequired[str]


class SchemaTest(unittest.TestCase):
    def test_dataclass_schema(self):
        schema = object_schema(Outer)
        self.assertEqual(schema["description"], "An outer thing.")
        self.assertEqual(schema["required"], ["fullName", "inner"])
        self.assertEqual(schema["additionalProperties"], False)
        props = schema["properties"]
        self.assertEqual(props["fullName"], {"type": "string", "description": "The name"})
        self.assertEqual(props["inner"]["required"], ["n"])
        self.assertEqual(props["tags"], {"type": "array", "items": {"type": "string"},
                                         "default": []})
        self.assertEqual(props["color"], {"enum": ["red", "blue"], "default": "red"})
        self.assertEqual(props["nickname"], {"type": ["string", "null"]})
        self.assertEqual(props["mode"], {"enum": ["a", "b"], "default": "a"})
        self.assertEqual(props["extra"]["additionalProperties"], {"type": "integer"})
        # A dataclass without a docstring has no description (not its signature).
        self.assertNotIn("description", object_schema(Inner))

    def test_typeddict_schema(self):
        schema = object_schema(Move)
        self.assertEqual(schema["required"], ["x"])
        self.assertEqual(set(schema["properties"]), {"x", "label"})

    def test_parse(self):
        value = parse(Outer, {"fullName": "Ada", "inner": {"n": 1}, "color": "blue",
                              "tags": ["x"]})
        self.assertEqual(value.full_name, "Ada")
        self.assertEqual(value.inner, Inner(1))
        self.assertIs(value.color, Color.BLUE)
        self.assertEqual(value.tags, ["x"])
        self.assertIsNone(value.nickname)
        self.assertEqual(parse(Move, {"x": 1}), {"x": 1})

    def test_parse_errors_name_the_field(self):
        cases = [
            ({"inner": {"n": 1}}, "missing field `fullName`"),
            ({"fullName": "a", "inner": {"n": "1"}}, "at `inner.n`: expected an integer"),
            ({"fullName": "a", "inner": {"n": 1}, "color": "green"}, "at `color`: unknown variant"),
            ({"fullName": "a", "inner": {"n": 1}, "tags": [1]}, "at `tags[0]`"),
            ({"fullName": "a", "inner": {"n": 1}, "other": 1}, "unknown field `other`"),
            ({"fullName": True, "inner": {"n": 1}}, "at `fullName`: expected a string"),
            ([], "expected an object"),
        ]
        for value, expected in cases:
            with self.assertRaises(InvalidInput) as caught:
                parse(Outer, value, "input of action `x`")
            self.assertIn(expected, caught.exception.message, value)
            self.assertTrue(caught.exception.message.startswith("invalid input of action `x`"))

    def test_booleans_are_not_integers(self):
        with self.assertRaises(InvalidInput):
            parse(Inner, {"n": True})


class ComponentTest(unittest.TestCase):
    def test_manifest_and_validation(self):
        component = Component("demo", "1.0.0", label="Demo")
        component.connection(ConnectionType("api", "api-key", inputs=Inner))

        @component.action("go", branches=["yes", "no"])
        def go(ctx: Context, input: Outer) -> dict:
            """Goes somewhere.

            More words."""
            return {}

        @component.trigger("hook", synchronous_response="required")
        def hook(ctx: Context, request: Request, inputs: NoInput) -> TriggerResponse:
            return TriggerResponse.reject(401, "no")

        @hook.on_deploy
        def deployed(ctx: Context, inputs: NoInput) -> None:
            return None

        @component.data_source("colors", kind="picklist")
        def colors(ctx: Context, input: NoInput) -> list:
            return []

        manifest = component.manifest()
        self.assertEqual(manifest["display"], {"label": "Demo", "description": ""})
        self.assertEqual(manifest["actions"]["go"]["display"]["description"], "Goes somewhere.")
        self.assertEqual(manifest["actions"]["go"]["allowsBranching"], True)
        self.assertEqual(manifest["actions"]["go"]["inputs"]["required"], ["fullName", "inner"])
        self.assertEqual(manifest["triggers"]["hook"]["synchronousResponse"], "required")
        self.assertEqual(manifest["triggers"]["hook"]["hasInstanceHooks"], True)
        self.assertEqual(manifest["triggers"]["hook"]["inputs"], {"type": "object"})
        self.assertEqual(manifest["dataSources"]["colors"]["dataSourceType"], "picklist")
        self.assertEqual(manifest["connections"][0]["inputs"]["required"], ["n"])
        self.assertEqual(component.validate(), [])

        @component.action("go")
        def again(ctx: Context, input: dict) -> dict:
            return {}

        bad = Component("-bad-", " ")
        self.assertEqual(len(bad.validate()), 2)
        self.assertIn("action `go` is declared twice", component.validate())

    def test_host_calls_outside_a_component_say_so(self):
        with self.assertRaises(RuntimeError) as caught:
            Context.__new__(Context).connection("x")
        self.assertIn("only inside a component", str(caught.exception))


class HmacTest(unittest.TestCase):
    def test_github(self):
        # The signature GitHub documents for this secret and body.
        signature = hmac.sign_github("It's a Secret to Everybody", b"Hello, World!")
        self.assertEqual(signature, "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")
        self.assertTrue(hmac.verify_github_signature("It's a Secret to Everybody",
                                                     b"Hello, World!", signature))
        self.assertFalse(hmac.verify_github_signature("other", b"Hello, World!", signature))
        self.assertFalse(hmac.verify_github_signature("s", b"x", None))

    def test_zendesk(self):
        signature = hmac.sign_zendesk("s3cret", "2024-01-01T00:00:00Z", b"{}")
        self.assertTrue(hmac.verify_zendesk_signature("s3cret", "2024-01-01T00:00:00Z", b"{}",
                                                      signature))
        self.assertFalse(hmac.verify_zendesk_signature("s3cret", "2024-01-01T00:00:01Z", b"{}",
                                                       signature))


if __name__ == "__main__":
    unittest.main()
