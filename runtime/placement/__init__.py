"""Where and how a bundle runs here: the machine, its profile, the memory budget, one plan.

Target detection and the plan are runtime concerns: an app on a device calls
`Pipeline.load(bundle, device="auto")` and gets them without any other package of ours.
"""

from runtime.placement.plan import Plan, make_plan

__all__ = ["Plan", "make_plan"]
