"""Plans: parsing, refusals, the rule-based planner, and the LLM planner.

The LLM planner talks to a local chat-completions server (http.server on 127.0.0.1) that
records what it receives.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import numpy as np
import pytest

from memory_node.core.types import SceneObject
from memory_node.planner.llm import ChatCompletionClient, LLMError
from memory_node.planner.plan import (
    LLMPlanner,
    PlanContext,
    PlanError,
    RuleBasedPlanner,
    parse_plan,
)


def _obj(oid, label, x, state="", present=True, last_seen=1.0):
    return SceneObject(
        oid,
        label,
        center=np.array([x, 0.0, 0.5]),
        size=np.full(3, 0.2),
        state=state,
        present=present,
        last_seen=last_seen,
    )


def _ctx(**kw):
    objects = {
        o.id: o
        for o in (
            _obj("obj_000001", "mug", 1.0, last_seen=5.0),
            _obj("obj_000002", "mug", 3.0, last_seen=9.0),
            _obj("obj_000003", "fridge", 2.0, state="open"),
        )
    }
    base = dict(
        task="go to the mug",
        kind="go_to",
        label="mug",
        objects=objects,
        rooms=["kitchen", "bedroom"],
    )
    base.update(kw)
    return PlanContext(**base)


def test_unknown_ids_actions_and_rooms_are_refused_step_by_step():
    reply = json.dumps(
        {
            "steps": [
                {"action": "goto", "target": "obj_000002"},
                {"action": "goto", "target": "obj_999999"},
                {"action": "fly", "target": "obj_000001"},
                {"action": "look", "target": "garage"},
                {"action": "search", "target": "mug"},
                "pick the mug",
            ]
        }
    )
    plan = parse_plan(f"Here is the plan:\n```json\n{reply}\n```", _ctx())
    assert [(s.action, s.target) for s in plan.steps] == [
        ("goto", "obj_000002"),
        ("search", "mug"),
    ]
    reasons = [r.reason for r in plan.refused]
    assert [r.index for r in plan.refused] == [1, 2, 3, 5]
    assert "obj_999999" in reasons[0] and "fly" in reasons[1] and "garage" in reasons[2]


@pytest.mark.parametrize("text", ["goto the mug", '{"steps": [{"action": "goto",', '{"plan": 3}'])
def test_malformed_replies_are_clear_errors(text):
    with pytest.raises(PlanError):
        parse_plan(text, _ctx())


def test_rule_based_plans_follow_the_memory():
    rules = RuleBasedPlanner()
    plan = rules.plan(_ctx())
    # the mug seen last first, then the other one, then a search
    assert [(s.action, s.target) for s in plan.steps] == [
        ("goto", "obj_000002"),
        ("goto", "obj_000001"),
        ("search", "mug"),
    ]
    assert rules.plan(_ctx(kind="is_open", label="fridge")).steps[0].text == "open"
    nothing = rules.plan(_ctx(objects={}, kind="go_to", label="giraffe"))
    assert [(s.action, s.target) for s in nothing.steps] == [("search", "giraffe")]
    stale = rules.plan(
        _ctx(kind="what_changed", room="kitchen", since_s=10.0, room_last_seen={"kitchen": 4.0})
    )
    fresh = rules.plan(
        _ctx(kind="what_changed", room="kitchen", since_s=10.0, room_last_seen={"kitchen": 12.0})
    )
    assert [s.action for s in stale.steps] == ["look", "report_changes"]
    assert [s.action for s in fresh.steps] == ["report_changes"]


class _Server(BaseHTTPRequestHandler):
    received: ClassVar[list] = []
    reply: ClassVar[str] = ""
    delay_s: ClassVar[float] = 0.0

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Server.received.append((self.path, body, self.headers.get("Authorization")))
        time.sleep(_Server.delay_s)
        out = {
            "id": "cmpl-1",
            "object": "chat.completion",
            "created": 0,
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": _Server.reply},
                }
            ],
            "usage": {"prompt_tokens": 123, "completion_tokens": 7, "total_tokens": 130},
        }
        data = json.dumps(out).encode()
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    _Server.received.clear()
    _Server.delay_s = 0.0
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Server)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()


def _messages():
    return [
        {"role": "system", "content": "You plan."},
        {
            "role": "user",
            "content": "## Long-term memory\n- obj_000002 mug at (3.00, 0.00, "
            "0.50)\n\n## Task\ngo to the mug",
        },
    ]


def test_llm_planner_sends_the_memory_prompt_and_parses_the_plan(server, monkeypatch):
    monkeypatch.setenv("MY_LLM_KEY", "s3cret")
    _Server.reply = (
        '{"steps": [{"action": "goto", "target": "obj_000002"}, '
        '{"action": "goto", "target": "obj_000042"}]}'
    )
    client = ChatCompletionClient(server, model="tiny-planner", api_key_env="MY_LLM_KEY")
    plan = LLMPlanner(client).plan(_ctx(messages=_messages()))
    assert plan.source == "llm" and [s.target for s in plan.steps] == ["obj_000002"]
    assert plan.refused[0].index == 1 and "obj_000042" in plan.refused[0].reason
    path, body, auth = _Server.received[-1]
    assert path == "/v1/chat/completions" and auth == "Bearer s3cret"
    assert body["model"] == "tiny-planner" and body["temperature"] == 0.0
    user = body["messages"][-1]["content"]
    assert "obj_000002 mug at (3.00, 0.00, 0.50)" in user and "go to the mug" in user
    assert '"steps"' in user  # the JSON plan format is asked for
    assert client.last_usage == {"prompt_tokens": 123, "completion_tokens": 7}


def test_malformed_json_falls_back_to_the_rules_with_the_reason(server):
    _Server.reply = "Sure! First goto(obj_000002) then search"
    client = ChatCompletionClient(server, model="m")
    with pytest.raises(PlanError, match="no JSON"):
        LLMPlanner(client).plan(_ctx(messages=_messages()))
    plan = LLMPlanner(client, fallback=RuleBasedPlanner()).plan(_ctx(messages=_messages()))
    assert plan.source == "llm->rules" and "no JSON" in plan.error
    assert plan.steps[0].target == "obj_000002"


def test_slow_and_unreachable_servers_are_clear_errors(server):
    _Server.delay_s = 1.5
    _Server.reply = '{"steps": []}'
    slow = ChatCompletionClient(server, model="m", timeout_s=0.3)
    with pytest.raises(LLMError, match=r"did not answer within 0\.3 s"):
        LLMPlanner(slow).plan(_ctx(messages=_messages()))
    down = ChatCompletionClient("http://127.0.0.1:9/v1", model="m", timeout_s=1.0)
    plan = LLMPlanner(down, fallback=RuleBasedPlanner()).plan(_ctx())
    assert plan.source == "llm->rules" and "cannot reach" in plan.error and plan.steps
