"""The ``policy_memory`` node: a MemoryVLA-style memory bank served to an action policy.

Services (contract in shared design.md):
  ``~/step``  (memory_interfaces/srv/PolicyMemoryStep): fuse this step's tokens with the bank,
              optionally write them; the episode resets when the timestep goes backwards.
  ``~/reset`` (std_srvs/srv/Trigger): clear the bank (new episode).

Lifecycle: configure builds the bank from the parameters (``dim``, ``capacity``, ``num_heads``,
``checkpoint_path`` ...), activate opens the services to work (before it they answer
``success=false``). With ``autostart`` (default true) the node configures and activates itself.
Concurrency: both services share one mutually-exclusive callback group, so steps never overlap.
"""

from __future__ import annotations

import os
import threading
import traceback

import rclpy
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from std_srvs.srv import Trigger

from memory_interfaces.srv import PolicyMemoryStep
from memory_node.core.config import flatten
from memory_node.core.policy_bank import PolicyBankConfig, PolicyMemory
from memory_node.core.types import InvalidInput
from memory_node.ros.conversions import field_to_tokens, tokens_to_field
from memory_node.ros.environment import use_large_data_profile
from memory_node.ros.lifecycle_guard import refuse_invalid_transitions
from memory_node.ros.params import declare_config, reject_runtime_changes
from memory_node.ros.spin import spin_nodes


class PolicyMemoryNode(LifecycleNode):
    """Thin adapter from the PolicyMemoryStep service to :class:`PolicyMemory`."""

    def __init__(self, node_name: str = "policy_memory", **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        self.declare_parameter(
            "autostart",
            True,
            ParameterDescriptor(description="Configure and activate the node at start-up."),
        )
        self._config = declare_config(self, PolicyBankConfig)
        reject_runtime_changes(self, flatten(PolicyBankConfig()))
        self._lock = threading.Lock()
        self._memory: PolicyMemory | None = None
        self._active = False
        group = MutuallyExclusiveCallbackGroup()
        self.create_service(PolicyMemoryStep, "~/step", self._on_step, callback_group=group)
        self.create_service(Trigger, "~/reset", self._on_reset, callback_group=group)
        refuse_invalid_transitions(self)
        if self.get_parameter("autostart").value:
            self.trigger_configure()
            self.trigger_activate()

    # --- lifecycle ------------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Build the memory bank (loads the checkpoint when one is configured)."""
        try:
            self._memory = PolicyMemory(self._config)
        except Exception as err:
            self.get_logger().error(f"cannot build the policy memory: {err}")
            return TransitionCallbackReturn.FAILURE
        cfg, memory = self._config, self._memory
        self.get_logger().info(
            f"policy memory ready: dim={cfg.dim} capacity={cfg.capacity} "
            f"device={memory.device} dtype={str(memory.dtype).removeprefix('torch.')} "
            f"threads={memory.num_threads} checkpoint={cfg.checkpoint_path or '(random init)'}"
        )
        if (
            memory.device.type == "cpu"
            and memory.num_threads > 1
            and not os.environ.get("OMP_WAIT_POLICY")
        ):
            self.get_logger().warning(
                f"{memory.num_threads} torch threads with OpenMP's spinning wait: on a CPU shared "
                "with other busy processes steps can be several times slower than on one thread; "
                "start the process with OMP_WAIT_POLICY=PASSIVE (or set num_threads: 1)"
            )
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Start answering steps."""
        self._active = True
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop answering steps (the bank is kept)."""
        self._active = False
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Drop the bank."""
        self._memory = None
        return TransitionCallbackReturn.SUCCESS

    # --- services -------------------------------------------------------------------------
    def _on_step(
        self, req: PolicyMemoryStep.Request, res: PolicyMemoryStep.Response
    ) -> PolicyMemoryStep.Response:
        res.success = False
        memory = self._memory
        if not self._active or memory is None:
            res.message = "policy_memory is not active (lifecycle state must be 'active')"
            return res
        n, d = int(req.num_tokens), int(req.dim)
        max_tokens = self._config.max_tokens
        if n == 0 or n > max_tokens:
            res.message = f"num_tokens={n} must be in [1, {max_tokens}]"
        elif d != self._config.dim:
            res.message = f"dim={d} differs from the bank's dim {self._config.dim}"
        elif len(req.perceptual) != n * d:
            res.message = (
                f"len(perceptual)={len(req.perceptual)} != num_tokens * dim = {n} * {d} = {n * d}"
            )
        elif len(req.cognitive) != d:
            res.message = f"len(cognitive)={len(req.cognitive)} != dim={d}"
        if res.message:
            res.bank_size = memory.bank_size
            return res
        perceptual = field_to_tokens(req.perceptual, (n, d))  # views of the request: no copy
        cognitive = field_to_tokens(req.cognitive, (d,))
        with self._lock:
            try:
                out = memory.step(int(req.timestep), perceptual, cognitive, bool(req.write))
            except InvalidInput as err:
                res.message = str(err)
                res.bank_size = memory.bank_size
                return res
            except Exception as err:
                self.get_logger().error(f"step failed: {err}\n{traceback.format_exc()}")
                res.message = f"internal error: {err}"
                res.bank_size = memory.bank_size
                return res
        res.success = True
        res.perceptual_fused = tokens_to_field(out.perceptual_fused)
        res.cognitive_fused = tokens_to_field(out.cognitive_fused)
        res.bank_size = int(out.bank_size)
        return res

    def _on_reset(self, req: Trigger.Request, res: Trigger.Response) -> Trigger.Response:
        memory = self._memory
        if memory is None:
            res.success, res.message = False, "policy_memory is not configured"
            return res
        with self._lock:
            memory.reset()
        res.success, res.message = True, "bank cleared"
        return res


def main(args: list[str] | None = None) -> None:
    """Run the policy_memory node until Ctrl-C."""
    use_large_data_profile()
    rclpy.init(args=args)
    spin_nodes([PolicyMemoryNode()])
