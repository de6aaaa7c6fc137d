"""Schema migrations, ``NNNN_name.py`` each with ``up(db)``; applied by models.migrate."""
