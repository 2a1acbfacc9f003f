"""A minimal client for OpenAI-compatible chat-completion servers (llama.cpp, vLLM, Ollama...).

Standard library only (urllib). The server address and model are the user's; nothing here
reaches a hosted service unless configured to.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass


class LLMError(RuntimeError):
    """The LLM server could not be reached or answered something unusable."""


@dataclass
class ChatCompletionClient:
    """POST ``{base_url}/chat/completions`` and return the first choice's text.

    Attributes:
        base_url: e.g. ``http://127.0.0.1:8080/v1``.
        model: model name the server expects.
        api_key_env: environment variable holding a bearer token ('' = none).
        timeout_s: request timeout, seconds.
        temperature: sampling temperature.
    """

    base_url: str
    model: str = "default"
    api_key_env: str = ""
    timeout_s: float = 60.0
    temperature: float = 0.0

    def complete(self, messages: list[dict[str, str]], max_tokens: int = 512) -> str:
        """Send ``messages`` and return the reply text; raise LLMError with the reason."""
        body = json.dumps(
            {
                "model": self.model,
                "messages": messages,
                "temperature": self.temperature,
                "max_tokens": max_tokens,
            }
        ).encode()
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env, "") if self.api_key_env else ""
        if key:
            headers["Authorization"] = f"Bearer {key}"
        url = self.base_url.rstrip("/") + "/chat/completions"
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                payload = json.loads(response.read().decode())
        except urllib.error.HTTPError as err:
            raise LLMError(f"{url} answered HTTP {err.code}: {err.read()[:200]!r}") from err
        except (urllib.error.URLError, TimeoutError, OSError) as err:
            raise LLMError(f"cannot reach {url}: {err}") from err
        except json.JSONDecodeError as err:
            raise LLMError(f"{url} answered something that is not JSON: {err}") from err
        try:
            return str(payload["choices"][0]["message"]["content"])
        except (KeyError, IndexError, TypeError) as err:
            raise LLMError(f"{url} answered without choices[0].message.content") from err
