"""Planner prompt building and the chat-completion client against a real local HTTP server."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import ClassVar

import numpy as np
import pytest

from memory_node.core.types import ChangeEvent, ChangeKind
from memory_node.planner.llm import ChatCompletionClient, LLMError
from memory_node.planner.prompt import build_prompt, describe_change


def Change(kind, object_id, label, stamp, old_position=(0, 0, 0), new_position=(0, 0, 0), **kw):
    """Return a core change event, built positionally like the planner's former record."""
    return ChangeEvent(
        ChangeKind(kind),
        object_id,
        label,
        stamp,
        np.array(old_position, float),
        np.array(new_position, float),
        **kw,
    )


def test_prompt_holds_scene_changes_and_task_in_order():
    changes = [
        Change(1, "obj_000003", "mug", 12.0, (0.0, 0.0, 0.9), (2.0, 1.0, 0.9)),
        Change(2, "obj_000007", "book", 10.0, old_position=(4.0, 1.0, 0.5)),
        Change(3, "obj_000001", "fridge", 8.0, old_state="closed", new_state="open"),
    ]
    p = build_prompt("bring me the mug", "kitchen: mug [obj_000003] ...", changes, 9, now_s=20.0)
    user = p.messages[1]["content"]
    assert p.messages[0]["role"] == "system" and p.num_changes == 3 and p.scene_tokens == 9
    assert user.index("Long-term") < user.index("Short-term") < user.index("bring me the mug")
    assert "mug [obj_000003] moved from (0.00, 0.00, 0.90) to (2.00, 1.00, 0.90)" in user
    assert "book [obj_000007] disappeared, last seen at (4.00, 1.00, 0.50)" in user
    assert "from 'closed' to 'open'" in user and "(8 s ago)" in user
    assert build_prompt("x", "", [], max_changes=0).messages[1]["content"].count("no recent") == 1
    with pytest.raises(ValueError, match="empty"):
        build_prompt("  ", "", [])


def test_describe_appeared():
    line = describe_change(Change(0, "obj_1", "", 1.0, new_position=(1.0, 2.0, 3.0)))
    assert line == "- t=1.0 s: object [obj_1] appeared at (1.00, 2.00, 3.00)"


class _Handler(BaseHTTPRequestHandler):
    replies: ClassVar[list] = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Handler.replies.append((self.path, body, self.headers.get("Authorization")))
        if body["model"] == "broken":
            self.send_response(500)
            self.end_headers()
            self.wfile.write(b"boom")
            return
        out = {
            "choices": [{"message": {"content": f"1. goto({body['messages'][-1]['content']})"}}]
        }
        if body["model"] == "empty":
            out = {"choices": []}
        data = json.dumps(out).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = HTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()


def test_chat_completion_round_trip(server, monkeypatch):
    monkeypatch.setenv("TEST_LLM_KEY", "secret")
    client = ChatCompletionClient(server, model="tiny", api_key_env="TEST_LLM_KEY")
    assert client.complete([{"role": "user", "content": "kitchen"}]) == "1. goto(kitchen)"
    path, body, auth = _Handler.replies[-1]
    assert path == "/v1/chat/completions" and body["model"] == "tiny" and auth == "Bearer secret"


@pytest.mark.parametrize("model, match", [("broken", "HTTP 500"), ("empty", "choices")])
def test_chat_completion_errors_are_clear(server, model, match):
    with pytest.raises(LLMError, match=match):
        ChatCompletionClient(server, model=model).complete([{"role": "user", "content": "x"}])


def test_unreachable_server_is_a_clear_error():
    with pytest.raises(LLMError, match="cannot reach"):
        ChatCompletionClient("http://127.0.0.1:9/v1", timeout_s=2).complete([])
