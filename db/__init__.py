"""Storage for Qunfu: SQLModel tables, engine set-up, repositories, migrations."""
