"""Ask the memory, build the planner prompt, and (optionally) ask an LLM for a plan.

Command line::

    source env.sh
    python -m memory_node.planner.client "bring me the mug" --max-tokens 600        # prompt only
    python -m memory_node.planner.client "bring me the mug" --llm-url http://127.0.0.1:8080/v1
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from memory_node.planner.llm import ChatCompletionClient
from memory_node.planner.prompt import PlannerPrompt, build_prompt
from memory_node.ros.client import MemoryClient
from memory_node.ros.conversions import msg_to_change, time_to_sec


@dataclass
class PlanResult:
    """The prompt sent and the LLM's reply ('' when no LLM was configured)."""

    prompt: PlannerPrompt
    reply: str = ""


def fetch_prompt(
    memory: MemoryClient, task: str, max_tokens: int = 800, since_s: float = 0.0
) -> PlannerPrompt:
    """Query scene_memory for the task's subgraph and the recent changes; build the prompt."""
    graph = memory.scene_graph(focus=task, max_tokens=max_tokens)
    if not graph.success:
        raise RuntimeError(f"get_scene_graph failed: {graph.message}")
    res = memory.changes(since_s=since_s)
    if not res.success:
        raise RuntimeError(f"get_changes failed: {res.message}")
    changes = [msg_to_change(c) for c in res.changes]
    now = time_to_sec(graph.graph.header.stamp)
    return build_prompt(task, graph.text, changes, int(graph.token_count), now_s=now or None)


def plan(
    memory: MemoryClient, task: str, llm: ChatCompletionClient | None, max_tokens: int = 800
) -> PlanResult:
    """Build the memory-augmented prompt and, when ``llm`` is given, ask it for a plan."""
    prompt = fetch_prompt(memory, task, max_tokens)
    reply = llm.complete(prompt.messages) if llm is not None else ""
    return PlanResult(prompt=prompt, reply=reply)


def main() -> None:
    """Command-line entry: print the prompt and, with --llm-url, the plan."""
    import rclpy

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("task", help="instruction, e.g. 'bring me the mug'")
    parser.add_argument("--namespace", default="")
    parser.add_argument("--max-tokens", type=int, default=800, help="scene-graph token budget")
    parser.add_argument("--llm-url", default="", help="OpenAI-compatible base URL ('' = none)")
    parser.add_argument("--model", default="default")
    parser.add_argument("--api-key-env", default="", help="env variable holding an API key")
    args = parser.parse_args()
    rclpy.init()
    memory = MemoryClient(args.namespace, node_name="planner_client")
    try:
        llm = (
            ChatCompletionClient(args.llm_url, args.model, args.api_key_env)
            if args.llm_url
            else None
        )
        result = plan(memory, args.task, llm, args.max_tokens)
        for message in result.prompt.messages:
            print(f"--- {message['role']} ---\n{message['content']}\n")
        if result.reply:
            print(f"--- plan ---\n{result.reply}")
    finally:
        memory.close()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
