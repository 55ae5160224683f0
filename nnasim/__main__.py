import sys

from nnasim.cli import main

sys.exit(main())
