import sys

from fleetdeck.tui.cli import main

sys.exit(main())
