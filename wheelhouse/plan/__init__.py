"""Planning: for every target, which pins the closure needs and what each needs done.

``model`` holds the values (Pin, Step, TargetPlan, Plan), ``choose`` decides one pin on one
target, ``resolver`` walks a target's closure with its markers. Nothing here fetches or builds.
"""
