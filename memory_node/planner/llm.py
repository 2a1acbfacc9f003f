"""A client for OpenAI-compatible chat-completion servers (llama.cpp, vLLM, Ollama, ...).

Built on the official ``openai`` package (``pip install openai``): the server's base URL, the
model name and the name of the environment variable holding the API key are parameters, so the
same code talks to a local llama.cpp server (``http://127.0.0.1:8080/v1``), vLLM or Ollama
(``http://127.0.0.1:11434/v1``). Nothing reaches a hosted service unless configured to.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any


class LLMError(RuntimeError):
    """The LLM server could not be reached, was too slow, or answered something unusable."""


@dataclass
class ChatCompletionClient:
    """Send chat messages to ``{base_url}/chat/completions`` and return the first choice's text.

    Attributes:
        base_url: e.g. ``http://127.0.0.1:8080/v1``.
        model: model name the server expects.
        api_key_env: environment variable holding a bearer token ('' = none).
        timeout_s: request timeout, seconds (a slow server raises LLMError after it).
        temperature: sampling temperature.
        last_usage: token usage of the last answer (``prompt_tokens``, ``completion_tokens``)
            when the server reports it.
    """

    base_url: str
    model: str = "default"
    api_key_env: str = ""
    timeout_s: float = 60.0
    temperature: float = 0.0
    last_usage: dict[str, int] = field(default_factory=dict)
    _client: Any = field(default=None, repr=False)

    def _openai(self) -> Any:
        if self._client is None:
            try:
                from openai import OpenAI
            except ImportError as exc:  # pragma: no cover - pinned in requirements
                raise LLMError(
                    "the LLM client needs the openai package: pip install openai"
                ) from exc
            key = os.environ.get(self.api_key_env, "") if self.api_key_env else ""
            self._client = OpenAI(
                base_url=self.base_url,
                api_key=key or "not-needed",  # local servers ignore it; the client wants one
                timeout=self.timeout_s,
                max_retries=0,
            )
        return self._client

    def complete(self, messages: list[dict[str, str]], max_tokens: int = 512) -> str:
        """Send ``messages`` and return the reply text; raise LLMError with the reason."""
        import openai

        try:
            response = self._openai().chat.completions.create(
                model=self.model,
                messages=messages,
                temperature=self.temperature,
                max_tokens=max_tokens,
            )
        except openai.APITimeoutError as exc:
            raise LLMError(f"{self.base_url} did not answer within {self.timeout_s} s") from exc
        except openai.APIConnectionError as exc:
            raise LLMError(f"cannot reach {self.base_url}: {exc}") from exc
        except openai.APIStatusError as exc:
            raise LLMError(
                f"{self.base_url} answered HTTP {exc.status_code}: {str(exc.message)[:200]}"
            ) from exc
        except openai.OpenAIError as exc:
            raise LLMError(f"{self.base_url} answered something unusable: {exc}") from exc
        try:
            content = response.choices[0].message.content
        except (AttributeError, IndexError, TypeError) as exc:
            raise LLMError(f"{self.base_url} answered without choices[0].message") from exc
        if content is None:
            raise LLMError(f"{self.base_url} answered an empty message")
        usage = getattr(response, "usage", None)
        self.last_usage = (
            {
                "prompt_tokens": int(usage.prompt_tokens or 0),
                "completion_tokens": int(usage.completion_tokens or 0),
            }
            if usage is not None
            else {}
        )
        return str(content)
