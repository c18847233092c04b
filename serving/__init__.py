"""tiecast.serving: serving the registered model (MLflow scoring server) and explanation reports.

Built on :mod:`tiecast.training`; nothing here yet is public: the command line lives in :mod:`tiecast.cli`.
"""

__all__: list[str] = []
