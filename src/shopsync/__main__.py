"""``python -m shopsync`` runs the command line, like the ``shopsync`` script."""

from shopsync.cli import main

if __name__ == "__main__":
    main()
