"""`python -m app` (what `make run` runs): start the desktop memory browser."""
from app.gui.application import main

raise SystemExit(main())
