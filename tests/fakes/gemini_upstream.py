"""A fake Google Gemini API (generativelanguage, v1beta) upstream that speaks the real wire format over real HTTP.

The sibling of `openai_upstream` and `anthropic_upstream` for the gateway's Gemini provider: it answers
`models/{model}:generateContent` with a `GenerateContentResponse`, streams `streamGenerateContent` as Gemini does
(SSE `data:` frames with CRLF line ends and no `[DONE]` under `?alt=sse`, else one pretty-printed JSON array),
rejects requests the way the real API does (API key, unknown models, body shape, function-call turn order, missing
thought signatures on Gemini 3) with Google's error envelope `{"error": {"code", "message", "status", "details"}}`,
and misbehaves on demand. It is deliberately dumb and deterministic: the reply is always
`"Hello from fake-gemini: " + <last user text>`, token counts are word counts, function-call arguments are derived
from the declaration's schema, and thought signatures are checkable hashes of the thought.

Endpoints (`{v}` is v1beta or v1, `{m}` a model id)
    POST   /{v}/models/{m}:generateContent            the fake model
    POST   /{v}/models/{m}:streamGenerateContent      streamed; `?alt=sse` for SSE, else a JSON array
    POST   /{v}/models/{m}:countTokens                `{"totalTokens": N}`, N = usageMetadata.promptTokenCount
    GET    /{v}/models                                model list (`pageSize`, `pageToken`); GET /{v}/models/{m}
    GET    /_fake/requests                            every recorded /{v} request (DELETE clears them)
    GET    /_fake/script                              pending scripted directives; POST appends, DELETE clears
    GET    /_fake/health                              readiness probe for out-of-process users

Wire facts, by source (the tests check each one):
    From Google's documentation (ai.google.dev API reference, troubleshooting, function-calling and
    thought-signatures guides):
    - Auth by the `x-goog-api-key` header (`?key=` is accepted too). Errors are `{"error": {"code", "message",
      "status"}}` with the google.rpc code name: 400 INVALID_ARGUMENT, 403 PERMISSION_DENIED, 404 NOT_FOUND,
      429 RESOURCE_EXHAUSTED, 500 INTERNAL, 503 UNAVAILABLE.
    - `usageMetadata` {promptTokenCount, candidatesTokenCount, totalTokenCount, promptTokensDetails,
      thoughtsTokenCount}, `modelVersion`, `responseId`; `thought: true` parts with `includeThoughts`.
    - Gemini 3 "always returns a unique id with every functionCall" (to be echoed on the functionResponse); Gemini
      2.x sends none (see `gives_call_ids`). Function calls end with finishReason STOP.
    - The thoughtSignature rides on the first functionCall part of a step (only the first of parallel calls), else
      on a text part; Gemini 3 answers 400 when a current-turn call comes back without it (see
      `check_thought_signatures`), and accepts the documented dummy signatures.
    From recorded real traffic quoted in public bug reports:
    - A wrong key is 400 INVALID_ARGUMENT "API key not valid. Please pass a valid API key." with an `ErrorInfo`
      detail of reason API_KEY_INVALID (not 401); no key at all is 403 PERMISSION_DENIED "Method doesn't allow
      unregistered callers ...".
    - A 429 carries `QuotaFailure`, `Help` and `RetryInfo{retryDelay}` details and no Retry-After header.
    - SSE frames are `data: <json>\\r\\n\\r\\n` (CRLF line ends, no `[DONE]`) in Google's `": "`-but-`","` spacing;
      every chunk is a whole GenerateContentResponse with `modelVersion`, `responseId` and a `usageMetadata` whose
      candidate count appears only on the last chunk (which has the finishReason); stream candidates have no
      `index`, a non-streamed one does; bodies and errors are pretty-printed; thought tokens count against
      `maxOutputTokens` (an exhausted budget gives MAX_TOKENS and a candidate without parts); a streamed signature
      with no answer text to ride on comes on a final empty text part; the messages for a part without data,
      for empty contents, for a bad role and for function-call turn order.

Choices of the fake (not claims about the real API):
    - The other validation messages are modelled on the API's styles (`* GenerateContentRequest.<field>: ...`,
      `Invalid value at '<field>' (<type>), <value>`, `Unknown name "<x>" at '<field>': Cannot find field.`).
    - The JSON-array stream (no `alt=sse`) sends `[`, the pretty-printed chunks joined by `\\n,\\r\\n`, then `]`;
      its errors are wrapped in a one-element array (as seen on Vertex AI). Only SSE is used by the SDK.
    - Which models think: Gemini 3 (always, it cannot be turned off) and any model whose request asks for it
      (`includeThoughts`, a non-zero `thinkingBudget`, or a `thinkingLevel`); a 2.5 model without a
      thinkingConfig answers without thinking, to keep the default reply minimal (the real 2.5 Flash thinks by
      default). `thinkingBudget: 0` on a "pro" model is a 400.
    - A thinking model always signs: the first functionCall, else the answer's first text part (first chunk when
      streaming), else its last part.
    - Tool rule (as in the OpenAI fake): with functionDeclarations and mode AUTO/ANY/VALIDATED the model calls the
      first declared function (ANY: the first allowed one), the first two when the first user text says "parallel";
      NONE answers text; a last user turn holding functionResponse parts is answered "Tool said: <r1> | <r2>", where
      r is `response.result` / `response.output` (or "Error: " + `response.error`), else the response's JSON.
    - Stream chunking is one word per text chunk, so relays see many frames; all calls of a step come in one chunk.
      Function-call ids are 8 random lowercase letters and digits. `candidateCount` is ignored (one candidate).
    - Both v1beta and v1 are served (the google-genai SDK defaults to v1).

Fault injection by model name (the OpenAI fake's names, see `openai_upstream.parse_fault`)
    error-<status>   answer <status> in Google's envelope (429 with retry details)
    slow-<ms>, ttfb-<ms>, drip-<ms>   as in the OpenAI fake
    stall-<ms>       send the first chunk (SSE frame, or `[` and the first element of the JSON array), stay silent
                     <ms>, then finish normally (non-stream: half the body, the pause, the rest)
    cut-stream       stream the first two chunks, then drop the connection (non-stream: half the body, then drop)
    cut-before-body  send the 200 status line and headers, then drop the connection before any body byte
    hang             send nothing at all until the client goes away
Fault-named models are always accepted; any other model outside `models` is 404 NOT_FOUND.

Scripted directives: exactly the OpenAI fake's (`openai_upstream.Directive`), consumed one per generate request:
    {"status": 503, "headers": {...}, "body": ...}   canned response (no body: Google's envelope for the status)
    {"delay_ms": 200}                                 wait, then answer normally
    {"fault": "<any model-name fault above>"}         e.g. "cut-stream", "cut-before-body", "hang"
    {"fault": "stall-after-first", "stall_ms": 500}   the same as the fault `stall-500`
A canned 4xx/5xx without a body gets Google's envelope; a canned str body is sent verbatim.

Run standalone:
    python -m tests.fakes.gemini_upstream --port 8091 [--host 127.0.0.1] [--api-key KEY] [--no-record]
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import json
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fakes.control import fake_app, run_standalone

from .openai_upstream import (
    Directive,
    FakeUpstreamState,
    Fault,
    RecordedRequest,
    example_for_schema,
    paced_json,
    paced_response,
    pacing_for,
    parse_fault,
)

JSONObject = dict[str, Any]

REPLY_PREFIX: Final = "Hello from fake-gemini: "
TOOL_REPLY_PREFIX: Final = "Tool said: "
THOUGHT_PREFIX: Final = "Thinking about: "
API_VERSIONS: Final[tuple[str, ...]] = ("v1beta", "v1")
DEFAULT_MODELS: Final[tuple[str, ...]] = (
    "gemini-2.5-flash",
    "gemini-2.5-pro",
    "gemini-2.5-flash-lite",
    "gemini-3-flash-preview",
    "gemini-3-pro-preview",
    "fake-model",
)
# Charged per content on top of its words, as in the other fakes.
TOKENS_PER_CONTENT: Final = 3
# The chunks a cut stream sends before dropping the connection.
CHUNKS_BEFORE_CUT: Final = 2
# Documented by Google for replaying calls whose signature was lost (e.g. history from another model).
DUMMY_SIGNATURES: Final = frozenset({"context_engineering_is_the_way_to_go", "skip_thought_signature_validator"})
FUNCTION_CALLING_MODES: Final = ("MODE_UNSPECIFIED", "AUTO", "ANY", "NONE", "VALIDATED")
THINKING_LEVELS: Final = ("THINKING_LEVEL_UNSPECIFIED", "MINIMAL", "LOW", "MEDIUM", "HIGH")
MAX_STOP_SEQUENCES: Final = 5
DEFAULT_PAGE_SIZE: Final = 50

_JSON_CONTENT_TYPE: Final = "application/json; charset=UTF-8"
_SSE_CONTENT_TYPE: Final = "text/event-stream"
_WORD_PIECES: Final = re.compile(r"\S+\s*|\s+")
_PARALLEL_WORD: Final = re.compile(r"\bparallel\b", re.IGNORECASE)
_MAJOR_VERSION: Final = re.compile(r"^gemini-(\d+)")
_FUNCTION_NAME: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$")
_SNAKE_BOUNDARY: Final = re.compile(r"_([a-z])")
_CAMEL_BOUNDARY: Final = re.compile(r"([A-Z])")
_ID_ALPHABET: Final = "abcdefghijklmnopqrstuvwxyz0123456789"
_RESPONSE_ID_ALPHABET: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_SIGNATURE_MAGIC: Final = b"fake-gemini-sig:"
_SIGNATURE_DOCS: Final = "https://ai.google.dev/gemini-api/docs/thought-signatures"
_RATE_LIMIT_DOCS: Final = "https://ai.google.dev/gemini-api/docs/rate-limits"

# Known fields (lowerCamelCase; the snake_case spelling is accepted as well, as Google's JSON mapping does).
_REQUEST_FIELDS: Final = frozenset(
    {
        "model",
        "contents",
        "tools",
        "toolConfig",
        "safetySettings",
        "systemInstruction",
        "generationConfig",
        "cachedContent",
        "serviceTier",
        "store",
    }
)
_CONTENT_FIELDS: Final = frozenset({"role", "parts"})
# The members of Part's `data` oneof: exactly one must be set.
_PART_DATA_FIELDS: Final = (
    "text",
    "inlineData",
    "fileData",
    "functionCall",
    "functionResponse",
    "executableCode",
    "codeExecutionResult",
    "toolCall",
    "toolResponse",
)
_PART_FIELDS: Final = frozenset(
    {
        *_PART_DATA_FIELDS,
        "thought",
        "thoughtSignature",
        "videoMetadata",
        "partMetadata",
        "mediaResolution",
    }
)
_TOOL_FIELDS: Final = frozenset(
    {
        "functionDeclarations",
        "googleSearch",
        "googleSearchRetrieval",
        "codeExecution",
        "urlContext",
        "fileSearch",
        "computerUse",
        "googleMaps",
        "mcpServers",
    }
)

# Display names and token limits served by GET /models.
_MODEL_INFO: Final[Mapping[str, tuple[str, int, int]]] = {
    "gemini-2.5-flash": ("Gemini 2.5 Flash", 1_048_576, 65_536),
    "gemini-2.5-pro": ("Gemini 2.5 Pro", 1_048_576, 65_536),
    "gemini-2.5-flash-lite": ("Gemini 2.5 Flash-Lite", 1_048_576, 65_536),
    "gemini-3-flash-preview": ("Gemini 3 Flash Preview", 1_048_576, 65_536),
    "gemini-3-pro-preview": ("Gemini 3 Pro Preview", 1_048_576, 65_536),
}


def _random_string(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def new_response_id() -> str:
    """A responseId shaped like the real ones (23 base64url-ish characters)."""
    return _random_string(_RESPONSE_ID_ALPHABET, 23)


def new_call_id() -> str:
    return _random_string(_ID_ALPHABET, 8)


def _snake(name: str) -> str:
    return _CAMEL_BOUNDARY.sub(lambda m: "_" + m.group(1).lower(), name)


def _camel(name: str) -> str:
    return _SNAKE_BOUNDARY.sub(lambda m: m.group(1).upper(), name)


def field(obj: Mapping[str, Any], name: str) -> Any:
    """`obj[name]` under its lowerCamelCase name or its snake_case spelling (None when absent)."""
    if name in obj:
        return obj[name]
    return obj.get(_snake(name))


def major_version(model: str) -> int | None:
    match = _MAJOR_VERSION.match(model)
    return int(match.group(1)) if match else None


def is_gemini_3(model: str) -> bool:
    """Gemini 3 and later: always thinking, call ids, and signatures checked on replay."""
    version = major_version(model)
    return version is not None and version >= 3


def gives_call_ids(model: str) -> bool:
    """Gemini 3 "always returns a unique id with every functionCall" (Google's function-calling guide)."""
    return is_gemini_3(model)


# --------------------------------------------------------------------------------------------
# Errors in Google's envelope
# --------------------------------------------------------------------------------------------

# google.rpc.Code names by HTTP status, as Google's HTTP mapping pairs them.
STATUS_NAMES: Final[Mapping[int, str]] = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def status_name(status: int) -> str:
    return STATUS_NAMES.get(status) or ("INTERNAL" if status >= 500 else "FAILED_PRECONDITION")


def pretty_json(payload: object) -> bytes:
    """Google's non-streamed JSON: two-space indentation, non-ASCII kept."""
    return json.dumps(payload, indent=2, ensure_ascii=False).encode()


def compact_json(payload: object) -> bytes:
    """Google's SSE JSON: one line, `": "` after keys but no space after commas."""
    return json.dumps(payload, separators=(",", ": "), ensure_ascii=False).encode()


class GeminiAPIError(Exception):
    """An error response in Google's shape, raised anywhere in request handling."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        details: Sequence[JSONObject] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.status_name = status_name(status)
        self.details = list(details)
        self.headers = dict(headers or {})

    def payload(self) -> JSONObject:
        error: JSONObject = {"code": self.status, "message": self.message, "status": self.status_name}
        if self.details:
            error["details"] = self.details
        return {"error": error}

    def response(self, *, array: bool = False) -> Response:
        """The error response; `array` wraps it as the JSON-array stream form does (`[{"error": ...}]`)."""
        body = pretty_json([self.payload()] if array else self.payload())
        headers = {"content-type": _JSON_CONTENT_TYPE, **self.headers}
        return Response(body, status_code=self.status, headers=headers)


def invalid_argument(message: str) -> GeminiAPIError:
    return GeminiAPIError(400, message)


def field_violation(path: str, description: str) -> GeminiAPIError:
    """The API's message for a failed field check: `* GenerateContentRequest.<path>: <description>\\n`."""
    return invalid_argument(f"* GenerateContentRequest.{path}: {description}\n")


def unknown_field(name: str, at: str | None) -> GeminiAPIError:
    where = f" at '{at}'" if at else ""
    return invalid_argument(f'Invalid JSON payload received. Unknown name "{name}"{where}: Cannot find field.')


def invalid_value(path: str, type_: str, value: object) -> GeminiAPIError:
    return invalid_argument(f"Invalid value at '{path}' ({type_}), {json.dumps(value, ensure_ascii=False)}")


def model_not_found(model: str, version: str, method: str) -> GeminiAPIError:
    return GeminiAPIError(
        404,
        f"models/{model} is not found for API version {version}, or is not supported for {method}. "
        "Call ListModels to see the list of available models and their supported methods.",
    )


def api_key_invalid() -> GeminiAPIError:
    message = "API key not valid. Please pass a valid API key."
    return GeminiAPIError(
        400,
        message,
        details=[
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            },
            {"@type": "type.googleapis.com/google.rpc.LocalizedMessage", "locale": "en-US", "message": message},
        ],
    )


def rate_limited(model: str, retry_seconds: int = 1, limit: int = 10) -> GeminiAPIError:
    """A free-tier per-minute quota error, with the retry delay only in the body (no Retry-After header)."""
    metric = "generativelanguage.googleapis.com/generate_content_free_tier_requests"
    return GeminiAPIError(
        429,
        "You exceeded your current quota, please check your plan and billing details. For more information on this "
        f"error, head to: {_RATE_LIMIT_DOCS}.\n* Quota exceeded for metric: {metric}, limit: {limit}, model: {model}\n"
        f"Please retry in {retry_seconds}s.",
        details=[
            {
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [
                    {
                        "quotaMetric": metric,
                        "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                        "quotaDimensions": {"location": "global", "model": model},
                        "quotaValue": str(limit),
                    }
                ],
            },
            {
                "@type": "type.googleapis.com/google.rpc.Help",
                "links": [{"description": "Learn more about Gemini API quotas", "url": _RATE_LIMIT_DOCS}],
            },
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{retry_seconds}s"},
        ],
    )


def injected_error(status: int, model: str, version: str = "v1beta") -> GeminiAPIError:
    """The error the real API would plausibly send for `status` (used by `error-<status>`)."""
    if status == 404:
        return model_not_found(model, version, "generateContent")
    if status == 429:
        return rate_limited(model)
    messages = {
        400: "Request contains an invalid argument.",
        401: "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other "
        "valid authentication credential.",
        403: "The caller does not have permission",
        500: "An internal error has occurred. Please retry or report in "
        "https://developers.generativeai.google/guide/troubleshooting",
        503: "The model is overloaded. Please try again later.",
        504: "The request timed out. Please try again.",
    }
    return GeminiAPIError(status, messages.get(status, f"Injected HTTP {status} error."))


# --------------------------------------------------------------------------------------------
# Thought signatures: opaque to clients, checkable by the fake
# --------------------------------------------------------------------------------------------


def sign_thought(thought: str) -> str:
    """A deterministic signature for a thought: standard base64 of a magic prefix and the thought's hash."""
    return base64.b64encode(_SIGNATURE_MAGIC + hashlib.sha256(thought.encode()).digest()[:24]).decode()


def decode_bytes(value: str) -> bytes | None:
    """A proto `bytes` field's JSON value: base64, standard or URL-safe alphabet, padding optional."""
    cleaned = value.translate(str.maketrans("-_", "+/")).rstrip("=")
    try:
        return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def is_fake_signature(value: str) -> bool:
    raw = decode_bytes(value)
    return raw is not None and raw.startswith(_SIGNATURE_MAGIC) and len(raw) == len(_SIGNATURE_MAGIC) + 24


# --------------------------------------------------------------------------------------------
# Request validation (shallow, with the API's messages)
# --------------------------------------------------------------------------------------------


def _check_known(obj: Mapping[str, Any], known: frozenset[str], at: str | None) -> None:
    for key in obj:
        if _camel(key) not in known:
            raise unknown_field(key, at)


def _parts(content: object) -> list[JSONObject]:
    if not isinstance(content, dict):
        return []
    parts = content.get("parts")
    return [p for p in parts if isinstance(p, dict)] if isinstance(parts, list) else []


def _validate_part(part: object, path: str) -> None:
    if not isinstance(part, dict):
        raise invalid_value(path, "type.googleapis.com/google.ai.generativelanguage.v1beta.Part", part)
    _check_known(part, _PART_FIELDS, path)
    data = [name for name in _PART_DATA_FIELDS if field(part, name) is not None]
    if not data:
        raise field_violation(f"{path}.data", "required oneof field 'data' must have one initialized field")
    if len(data) > 1:
        raise invalid_argument(
            f"Invalid JSON payload received. Oneof field 'data' is already set. Cannot set '{data[1]}'"
        )
    text = part.get("text")
    if text is not None and not isinstance(text, str):
        raise invalid_value(f"{path}.text", "TYPE_STRING", text)
    thought = part.get("thought")
    if thought is not None and not isinstance(thought, bool):
        raise invalid_value(f"{path}.thought", "TYPE_BOOL", thought)
    signature = field(part, "thoughtSignature")
    if (
        signature is not None
        and signature not in DUMMY_SIGNATURES
        and (not isinstance(signature, str) or decode_bytes(signature) is None)
    ):
        raise invalid_argument(
            f"Invalid value at '{path}.thought_signature' (TYPE_BYTES), Base64 decoding failed for {signature!r}"
        )
    inline = field(part, "inlineData")
    if inline is not None:
        if not isinstance(inline, dict) or not isinstance(field(inline, "mimeType"), str):
            raise field_violation(f"{path}.inline_data.mime_type", "mime_type must be specified.")
        raw = inline.get("data")
        if not isinstance(raw, str) or decode_bytes(raw) is None:
            raise invalid_argument(
                f"Invalid value at '{path}.inline_data.data' (TYPE_BYTES), Base64 decoding failed for {raw!r}"
            )
    file_data = field(part, "fileData")
    if file_data is not None and (not isinstance(file_data, dict) or not isinstance(field(file_data, "fileUri"), str)):
        raise field_violation(f"{path}.file_data.file_uri", "file_uri must be specified.")
    for kind, proto in (("functionCall", "function_call"), ("functionResponse", "function_response")):
        value = field(part, kind)
        if value is None:
            continue
        if not isinstance(value, dict):
            raise invalid_value(
                f"{path}.{proto}", f"type.googleapis.com/google.ai.generativelanguage.v1beta.{kind}", value
            )
        name = value.get("name")
        if not isinstance(name, str) or not name:
            raise field_violation(f"{path}.{proto}.name", "Name cannot be empty.")
        payload_key = "args" if kind == "functionCall" else "response"
        payload = value.get(payload_key)
        if payload is not None and not isinstance(payload, dict):
            raise invalid_value(f"{path}.{proto}.{payload_key}", "type.googleapis.com/google.protobuf.Struct", payload)


def _validate_contents(contents: object) -> list[JSONObject]:
    if contents is None or contents == []:
        raise field_violation("contents", "contents is not specified")
    if not isinstance(contents, list):
        raise invalid_value("contents", "type.googleapis.com/google.ai.generativelanguage.v1beta.Content", contents)
    for index, content in enumerate(contents):
        path = f"contents[{index}]"
        if not isinstance(content, dict):
            raise invalid_value(path, "type.googleapis.com/google.ai.generativelanguage.v1beta.Content", content)
        _check_known(content, _CONTENT_FIELDS, path)
        role = content.get("role")
        if role is not None and role not in ("user", "model"):
            raise invalid_argument("Please use a valid role: user, model.")
        parts = content.get("parts")
        if not isinstance(parts, list) or not parts:
            raise field_violation(f"{path}.parts", "contents.parts must not be empty.")
        for part_index, part in enumerate(parts):
            _validate_part(part, f"{path}.parts[{part_index}]")
    return contents


def _count(content: JSONObject, kind: str) -> int:
    return sum(1 for part in _parts(content) if field(part, kind) is not None)


def _validate_turn_order(contents: list[JSONObject]) -> None:
    """The API's function-calling turn rules: calls follow a user turn, results answer the turn right before."""
    for index, content in enumerate(contents):
        calls = _count(content, "functionCall")
        results = _count(content, "functionResponse")
        previous = contents[index - 1] if index > 0 else None
        previous_role = previous.get("role", "user") if previous is not None else None
        if calls and (content.get("role") != "model" or previous_role != "user"):
            raise invalid_argument(
                "Please ensure that function call turn comes immediately after a user turn or after a function "
                "response turn."
            )
        if results:
            previous_calls = _count(previous, "functionCall") if previous is not None else 0
            if content.get("role", "user") != "user" or previous_role != "model" or not previous_calls:
                raise invalid_argument(
                    "Please ensure that function response turn comes immediately after a function call turn."
                )
            if results != previous_calls:
                raise invalid_argument(
                    "Please ensure that the number of function response parts is equal to the number of function "
                    "call parts of the function call turn."
                )


def check_thought_signatures(contents: list[JSONObject]) -> None:
    """Gemini 3's check: in the current turn, each step's first functionCall must carry its thoughtSignature.

    The current turn starts after the last user content that is not only function responses. Any valid base64
    signature passes (the real API's check is opaque), as do Google's documented dummy values.
    """
    start = 0
    for index, content in enumerate(contents):
        parts = _parts(content)
        if content.get("role", "user") == "user" and any(field(p, "functionResponse") is None for p in parts):
            start = index + 1
    for index in range(start, len(contents)):
        content = contents[index]
        if content.get("role") != "model":
            continue
        for part_index, part in enumerate(_parts(content)):
            call = field(part, "functionCall")
            if call is None:
                continue
            if field(part, "thoughtSignature") is None:
                raise invalid_argument(
                    "Function call is missing a thought_signature in functionCall parts. This is required for tools "
                    "to work correctly, and missing thought_signature may lead to degraded model performance. "
                    f"Additional data, function call `default_api:{call.get('name')}` , position {part_index + 1}. "
                    f"Please refer to {_SIGNATURE_DOCS} for more details."
                )
            break  # only the first call of a step is signed


def function_declarations(body: Mapping[str, Any]) -> list[JSONObject]:
    tools = body.get("tools")
    declarations: list[JSONObject] = []
    for tool in tools if isinstance(tools, list) else []:
        found = field(tool, "functionDeclarations") if isinstance(tool, dict) else None
        if isinstance(found, list):
            declarations.extend(d for d in found if isinstance(d, dict))
    return declarations


def _validate_tools(body: Mapping[str, Any]) -> None:
    tools = body.get("tools")
    if tools is None:
        return
    if not isinstance(tools, list):
        raise invalid_value("tools", "type.googleapis.com/google.ai.generativelanguage.v1beta.Tool", tools)
    for index, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise invalid_value(f"tools[{index}]", "type.googleapis.com/google.ai.generativelanguage.v1beta.Tool", tool)
        _check_known(tool, _TOOL_FIELDS, f"tools[{index}]")
        for fn_index, declaration in enumerate(field(tool, "functionDeclarations") or []):
            name = declaration.get("name") if isinstance(declaration, dict) else None
            if not isinstance(name, str) or not _FUNCTION_NAME.match(name):
                raise field_violation(
                    f"tools[{index}].function_declarations[{fn_index}].name",
                    "Invalid function name. Must start with a letter or an underscore. Must be a-z, A-Z, 0-9, or "
                    "contain underscores, dots, colons and dashes, with a maximum length of 64.",
                )


def function_calling_config(body: Mapping[str, Any]) -> tuple[str, list[str] | None]:
    """The (validated) mode and allowed function names of `toolConfig.functionCallingConfig`."""
    tool_config = field(body, "toolConfig")
    config = field(tool_config, "functionCallingConfig") if isinstance(tool_config, dict) else None
    if not isinstance(config, dict):
        return "AUTO", None
    mode = config.get("mode", "AUTO")
    if mode not in FUNCTION_CALLING_MODES:
        raise invalid_value(
            "tool_config.function_calling_config.mode",
            "type.googleapis.com/google.ai.generativelanguage.v1beta.FunctionCallingConfig.Mode",
            mode,
        )
    allowed = field(config, "allowedFunctionNames")
    if allowed is None:
        return ("AUTO" if mode == "MODE_UNSPECIFIED" else mode), None
    if not isinstance(allowed, list) or not all(isinstance(n, str) for n in allowed):
        raise invalid_value("tool_config.function_calling_config.allowed_function_names", "TYPE_STRING", allowed)
    if mode not in ("ANY", "VALIDATED"):
        raise field_violation(
            "tool_config.function_calling_config.allowed_function_names",
            "allowed_function_names may be set only when the mode is ANY or VALIDATED.",
        )
    declared = {d.get("name") for d in function_declarations(body)}
    for name in allowed:
        if name not in declared:
            raise field_violation(
                "tool_config.function_calling_config.allowed_function_names",
                f"function name {name!r} is not declared in tools.",
            )
    return mode, allowed


@dataclass(frozen=True, slots=True)
class ThinkingSettings:
    thinks: bool
    include_thoughts: bool


def thinking_settings(body: Mapping[str, Any], model: str) -> ThinkingSettings:
    """Whether the model thinks on this request, and whether it shows its thoughts (validated)."""
    config = field(body, "generationConfig")
    thinking = field(config, "thinkingConfig") if isinstance(config, dict) else None
    if thinking is None:
        return ThinkingSettings(thinks=is_gemini_3(model), include_thoughts=False)
    if not isinstance(thinking, dict):
        raise invalid_value("generation_config.thinking_config", "TYPE_MESSAGE", thinking)
    include = field(thinking, "includeThoughts")
    if include is not None and not isinstance(include, bool):
        raise invalid_value("generation_config.thinking_config.include_thoughts", "TYPE_BOOL", include)
    budget = field(thinking, "thinkingBudget")
    if budget is not None and (not isinstance(budget, int) or isinstance(budget, bool) or budget < -1):
        raise invalid_value("generation_config.thinking_config.thinking_budget", "TYPE_INT32", budget)
    level = field(thinking, "thinkingLevel")
    if level is not None and (not isinstance(level, str) or level.upper() not in THINKING_LEVELS):
        raise invalid_value(
            "generation_config.thinking_config.thinking_level",
            "type.googleapis.com/google.ai.generativelanguage.v1beta.ThinkingConfig.ThinkingLevel",
            level,
        )
    if budget is not None and level is not None:
        raise invalid_argument("You can only set one of thinking budget and thinking level.")
    if budget == 0 and "-pro" in model:
        raise invalid_argument("Budget 0 is invalid. This model only works in thinking mode.")
    if is_gemini_3(model):
        thinks = True  # Gemini 3 cannot turn thinking off
    elif budget == 0:
        thinks = False  # includeThoughts then shows nothing
    else:
        thinks = include is True or budget is not None or level is not None
    return ThinkingSettings(thinks=thinks, include_thoughts=bool(include) and thinks)


@dataclass(frozen=True, slots=True)
class OutputLimits:
    max_output_tokens: int | None
    stop_sequences: tuple[str, ...]


def output_limits(body: Mapping[str, Any]) -> OutputLimits:
    config = field(body, "generationConfig")
    if config is None:
        return OutputLimits(None, ())
    if not isinstance(config, dict):
        raise invalid_value("generation_config", "TYPE_MESSAGE", config)
    max_tokens = field(config, "maxOutputTokens")
    if max_tokens is not None and (not isinstance(max_tokens, int) or isinstance(max_tokens, bool)):
        raise invalid_value("generation_config.max_output_tokens", "TYPE_INT32", max_tokens)
    if isinstance(max_tokens, int) and max_tokens < 1:
        raise field_violation("generation_config.max_output_tokens", "max_output_tokens must be positive.")
    stops = field(config, "stopSequences")
    if stops is None:
        stops = []
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise invalid_value("generation_config.stop_sequences", "TYPE_STRING", stops)
    if len(stops) > MAX_STOP_SEQUENCES:
        raise field_violation(
            "generation_config.stop_sequences", f"the number of stop_sequences must be at most {MAX_STOP_SEQUENCES}."
        )
    return OutputLimits(max_tokens, tuple(stops))


def validate_body(body: object, model: str) -> tuple[JSONObject, list[JSONObject]]:
    """Shallow validation of a generateContent body, with the API's error messages; returns it and its contents."""
    if not isinstance(body, dict):
        raise invalid_argument("Invalid JSON payload received. Expected an object.")
    _check_known(body, _REQUEST_FIELDS, None)
    contents = _validate_contents(body.get("contents"))
    system = field(body, "systemInstruction")
    if system is not None:
        if not isinstance(system, dict):
            raise invalid_value("system_instruction", "TYPE_MESSAGE", system)
        _check_known(system, _CONTENT_FIELDS, "system_instruction")
        for index, part in enumerate(system.get("parts") or []):
            _validate_part(part, f"system_instruction.parts[{index}]")
    _validate_turn_order(contents)
    _validate_tools(body)
    function_calling_config(body)
    thinking_settings(body, model)
    output_limits(body)
    if is_gemini_3(model):
        check_thought_signatures(contents)
    return body, contents


# --------------------------------------------------------------------------------------------
# The deterministic "model"
# --------------------------------------------------------------------------------------------


def content_text(content: object) -> str:
    """The non-thought text parts of a content, joined by spaces."""
    return " ".join(
        p["text"] for p in _parts(content) if isinstance(p.get("text"), str) and p.get("thought") is not True
    )


def function_result_text(function_response: Mapping[str, Any]) -> str:
    """What a functionResponse said: `response.result` or `response.output`, "Error: <error>", else its JSON."""
    response = function_response.get("response")
    if not isinstance(response, dict):
        return ""
    for key in ("result", "output"):
        if isinstance(response.get(key), str):
            return str(response[key])
    if isinstance(response.get("error"), str):
        return "Error: " + str(response["error"])
    return orjson.dumps(response).decode()


def _content_words(content: object) -> int:
    words = 0
    for part in _parts(content):
        if isinstance(part.get("text"), str):
            words += len(part["text"].split())
        call = field(part, "functionCall")
        if isinstance(call, dict):
            words += len(str(call.get("name", "")).split()) + len(orjson.dumps(call.get("args") or {}).split())
        result = field(part, "functionResponse")
        if isinstance(result, dict):
            words += len(function_result_text(result).split())
    return words


def count_prompt_tokens(body: Mapping[str, Any]) -> int:
    """Whitespace words of the system instruction and of every content, plus TOKENS_PER_CONTENT per content.

    Text, function-call names and arguments, and function results count; tool declarations are free.
    """
    total = _content_words(field(body, "systemInstruction"))
    contents = body.get("contents")
    for content in contents if isinstance(contents, list) else []:
        total += _content_words(content) + TOKENS_PER_CONTENT
    return total


def _lower_types(schema: object) -> object:
    """Gemini's OpenAPI-style schemas spell types in capitals ("OBJECT"); `example_for_schema` wants JSON Schema."""
    if isinstance(schema, list):
        return [_lower_types(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    lowered: JSONObject = {}
    for key, value in schema.items():
        if key == "type" and isinstance(value, str):
            lowered[key] = value.lower()
        elif key == "type" and isinstance(value, list):
            lowered[key] = [t.lower() if isinstance(t, str) else t for t in value]
        elif key in ("properties", "$defs", "definitions") and isinstance(value, dict):
            lowered[key] = {name: _lower_types(sub) for name, sub in value.items()}
        elif key in ("items", "anyOf", "oneOf", "allOf", "additionalProperties", "prefixItems"):
            lowered[key] = _lower_types(value)
        else:
            lowered[key] = value
    return lowered


def example_args(declaration: Mapping[str, Any]) -> JSONObject:
    """Arguments for a declared function, from `parametersJsonSchema` or `parameters` (always an object)."""
    schema = field(declaration, "parametersJsonSchema")
    if schema is None:
        schema = declaration.get("parameters")
    if schema is None:
        return {}
    example = example_for_schema(_lower_types(schema))
    return example if isinstance(example, dict) else {}


def apply_stop_sequences(text: str, stop_sequences: Sequence[str]) -> str:
    """Cut `text` before the earliest stop sequence (Gemini reports STOP either way)."""
    hits = [text.find(s) for s in stop_sequences if s and s in text]
    return text[: min(hits)] if hits else text


@dataclass(frozen=True, slots=True)
class Reply:
    """What the fake model answers, before it is laid out as a response or as stream chunks."""

    thought: str | None  # the model's thinking (None: it did not think)
    include_thoughts: bool  # whether the thought is shown as a `thought: true` part
    calls: tuple[JSONObject, ...]  # functionCall objects ({"name", "args"} plus "id" on Gemini 3)
    text: str  # the answer text (empty with calls, or when maxOutputTokens left none)
    finish_reason: str
    prompt_tokens: int
    output_tokens: int  # candidatesTokenCount
    thoughts_tokens: int

    @property
    def signature(self) -> str | None:
        return sign_thought(self.thought) if self.thought is not None else None


def build_reply(body: Mapping[str, Any], contents: list[JSONObject], model: str) -> Reply:
    """Decide the deterministic answer to a validated request."""
    prompt_tokens = count_prompt_tokens(body)
    thinking = thinking_settings(body, model)
    limits = output_limits(body)
    last = contents[-1]
    results = (
        [field(p, "functionResponse") for p in _parts(last) if field(p, "functionResponse") is not None]
        if last.get("role", "user") == "user"
        else []
    )
    last_user = next((c for c in reversed(contents) if c.get("role", "user") == "user"), None)
    user_text = content_text(last_user)

    thought = THOUGHT_PREFIX + ("the tool results" if results else user_text) if thinking.thinks else None
    thoughts_tokens = len(thought.split()) if thought is not None else 0

    declarations = function_declarations(body)
    mode, allowed = function_calling_config(body)
    if not results and declarations and mode != "NONE":
        candidates = [d for d in declarations if allowed is None or d.get("name") in allowed]
        first_user = next((c for c in contents if c.get("role", "user") == "user"), None)
        wants_parallel = len(candidates) >= 2 and _PARALLEL_WORD.search(content_text(first_user)) is not None
        calls: list[JSONObject] = []
        for declaration in candidates[: 2 if wants_parallel else 1]:
            call: JSONObject = {"name": declaration["name"], "args": example_args(declaration)}
            if gives_call_ids(model):
                call = {"id": new_call_id(), **call}
            calls.append(call)
        output = sum(len(c["name"].split()) + len(orjson.dumps(c["args"]).split()) for c in calls)
        # Calls are never truncated by maxOutputTokens (the fake's calls are a few tokens).
        return Reply(
            thought, thinking.include_thoughts, tuple(calls), "", "STOP", prompt_tokens, output, thoughts_tokens
        )

    if results:
        text = TOOL_REPLY_PREFIX + " | ".join(function_result_text(r) for r in results)
    else:
        text = REPLY_PREFIX + user_text
    text = apply_stop_sequences(text, limits.stop_sequences)
    finish_reason = "STOP"
    if limits.max_output_tokens is not None:
        # Thinking is billed as output and eats into maxOutputTokens first.
        budget = limits.max_output_tokens - thoughts_tokens
        if len(text.split()) > budget:
            text = "".join(_WORD_PIECES.findall(text)[: max(0, budget)]).rstrip()
            finish_reason = "MAX_TOKENS"
    output = len(text.split())
    return Reply(thought, thinking.include_thoughts, (), text, finish_reason, prompt_tokens, output, thoughts_tokens)


# --------------------------------------------------------------------------------------------
# Wire objects
# --------------------------------------------------------------------------------------------


def usage_metadata(reply: Reply, *, final: bool = True) -> JSONObject:
    """`usageMetadata`; zero counts are left out, as proto3 JSON does. Mid-stream it has no candidate count."""
    usage: JSONObject = {"promptTokenCount": reply.prompt_tokens}
    output = reply.output_tokens if final else 0
    if output:
        usage["candidatesTokenCount"] = output
    usage["totalTokenCount"] = reply.prompt_tokens + output + reply.thoughts_tokens
    usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": reply.prompt_tokens}]
    if reply.thoughts_tokens:
        usage["thoughtsTokenCount"] = reply.thoughts_tokens
    return usage


def _thought_part(text: str) -> JSONObject:
    return {"text": text, "thought": True}


def response_parts(reply: Reply) -> list[JSONObject]:
    """The parts of a non-streamed answer: thought, then calls or text; the signature on the first call or text."""
    parts: list[JSONObject] = []
    if reply.include_thoughts and reply.thought is not None:
        parts.append(_thought_part(reply.thought))
    answer: list[JSONObject] = [{"functionCall": call} for call in reply.calls]
    if not answer and reply.text:
        answer.append({"text": reply.text})
    parts.extend(answer)
    signature = reply.signature
    if signature is not None and parts:
        (answer or parts)[0 if answer else -1]["thoughtSignature"] = signature
    return parts


def _content(parts: list[JSONObject]) -> JSONObject:
    return {"parts": parts, "role": "model"} if parts else {"role": "model"}


def response_object(reply: Reply, model: str, response_id: str) -> JSONObject:
    """A non-streamed GenerateContentResponse."""
    candidate = {"content": _content(response_parts(reply)), "finishReason": reply.finish_reason, "index": 0}
    return {
        "candidates": [candidate],
        "usageMetadata": usage_metadata(reply),
        "modelVersion": model,
        "responseId": response_id,
    }


def stream_chunk_parts(reply: Reply) -> list[list[JSONObject]]:
    """The parts of each chunk of a streamed answer.

    Thought text first (word by word), then either every call in one chunk (signature on the first) or the answer
    text word by word (signature on its first piece). With no answer to sign, the signature comes on a final empty
    text part, as Gemini streams it.
    """
    chunks: list[list[JSONObject]] = []
    if reply.include_thoughts and reply.thought is not None:
        chunks.extend([_thought_part(piece)] for piece in _WORD_PIECES.findall(reply.thought))
    signature = reply.signature
    answer: list[list[JSONObject]] = []
    if reply.calls:
        answer.append([{"functionCall": call} for call in reply.calls])
    else:
        answer.extend([{"text": piece}] for piece in _WORD_PIECES.findall(reply.text))
    if answer and signature is not None:
        answer[0][0]["thoughtSignature"] = signature
    elif signature is not None:
        answer.append([{"text": "", "thoughtSignature": signature}])
    chunks.extend(answer)
    return chunks or [[{"text": ""}]]


def stream_chunks(reply: Reply, model: str, response_id: str) -> list[JSONObject]:
    """The GenerateContentResponse chunks of a streamed answer; the last one has finishReason and full usage."""
    parts_per_chunk = stream_chunk_parts(reply)
    chunks: list[JSONObject] = []
    for index, parts in enumerate(parts_per_chunk):
        final = index == len(parts_per_chunk) - 1
        candidate: JSONObject = {"content": _content(parts)}
        if final:
            candidate["finishReason"] = reply.finish_reason
        chunks.append(
            {
                "candidates": [candidate],
                "usageMetadata": usage_metadata(reply, final=final),
                "modelVersion": model,
                "responseId": response_id,
            }
        )
    return chunks


def sse_frame(chunk: object) -> bytes:
    """One SSE event as Gemini sends it: a `data:` line and a blank line, both ended by CRLF."""
    return b"data: " + compact_json(chunk) + b"\r\n\r\n"


def json_array_frames(chunks: Sequence[object]) -> list[bytes]:
    """The non-SSE stream: one JSON array of pretty-printed responses, sent element by element."""
    frames = [(b"[" if index == 0 else b"\n,\r\n") + pretty_json(chunk) for index, chunk in enumerate(chunks)]
    return [*frames, b"\n]"]


def _cut(frames: list[bytes]) -> list[bytes]:
    """What a cut stream sends: the first chunks, never the last one (half of it when there is only one)."""
    if len(frames) > CHUNKS_BEFORE_CUT:
        return frames[:CHUNKS_BEFORE_CUT]
    if len(frames) > 1:
        return frames[:-1]
    return [frames[0][: len(frames[0]) // 2]]


def model_object(model_id: str) -> JSONObject:
    """One entry of GET /models (a Model resource)."""
    display, input_limit, output_limit = _MODEL_INFO.get(model_id, (model_id, 32_768, 8_192))
    return {
        "name": f"models/{model_id}",
        "version": "001",
        "displayName": display,
        "description": f"{display} (fake-gemini).",
        "inputTokenLimit": input_limit,
        "outputTokenLimit": output_limit,
        "supportedGenerationMethods": ["generateContent", "countTokens"],
        "temperature": 1,
        "topP": 0.95,
        "topK": 64,
        "maxTemperature": 2,
        "thinking": model_id in _MODEL_INFO,
    }


# --------------------------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------------------------


class GeminiRecordedRequest(RecordedRequest):
    """A recorded request, plus the model and method named in its path (None for the model list)."""

    model: str | None
    action: str | None


def _json_response(payload: object, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(
        pretty_json(payload), status_code=status, headers={"content-type": _JSON_CONTENT_TYPE, **(headers or {})}
    )


class _Handlers:
    """Route handlers bound to one app's state."""

    def __init__(self, state: FakeUpstreamState, *, any_model: bool, api_versions: Sequence[str]) -> None:
        self.state = state
        self.any_model = any_model
        self.api_versions = tuple(api_versions)

    # -- shared checks ----------------------------------------------------------------------

    async def _record(self, request: Request, model: str | None, action: str | None) -> tuple[Any, bool]:
        """Parse and (when enabled) record the request before anything can fail."""
        raw = await request.body()
        body: Any = None
        parsed = not raw  # an empty body reads as {} (then "contents is not specified")
        if raw:
            with contextlib.suppress(orjson.JSONDecodeError):
                body, parsed = orjson.loads(raw), True
        if self.state.record:
            self.state.requests.append(
                GeminiRecordedRequest(
                    method=request.method,
                    path=request.url.path,
                    query=request.url.query,
                    headers={k.lower(): v for k, v in request.headers.items()},
                    body=body,
                    model=model,
                    action=action,
                )
            )
        return ({} if not raw else body), parsed

    def _check_auth(self, request: Request) -> None:
        """`x-goog-api-key` (preferred when both are sent) or `?key=`."""
        expected = self.state.api_key
        if expected is None:
            return
        key = request.headers.get("x-goog-api-key")
        if key is None:
            key = request.query_params.get("key")
        if key is None:
            if request.headers.get("authorization", "").lower().startswith("bearer "):
                raise GeminiAPIError(
                    401,
                    "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or "
                    "other valid authentication credential. See "
                    "https://developers.google.com/identity/sign-in/web/devconsole-project.",
                )
            raise GeminiAPIError(
                403,
                "Method doesn't allow unregistered callers (callers without established identity). Please use API "
                "Key or other form of API consumer identity to call this API.",
            )
        if key.strip() != expected:
            raise api_key_invalid()

    def _check_version(self, version: str) -> None:
        if version not in self.api_versions:
            raise GeminiAPIError(
                404, f"API version {version} is not supported (fake-gemini serves {self.api_versions})."
            )

    def _check_model(self, model: str, version: str, method: str) -> None:
        if not self.any_model and model not in self.state.models and parse_fault(model) is None:
            raise model_not_found(model, version, method)

    # -- /{version}/models/{model}:{method} ------------------------------------------------

    async def model_method(self, request: Request) -> Response:
        version = request.path_params["version"]
        model, sep, method = request.path_params["rest"].rpartition(":")
        if not sep or not model:
            raise GeminiAPIError(404, f"Method not found: {request.url.path}.")
        body, parsed = await self._record(request, model, method)
        array = method == "streamGenerateContent" and request.query_params.get("alt") != "sse"
        try:
            if method in ("generateContent", "streamGenerateContent"):
                return await self._generate(request, version, model, method, body, parsed)
            if method == "countTokens":
                return self._count_tokens(request, version, model, body, parsed)
            raise GeminiAPIError(404, f"Method not found: models.{method}.")
        except GeminiAPIError as error:
            return error.response(array=array)

    async def _generate(
        self, request: Request, version: str, model: str, method: str, body: Any, parsed: bool
    ) -> Response:
        stream = method == "streamGenerateContent"
        sse = request.query_params.get("alt") == "sse"
        fault: Fault | None = None
        directive = self.state.next_directive()
        if directive is not None:
            if directive.delay_ms > 0:
                await asyncio.sleep(directive.delay_ms / 1000)
            if directive.status is not None:
                return self._canned(directive, model, version, array=stream and not sse)
            fault = directive.fault

        self._check_auth(request)
        self._check_version(version)
        self._check_model(model, version, method)
        if not parsed:
            raise invalid_argument("Invalid JSON payload received. Unexpected token.")
        body, contents = validate_body(body, model)

        fault = fault or parse_fault(model)
        if fault is not None and fault.kind == "error":
            raise injected_error(fault.value, model, version)
        pacing = await pacing_for(fault)

        reply = build_reply(body, contents, model)
        response_id = new_response_id()

        if stream:
            chunks = stream_chunks(reply, model, response_id)
            if sse:
                frames = [sse_frame(chunk) for chunk in chunks]
                headers = {"content-type": _SSE_CONTENT_TYPE, "cache-control": "no-cache"}
            else:
                frames = json_array_frames(chunks)
                headers = {"content-type": _JSON_CONTENT_TYPE}
            if pacing.cut:
                frames = _cut(frames)
            return paced_response(frames, headers, pacing)

        payload = pretty_json(response_object(reply, model, response_id))
        return paced_json(payload, {}, pacing, media_type=_JSON_CONTENT_TYPE)

    def _count_tokens(self, request: Request, version: str, model: str, body: Any, parsed: bool) -> Response:
        self._check_auth(request)
        self._check_version(version)
        self._check_model(model, version, "countTokens")
        if not parsed or not isinstance(body, dict):
            raise invalid_argument("Invalid JSON payload received. Unexpected token.")
        inner = field(body, "generateContentRequest")
        request_body = inner if isinstance(inner, dict) else {"contents": body.get("contents")}
        _validate_contents(request_body.get("contents"))
        tokens = count_prompt_tokens(request_body)
        return _json_response(
            {"totalTokens": tokens, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": tokens}]}
        )

    @staticmethod
    def _canned(directive: Directive, model: str, version: str, *, array: bool) -> Response:
        status = directive.status
        assert status is not None
        if directive.body is None and status >= 400:
            response = injected_error(status, model, version).response(array=array)
            response.headers.update(directive.headers)
            return response
        headers: dict[str, str] = {"content-type": _JSON_CONTENT_TYPE}
        if directive.body is None:
            content = b""
        elif isinstance(directive.body, str):
            content = directive.body.encode()
        else:
            content = pretty_json(directive.body)
        headers |= directive.headers
        return Response(content, status_code=status, headers=headers)

    # -- /{version}/models -----------------------------------------------------------------

    async def list_models(self, request: Request) -> Response:
        await self._record(request, None, "list")
        try:
            self._check_auth(request)
            self._check_version(request.path_params["version"])
            page_size = self._page_size(request.query_params.get("pageSize"))
            token = request.query_params.get("pageToken") or "0"
            if not token.isdigit():
                raise invalid_argument("Invalid page token.")
        except GeminiAPIError as error:
            return error.response()
        start = int(token)
        page = list(self.state.models[start : start + page_size])
        payload: JSONObject = {"models": [model_object(m) for m in page]}
        if start + page_size < len(self.state.models):
            payload["nextPageToken"] = str(start + page_size)
        return _json_response(payload)

    @staticmethod
    def _page_size(raw: str | None) -> int:
        if raw is None:
            return DEFAULT_PAGE_SIZE
        if not raw.lstrip("-").isdigit():
            raise invalid_value("page_size", "TYPE_INT32", raw)
        size = int(raw)
        if size < 0:
            raise invalid_argument("page_size must not be negative.")
        return min(size, 1000) or DEFAULT_PAGE_SIZE

    async def get_model(self, request: Request) -> Response:
        model = request.path_params["rest"]
        await self._record(request, model, "get")
        version = request.path_params["version"]
        try:
            self._check_auth(request)
            self._check_version(version)
            if ":" in model or model not in self.state.models:
                raise model_not_found(model, version, "get")
        except GeminiAPIError as error:
            return error.response()
        return _json_response(model_object(model))


async def _gemini_error_handler(request: Request, exc: Exception) -> Response:
    """Route-level errors (GeminiAPIError from handlers, 404/405 from routing) in Google's shape."""
    if isinstance(exc, GeminiAPIError):
        return exc.response()
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    message = {404: f"Method not found: {request.url.path}.", 405: f"Method {request.method} is not allowed."}
    response = GeminiAPIError(status, message.get(status, "Internal error encountered.")).response()
    if isinstance(exc, HTTPException) and exc.headers:
        response.headers.update(exc.headers)  # keeps a 405's Allow header
    return response


def create_app(
    api_key: str | None = None,
    *,
    models: Sequence[str] | None = DEFAULT_MODELS,
    api_versions: Sequence[str] = API_VERSIONS,
    record: bool = True,
) -> Starlette:
    """Build a fresh fake Gemini upstream with its own state.

    `api_key`: when set, model endpoints require it as `x-goog-api-key` or `?key=`.
    `models`: the known model ids (listed by GET /{v}/models); other models are a 404, except fault names.
        None accepts any model.
    `api_versions`: the URL versions served (v1beta and v1 by default; the google-genai SDK defaults to v1).
    `record`: keep the request log (turn off for long benchmark runs).

    The state is reachable in-process as `app.state.fake` (the OpenAI fake's FakeUpstreamState, its log holding
    `GeminiRecordedRequest`s), with `app.state.requests` and `app.state.script` aliasing its log and queue.
    """
    state = FakeUpstreamState(api_key=api_key, models=tuple(models or ()), record=record)
    handlers = _Handlers(state, any_model=models is None, api_versions=api_versions)
    return fake_app(
        state,
        [
            Route("/{version}/models", handlers.list_models, methods=["GET"]),
            Route("/{version}/models/{rest:path}", handlers.model_method, methods=["POST"]),
            Route("/{version}/models/{rest:path}", handlers.get_model, methods=["GET"]),
        ],
        error_type=GeminiAPIError,
        error_handler=_gemini_error_handler,
        bad_request=invalid_argument,
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of `python -m tests.fakes.gemini_upstream`."""
    run_standalone(
        "gemini_upstream",
        "Fake Gemini API upstream.",
        8091,
        "require this key (x-goog-api-key or ?key=)",
        lambda key, record, any_model: create_app(
            api_key=key, models=None if any_model else DEFAULT_MODELS, record=record
        ),
        argv,
    )


if __name__ == "__main__":
    main()
