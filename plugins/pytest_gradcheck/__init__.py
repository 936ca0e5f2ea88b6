"""pytest-gradcheck: ``pytest --gradcheck`` turns registered gradcheck-kit cases into test items.

This package imports only pytest and the standard library; gradcheck-kit (and so torch)
is imported when ``--gradcheck`` is given or the ``gradcheck`` fixture is used.
"""
