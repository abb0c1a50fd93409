"""``python -m tracegen`` runs the CLI."""

from tracegen.cli import main

if __name__ == "__main__":  # pragma: no cover
    main()
