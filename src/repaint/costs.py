"""What a request costs in model evaluations, known before any image is read: the plan
printed before sampling, the sidecar's count and the web server's work limit use it."""

from __future__ import annotations

from repaint.request import InpaintRequest
from repaint.sampler import branch_costs
from repaint.samplers import planned_evaluations, walk


def request_costs(request: InpaintRequest) -> tuple[int, int]:
    """(shared, per run) model evaluations of one window; another sampler's backward passes
    through the network count as evaluations too (CoPaint's figure is a lower bound: each cut
    of its step size adds a network call)."""
    if request.sampler != "repaint":
        levels = walk(request.sampler, request.jump_schedule)
        return 0, sum(planned_evaluations(request.sampler, levels))
    return branch_costs(request.jump_schedule, request.branch_jump_schedule, request.branch_at)
