"""Carrying out a plan: keep, fetch, build, check and publish each step, and hand every
outcome's dependencies back to the resolver.

``outcome`` holds the values and ``drive``, the loop between resolver and executor;
``executor`` runs one step (keep, fetch) and resolves build requirements; ``building`` turns a
BUILD step into a checked, published wheel or a failure with its cause; ``dryrun`` is a dry
run's step (dependencies from metadata alone); ``results`` is what a run came to, for reports.
Only ``outcome`` and ``results`` are imported by a run answered from the plan cache, which
never loads the rest.
"""
