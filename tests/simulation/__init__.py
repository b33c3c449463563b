"""Customers with a buying model, and the simulated clock with known true effects."""
