"""Planning: for every target, which pins the closure needs and what each needs done.

``model`` holds the values (Pin, Step, TargetPlan, Plan), ``choose`` decides one pin on one
target, ``resolver`` walks a target's closure with its markers. Nothing here fetches or builds.
"""

from wheelhouse.plan.choose import best_stored, choose, newest_version
from wheelhouse.plan.model import Action, Pin, Plan, Step, TargetPlan
from wheelhouse.plan.resolver import (
    Dependencies,
    Resolver,
    Views,
    dependencies_for,
    requirement_set,
    requires_dist,
)

__all__ = [
    "Action",
    "Dependencies",
    "Pin",
    "Plan",
    "Resolver",
    "Step",
    "TargetPlan",
    "Views",
    "best_stored",
    "choose",
    "dependencies_for",
    "newest_version",
    "requirement_set",
    "requires_dist",
]
