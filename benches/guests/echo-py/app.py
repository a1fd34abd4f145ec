"""The side-by-side suite's job as a Python guest: write one log line, return the input
(benches/run.sh, contender sluice-py)."""

import json

from sluice_sdk import Component, Context

component = Component("echo-py", "0.1.0", label="Echo",
                      description="Returns its input after one log line (benchmark job).")


@component.action("echo", label="Echo", description="Returns the input.")
def echo(ctx: Context, input: dict) -> dict:
    ctx.log.info("echo", fields={"bytes": len(json.dumps(input))})
    return input
