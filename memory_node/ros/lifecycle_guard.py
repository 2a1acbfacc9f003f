"""Invalid lifecycle transition requests are refused, never raised out of the executor.

rclpy's ``LifecycleNode`` answers ``~/change_state`` by triggering the transition in the state
machine; a transition not valid in the current state (activate while active, deactivate while
inactive, an unknown id) raises ``RCLError: Transition is not registered`` inside the service
callback, which escapes ``executor.spin()`` and ends the process. Lifecycle managers send such
requests. :func:`refuse_invalid_transitions` wraps the node's ``change_state`` service so that
they answer ``success=false`` with a warning, the state unchanged.
"""

from __future__ import annotations

from typing import Any

from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.lifecycle import LifecycleNode


def refuse_invalid_transitions(node: LifecycleNode) -> None:
    """Make ``node``'s ``~/change_state`` answer success=false to invalid transitions."""
    for service in node.services:
        if not service.srv_name.endswith("/change_state"):
            continue
        inner = service.callback

        def guarded(request: Any, response: Any, inner: Any = inner) -> Any:
            try:
                return inner(request, response)
            except _rclpy.RCLError as err:
                state = node._state_machine.current_state[1]
                t = request.transition
                node.get_logger().warning(
                    f"refused lifecycle transition id={t.id} label={t.label!r} in state "
                    f"{state!r}: {str(err).splitlines()[0]}"
                )
                response.success = False
                return response

        service.callback = guarded
