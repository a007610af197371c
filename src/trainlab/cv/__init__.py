"""Cross-validation: `trainlab cv` (command.py) over one fit per fold (run.py)."""
