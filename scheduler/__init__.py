"""Time for Qunfu: clocks, the workday calendar and campaign triggers."""
