"""`python -m sluice_sdk` is `python -m sluice_sdk.build`."""

import sys

from .build import main

sys.exit(main())
