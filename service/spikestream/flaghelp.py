"""Help texts that several commands' flags share, in a module that imports nothing, so
that ``--help`` loads no more than the command's own parser needs."""

from __future__ import annotations

#: What ``--allow-python-functions`` does (the help of the flag of ``run``, ``import`` and
#: ``serve``, and the description of the ``serve`` setting).
ALLOW_PYTHON_FUNCTIONS_HELP = (
    'let a decoded connection\'s function = "module:attr" import that module and call it: '
    "this runs Python code named in the network file, so use it only with files you trust "
    "(default: refused, and only expressions in x are evaluated)"
)
