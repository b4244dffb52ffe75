"""`python3 -m attnmap_tools.export`: the same as the `attnmap-export` console script."""
import sys

from attnmap_tools.export.exporter import main

sys.exit(main())
