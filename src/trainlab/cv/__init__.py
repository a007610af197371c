"""Cross-validation: `trainlab cv` (command.py) over one fit per fold (run.py); the folds' results added up and
written (results.py)."""
