import sys

from facelive.cli import main

sys.exit(main())
