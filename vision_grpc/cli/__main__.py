"""``python -m vision_grpc.cli``: the same as the ``vision-grpc`` command."""

from __future__ import annotations

import sys

from vision_grpc.cli import main

sys.exit(main())
