"""What a person reads during and after ``wheelhouse build``.

``plain``: one line per event and a summary per target (pipes, CI logs, tests); ``live``: the
same events on a terminal with a footer redrawn in place; ``model``: a finished run as one
value; ``table``: its summary table for a terminal; ``files``: it as JSON, Markdown or JUnit.
"""

from wheelhouse.report.live import LiveProgress, Terminal
from wheelhouse.report.plain import PlainProgress, plural, print_failures, print_summary

__all__ = ["LiveProgress", "PlainProgress", "Terminal", "plural", "print_failures",
           "print_summary"]
