"""What a person reads during and after ``wheelhouse build``.

``plain``: one line per event and a summary per target (pipes, CI logs, tests); ``live``: the
same events on a terminal with a footer redrawn in place; ``model``: a finished run as one
value; ``table``: its summary table for a terminal; ``files``: it as JSON, Markdown or JUnit.
"""
