"""Writes churn.csv: 800 made-up customers of a subscription service, to show trainlab on a CSV file.

Numbers (age, monthly_spend, tenure_months, support_calls) with some values missing, text categories
(plan, region) and a text target (churned: yes or no). Run: python examples/data/make_churn.py"""

import csv
from pathlib import Path

import numpy as np

rng = np.random.default_rng(7)
n = 800
age = rng.integers(18, 80, n)
plan = rng.choice(["basic", "plus", "pro"], n, p=[0.5, 0.3, 0.2])
region = rng.choice(["north", "south", "east", "west"], n)
tenure = rng.integers(1, 72, n)
spend = np.round(np.select([plan == "basic", plan == "plus"], [10.0, 25.0], 45.0) + rng.normal(0, 4, n), 2)
calls = rng.poisson(1.5, n)
risk = 1.2 * calls - 0.05 * tenure + 0.8 * (plan == "basic") - 0.01 * (age - 40) + rng.normal(0, 1, n)
churned = np.where(risk > np.quantile(risk, 0.7), "yes", "no")

rows = []
for i in range(n):
    row = [int(age[i]), float(spend[i]), int(tenure[i]), int(calls[i]), plan[i], region[i], churned[i]]
    if rng.random() < 0.03:
        row[1] = ""  # a missing monthly spend
    if rng.random() < 0.02:
        row[5] = ""  # a missing region
    rows.append(row)
with open(Path(__file__).with_name("churn.csv"), "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["age", "monthly_spend", "tenure_months", "support_calls", "plan", "region", "churned"])
    writer.writerows(rows)
