#!/usr/bin/env python3
"""Compatibility shim for `attnmap-export` (`python3 -m attnmap_tools.export`); see docs/export.md."""
import sys

from attnmap_tools.export.exporter import main

if __name__ == "__main__":
    sys.exit(main())
