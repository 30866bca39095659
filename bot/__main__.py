"""``python -m bot`` is the same as ``qunfu``."""

from bot.cli import main

main()
