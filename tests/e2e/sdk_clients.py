"""The official client SDKs (openai chat and responses, anthropic, google-genai) pointed at a gateway, each
asked the same way for a plain and a streamed answer's text."""

from __future__ import annotations

from typing import Any

import anthropic
import openai
from google import genai
from google.genai import types as genai_types

from tests.e2e.harness import Gateway

PLACEHOLDER = "placeholder"
KINDS = ("openai", "anthropic", "gemini", "responses")


def openai_sdk(gateway: Gateway, key: str = PLACEHOLDER) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.v1, api_key=key, max_retries=0)


def anthropic_sdk(gateway: Gateway, key: str = PLACEHOLDER) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.base_url, api_key=key, max_retries=0)


def gemini_sdk(gateway: Gateway, key: str = PLACEHOLDER) -> genai.Client:
    return genai.Client(
        api_key=key, http_options=genai_types.HttpOptions(base_url=gateway.base_url, api_version="v1beta")
    )


class SdkClient:
    """`kind`: openai (chat), responses, anthropic or gemini. `extra` goes into a Responses request (e.g.
    `reasoning`); the other kinds take none."""

    def __init__(self, kind: str, gateway: Gateway, key: str = PLACEHOLDER) -> None:
        self.kind = kind
        if kind in ("openai", "responses"):
            self.sdk: Any = openai_sdk(gateway, key)
        elif kind == "anthropic":
            self.sdk = anthropic_sdk(gateway, key)
        else:
            self.sdk = gemini_sdk(gateway, key)

    def close(self) -> None:
        self.sdk.close()

    def text(self, model: str, prompt: str, **extra: Any) -> str:
        if self.kind == "responses":
            return str(self.sdk.responses.create(model=model, input=prompt, **extra).output_text)
        if self.kind == "openai":
            r = self.sdk.chat.completions.create(model=model, messages=[{"role": "user", "content": prompt}])
            return str(r.choices[0].message.content)
        if self.kind == "anthropic":
            m = self.sdk.messages.create(model=model, max_tokens=256, messages=[{"role": "user", "content": prompt}])
            return "".join(b.text for b in m.content if b.type == "text")
        return str(self.sdk.models.generate_content(model=model, contents=prompt).text)

    def stream_text(self, model: str, prompt: str, **extra: Any) -> str:
        if self.kind == "responses":
            with self.sdk.responses.stream(model=model, input=prompt, **extra) as s:
                return str(s.get_final_response().output_text)
        if self.kind == "openai":
            with self.sdk.chat.completions.stream(model=model, messages=[{"role": "user", "content": prompt}]) as s:
                return str(s.get_final_completion().choices[0].message.content)
        if self.kind == "anthropic":
            with self.sdk.messages.stream(
                model=model, max_tokens=256, messages=[{"role": "user", "content": prompt}]
            ) as s:
                return "".join(s.text_stream)
        chunks = self.sdk.models.generate_content_stream(model=model, contents=prompt)
        return "".join(c.text or "" for c in chunks)
