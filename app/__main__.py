"""`python -m app` (what `make run` runs): start the desktop memory browser."""
if __name__ == "__main__":  # not when the store's owner process (spawned) imports this module
    from app.gui.application import main

    raise SystemExit(main())
