"""`demographics report`: stratified tables (tables.py, SQL), small-cell suppression (model.py, suppression.py),
published files (publish.py), pages (page.py, charts.py, templates/) and the command (command.py, build.py).

Importing the package imports nothing heavy: the command loads DuckDB, SciPy and the chart renderer when it runs.
"""
