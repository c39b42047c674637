"""Test support for ooc-bench and its users' tests: fault injection for the resilience tests. Production code never imports this package."""
