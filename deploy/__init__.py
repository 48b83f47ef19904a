"""Production launch of HER2/ER Explorer: `python -m deploy.serve` (see deploy/README.md)."""
