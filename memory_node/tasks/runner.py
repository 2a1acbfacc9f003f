"""One house of the task suite, run in a worker process (see :mod:`memory_node.tasks`)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import Any

from memory_node.tasks.agent import Agent, Outcome
from memory_node.tasks.score import score


def make_planner(args: argparse.Namespace) -> Any:
    """Return the rule-based planner, or the LLM planner (rules as fallback) with --llm-url."""
    from memory_node.planner.plan import LLMPlanner, RuleBasedPlanner

    rules = RuleBasedPlanner()
    if not args.llm_url:
        return rules
    from memory_node.planner.llm import ChatCompletionClient

    client = ChatCompletionClient(args.llm_url, args.model, args.api_key_env, args.llm_timeout_s)
    return LLMPlanner(client, fallback=rules)


def outcome_record(o: Outcome) -> dict[str, Any]:
    """Return a JSON-serialisable record of an outcome (found objects by label)."""
    d = dataclasses.asdict(o)
    d["found"] = sorted(o.found)
    return d


def run_seed(seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """Build one scenario, run every variant on its tasks, measure prompt retrieval.

    Seeds in ``args.small_house_seeds`` (a set; absent = none) are played in the Gazebo small
    house, the others in procedural houses.
    """
    from memory_node.tasks.relations_eval import support_metrics
    from memory_node.tasks.retrieval_eval import measure
    from memory_node.tasks.suite import build_scenario, fresh_memory, task_memory_config

    t0 = time.perf_counter()
    house_kind = "small_house" if seed in getattr(args, "small_house_seeds", ()) else "procedural"
    scenario = build_scenario(
        seed, memory_config=task_memory_config(args.features), house_kind=house_kind
    )
    build_s = time.perf_counter() - t0
    planner = make_planner(args)
    outcomes = []
    try:
        for variant in args.variants:
            agent = Agent(scenario, variant, planner=planner)
            for task in scenario.tasks:
                outcomes.append(outcome_record(score(task, agent.run(task), scenario.world)))
        retrieval = []
        memory = fresh_memory(scenario, "full")
        for task in scenario.tasks:
            retrieval.append(measure(task, memory, scenario.world))
        support = support_metrics(
            scenario.world.sim.objects(), list(memory.objects.values()), memory.relations
        )
        tasks = [dataclasses.asdict(t) | {"changed": t.changed} for t in scenario.tasks]
    finally:
        scenario.world.close()
    logging.getLogger(__name__).info("seed %d done in %.0f s", seed, time.perf_counter() - t0)
    return {
        "seed": seed,
        "house": house_kind,
        "build_s": build_s,
        "rooms_on_return": scenario.rooms_on_return,
        "tasks": tasks,
        "outcomes": outcomes,
        "retrieval": retrieval,
        "support": support,
    }


def seed_file(args: argparse.Namespace, seed: int) -> Path:
    """Return where the result of house ``seed`` is kept."""
    return Path(args.output + ".d") / f"{seed}.json"


def worker(job: tuple[int, argparse.Namespace]) -> dict[str, Any]:
    """Run (or take from the cache with ``--reuse``) one house; return its result."""
    seed, args = job
    cached = seed_file(args, seed)
    if args.reuse and cached.is_file():
        return dict(json.loads(cached.read_text()))
    result = run_seed(seed, args)
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_text(json.dumps(result, default=float))
    return result
