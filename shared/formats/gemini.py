"""Gemini `generateContent` ↔ the canonical model (DESIGN §3).

The model id travels in the URL path (`/v1beta/models/{model}:generateContent`), so `parse_request` takes it
as an argument and `render_request` leaves it out of the body. Streaming is the URL too
(`:streamGenerateContent`): a parsed request always has `stream=False`; the gateway sets it from the route.
Parsing accepts both spellings Google's JSON mapping accepts (`inlineData` and `inline_data`); rendering
always writes lowerCamelCase.

Mapping rules:
- Roles: `user` ↔ USER, `model` ↔ ASSISTANT (a missing role, and the legacy `function` role, read as `user`).
  `systemInstruction` ↔ one leading SYSTEM message; every SYSTEM and DEVELOPER message, wherever it stands,
  renders into `systemInstruction`. A conversation of nothing but system messages renders them as a user turn.
- Tool results: each `functionResponse` part is a TOOL message of one `ToolResult`; the other parts of the same
  user turn become USER messages, in order. Rendering groups a run of TOOL messages, plus the USER message
  right after it, into one `user` turn. A functionResponse's `name` is the name of the nearest earlier
  ToolCall with that id. `response` is `{"result": text}` (`{"error": text}` when `is_error`), except that a
  text which is exactly a compact JSON object is sent as that object; parsing inverts both, and any other
  object becomes Text of its compact JSON. Images in a result ride in `functionResponse.parts`.
- Call ids: Gemini's `functionCall.id` is optional. A call without one gets `call_<name>_<n>`, n counting the
  id-less calls of that name in the body from 0; an id-less functionResponse takes the oldest unanswered call of
  its name (or a fresh id of the same form). Ids of that form for that name are ours and are not rendered.
- Arguments: `args` is an object; `ToolCall.arguments` is its compact JSON (`separators=(",", ":")`, non-ASCII
  kept). Rendering json-decodes the text, so a client's spacing does not survive a trip through Gemini.
- Reasoning: a `thought: true` part ↔ Reasoning(text), its `thoughtSignature` ↔ the signature. Gemini requires a
  signature back on the exact part it came on, so a signature on another part is kept in place: on a
  functionCall it joins the Reasoning right before (one from an unsigned thought part with text), else it is
  a Reasoning(text="") of its own before the call; on a text or inline/file data part it is a Reasoning(text="")
  right before that part. Rendering inverts this: a signed Reasoning followed by a ToolCall puts its signature
  on that functionCall (Gemini validates the first call of each step), a signed empty Reasoning followed by
  Text or Image puts it on that part, and any other signed Reasoning is a thought part carrying it.
  Redacted reasoning (Anthropic's) has no Gemini form and is dropped.
- Images: Image(data, media_type) ↔ `inlineData{mimeType, data}`; Image(url) ↔ `fileData{mimeType, fileUri}`; a
  `data:` URL renders as inlineData. A missing media type is guessed from the URL's file suffix, else
  "image/jpeg" (Gemini requires a MIME type). `detail` and cache breakpoints have no Gemini form.
- Thinking: budget ↔ `thinkingConfig{thinkingBudget, includeThoughts: true}`; an effort renders as
  `thinking.budget_for(effort)`; `thinkingLevel` parses as that effort; disabled ↔ `thinkingBudget: 0`; thinking
  with no amount ↔ `{includeThoughts: true}` (a dynamic budget of -1 reads as that).
- Output: json_object ↔ `responseMimeType: application/json`; json_schema adds `responseSchema`
  (`responseJsonSchema` parses the same way and renders back as `responseSchema`); text ↔ `text/plain`.
- Tool choice: auto ↔ AUTO, none ↔ NONE, required ↔ ANY, tool(name) ↔ ANY + `allowedFunctionNames: [name]`.
- Finish: STOP → STOP (TOOL_CALLS when the candidate calls functions), MAX_TOKENS → LENGTH, the safety family →
  CONTENT_FILTER, anything else → UNKNOWN; back: STOP/TOOL_CALLS → STOP, LENGTH → MAX_TOKENS, CONTENT_FILTER and
  REFUSAL → SAFETY, others → OTHER.
- Usage: input = promptTokenCount (cached included), cached = cachedContentTokenCount, output =
  candidatesTokenCount + thoughtsTokenCount, reasoning = thoughtsTokenCount. Zero counts are not rendered.

What Gemini has and the canonical model lacks rides in `extensions` under `gemini.<top-level field>`: the
part of that field left after mapping (unmapped top-level fields whole, e.g. `safetySettings`; the rest of
`generationConfig` and `toolConfig`; non-function `tools`; in a response the rest of the first candidate under
`gemini.candidate`, the other candidates under `gemini.candidates` (`[]`: the prompt was blocked and there was
none), and the rest of `usageMetadata`). Rendering merges them back, so unknown fields survive a round trip.

Lossy, by nature of the formats: `parallel_tool_calls`, `user`, `Message.name`, `Tool.strict`, cache breakpoints,
`OutputFormat`'s name and strictness, `Usage.cache_creation`, and `stop_sequence` and `created` of a response.

Pure: no I/O imports (import-linter keeps it so).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from shared.domain.usage import Usage
from shared.errors import InvalidRequest, NotSupported
from shared.formats.canonical import (
    ChatRequest,
    ChatResponse,
    FinishReason,
    Image,
    Message,
    OutputFormat,
    Part,
    Reasoning,
    Role,
    Text,
    Thinking,
    Tool,
    ToolCall,
    ToolChoice,
    ToolResult,
    compact_json,
)
from shared.formats.thinking import budget_for

_EXT = "gemini."
DEFAULT_MIME_TYPE = "image/jpeg"
_SUFFIX_MIME_TYPES = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "webp": "image/webp",
    "heic": "image/heic",
    "heif": "image/heif",
    "pdf": "application/pdf",
}

_FINISH_IN: dict[str, FinishReason] = {
    "STOP": FinishReason.STOP,
    "MAX_TOKENS": FinishReason.LENGTH,
    "SAFETY": FinishReason.CONTENT_FILTER,
    "RECITATION": FinishReason.CONTENT_FILTER,
    "BLOCKLIST": FinishReason.CONTENT_FILTER,
    "PROHIBITED_CONTENT": FinishReason.CONTENT_FILTER,
    "SPII": FinishReason.CONTENT_FILTER,
    "IMAGE_SAFETY": FinishReason.CONTENT_FILTER,
    "IMAGE_PROHIBITED_CONTENT": FinishReason.CONTENT_FILTER,
    "IMAGE_RECITATION": FinishReason.CONTENT_FILTER,
}
_FINISH_OUT: dict[FinishReason, str] = {
    FinishReason.STOP: "STOP",
    FinishReason.TOOL_CALLS: "STOP",
    FinishReason.LENGTH: "MAX_TOKENS",
    FinishReason.CONTENT_FILTER: "SAFETY",
    FinishReason.REFUSAL: "SAFETY",
}
_MODES_IN: dict[str, Literal["auto", "none", "required"]] = {"AUTO": "auto", "NONE": "none", "ANY": "required"}
_MODES_OUT = {"auto": "AUTO", "none": "NONE", "required": "ANY", "tool": "ANY"}
# Part kinds Gemini has and this gateway cannot translate.
_UNSUPPORTED_PARTS = ("executableCode", "codeExecutionResult", "toolCall", "toolResponse")
_SIGNATURE_CARRIERS = (Text, Image)

# ----- reading JSON -------------------------------------------------------------------------------------

_UPPER = re.compile(r"(?<!^)(?=[A-Z])")
_SNAKE: dict[str, str] = {}
_JSON_NAMES = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "an integer"}


def _snake(name: str) -> str:
    snake = _SNAKE.get(name)
    if snake is None:
        snake = _SNAKE[name] = _UPPER.sub("_", name).lower()
    return snake


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def _get(obj: Mapping[str, Any], name: str) -> Any:
    """`obj[name]`, also under its snake_case spelling (Google's JSON mapping accepts both)."""
    if name in obj:
        return obj[name]
    return obj.get(_snake(name))


def _rest(obj: Mapping[str, Any], consumed: Iterable[str]) -> dict[str, Any]:
    """The fields of `obj` not in `consumed` (camelCase names), keyed in camelCase."""
    done = set(consumed)
    return {_camel(k): v for k, v in obj.items() if _camel(k) not in done}


def _type_name(value: object) -> str:
    if isinstance(value, float):
        return "a number"
    if value is None:
        return "null"
    for kind, name in _JSON_NAMES.items():
        if isinstance(value, kind):
            return name
    return type(value).__name__


def _bad_type(param: str, expected: str, value: object) -> InvalidRequest:
    return InvalidRequest(
        f"Invalid type for '{param}': expected {expected}, but got {_type_name(value)} instead.",
        param=param,
        code="invalid_type",
    )


def _missing(param: str) -> InvalidRequest:
    return InvalidRequest(f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter")


def _obj(value: Any, param: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _bad_type(param, "an object", value)
    return value


def _list(value: Any, param: str) -> Sequence[Any]:
    if not isinstance(value, list | tuple):
        raise _bad_type(param, "an array", value)
    return value


def _str(value: Any, param: str) -> str:
    if not isinstance(value, str):
        raise _bad_type(param, "a string", value)
    return value


def _opt_list(value: Any, param: str) -> Sequence[Any]:
    return () if value is None else _list(value, param)


def _opt_str(value: Any, param: str) -> str | None:
    return None if value is None else _str(value, param)


def _bool(value: Any, param: str) -> bool:
    if not isinstance(value, bool):
        raise _bad_type(param, "a boolean", value)
    return value


def _int(value: Any, param: str) -> int:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad_type(param, "an integer", value)
    return value


def _num(value: Any, param: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad_type(param, "a number", value)
    return value


def _count(obj: Mapping[str, Any], name: str, param: str) -> int:
    value = _get(obj, name)
    if value is None:
        return 0
    count = _int(value, f"{param}.{name}")
    if count < 0:
        raise InvalidRequest(f"Invalid '{param}.{name}': must not be negative.", param=f"{param}.{name}")
    return count


def _plain(value: Any) -> Any:
    """A fresh JSON value: mappings as dicts, sequences as lists (renders never alias canonical data)."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _merge(base: Any, extra: Any) -> Any:
    """`extra` laid over `base`: objects merge key by key, arrays concatenate, anything else is replaced."""
    if isinstance(base, dict) and isinstance(extra, Mapping):
        out = dict(base)
        for key, value in extra.items():
            out[key] = _merge(out[key], value) if key in out else _plain(value)
        return out
    if isinstance(base, list) and isinstance(extra, list | tuple):
        return base + _plain(extra)
    return _plain(extra)


# ----- call ids -----------------------------------------------------------------------------------------


def _synthetic_id(name: str, n: int) -> str:
    return f"call_{name}_{n}"


def _is_synthetic(call_id: str, name: str) -> bool:
    prefix = f"call_{name}_"
    tail = call_id[len(prefix) :]
    return call_id.startswith(prefix) and tail.isascii() and tail.isdigit()


class _CallIds:
    """Ids for the function calls of one body: Gemini's own, or `call_<name>_<n>` where it sent none."""

    def __init__(self) -> None:
        self._minted: dict[str, int] = {}
        self._open: dict[str, list[str]] = {}  # name → ids of calls not answered yet, oldest first

    def _mint(self, name: str) -> str:
        n = self._minted.get(name, 0)
        self._minted[name] = n + 1
        return _synthetic_id(name, n)

    def call(self, name: str, given: str | None) -> str:
        call_id = given or self._mint(name)
        self._open.setdefault(name, []).append(call_id)
        return call_id

    def result(self, name: str, given: str | None) -> str:
        waiting = self._open.get(name, [])
        if given:
            if given in waiting:
                waiting.remove(given)
            return given
        return waiting.pop(0) if waiting else self._mint(name)


# ----- parts: Gemini → canonical ------------------------------------------------------------------------


def _parse_image(part: Mapping[str, Any], param: str) -> Image | None:
    inline = _get(part, "inlineData")
    if inline is not None:
        blob = _obj(inline, f"{param}.inlineData")
        mime = _get(blob, "mimeType")
        data = _get(blob, "data")
        if mime is None:
            raise _missing(f"{param}.inlineData.mimeType")
        if data is None:
            raise _missing(f"{param}.inlineData.data")
        return Image(data=_str(data, f"{param}.inlineData.data"), media_type=_str(mime, f"{param}.inlineData.mimeType"))
    file_data = _get(part, "fileData")
    if file_data is not None:
        ref = _obj(file_data, f"{param}.fileData")
        uri = _get(ref, "fileUri")
        if uri is None:
            raise _missing(f"{param}.fileData.fileUri")
        return Image(
            url=_str(uri, f"{param}.fileData.fileUri"),
            media_type=_opt_str(_get(ref, "mimeType"), f"{param}.fileData.mimeType"),
        )
    return None


def _name(obj: Mapping[str, Any], param: str) -> str:
    name = _get(obj, "name")
    if name is None:
        raise _missing(f"{param}.name")
    text = _str(name, f"{param}.name")
    if not text:
        raise InvalidRequest(f"Invalid '{param}.name': empty string.", param=f"{param}.name", code="invalid_value")
    return text


def _parse_call(raw: Any, param: str, ids: _CallIds) -> ToolCall:
    call = _obj(raw, param)
    name = _name(call, param)
    args = _get(call, "args")
    args = {} if args is None else _obj(args, f"{param}.args")
    call_id = ids.call(name, _opt_str(_get(call, "id"), f"{param}.id"))
    return ToolCall(id=call_id, name=name, arguments=compact_json(args))


def _result_content(response: Mapping[str, Any], has_media: bool) -> tuple[tuple[Text, ...], bool]:
    """The text of a functionResponse's `response` object, and whether it reports an error."""
    if len(response) == 1:
        ((key, value),) = response.items()
        if key in ("result", "error") and isinstance(value, str):
            return (Text(value),), key == "error"
    if not response and has_media:
        return (), False
    return (Text(compact_json(response)),), False


def _parse_result(raw: Any, param: str, ids: _CallIds) -> ToolResult:
    result = _obj(raw, param)
    name = _name(result, param)
    response = _get(result, "response")
    response = {} if response is None else _obj(response, f"{param}.response")
    media: list[Image] = []
    for j, item in enumerate(_opt_list(_get(result, "parts"), f"{param}.parts")):
        item_param = f"{param}.parts[{j}]"
        image = _parse_image(_obj(item, item_param), item_param)
        if image is None:
            raise InvalidRequest(
                f"Invalid '{item_param}': a function response part holds inlineData or fileData.", param=item_param
            )
        media.append(image)
    text, is_error = _result_content(response, bool(media))
    call_id = ids.result(name, _opt_str(_get(result, "id"), f"{param}.id"))
    return ToolResult(call_id=call_id, content=(*text, *media), is_error=is_error)


def _parse_parts(raw_parts: Any, param: str, ids: _CallIds, *, lenient: bool = False) -> list[Part]:
    """Canonical parts of one Gemini `parts` array, in order (functionResponse parts as ToolResults).

    `lenient` (responses) skips parts of kinds we do not translate instead of refusing them."""
    out: list[Part] = []
    for j, raw in enumerate(_list(raw_parts, f"{param}.parts")):
        p = f"{param}.parts[{j}]"
        part = _obj(raw, p)
        signature = _opt_str(_get(part, "thoughtSignature"), f"{p}.thoughtSignature")
        thought = _get(part, "thought")
        thought = False if thought is None else _bool(thought, f"{p}.thought")
        text = _opt_str(_get(part, "text"), f"{p}.text")
        if _get(part, "functionCall") is not None:
            if signature is not None:
                last = out[-1] if out else None
                if isinstance(last, Reasoning) and last.text and last.signature is None and last.redacted is None:
                    out[-1] = Reasoning(text=last.text, signature=signature)
                else:
                    out.append(Reasoning(signature=signature))
            out.append(_parse_call(_get(part, "functionCall"), f"{p}.functionCall", ids))
            continue
        if _get(part, "functionResponse") is not None:
            out.append(_parse_result(_get(part, "functionResponse"), f"{p}.functionResponse", ids))
            continue
        if thought:
            out.append(Reasoning(text=text or "", signature=signature))
            continue
        content: Text | Image | None = Text(text) if text is not None else _parse_image(part, p)
        if content is None:
            if signature is not None:
                out.append(Reasoning(signature=signature))
                continue
            if lenient:
                continue
            for kind in _UNSUPPORTED_PARTS:
                if _get(part, kind) is not None:
                    raise NotSupported(f"'{p}.{kind}' parts are not supported by this gateway.", param=p)
            raise InvalidRequest(
                f"Invalid '{p}': a part must hold text, inlineData, fileData, functionCall or functionResponse.",
                param=p,
                code="invalid_value",
            )
        if signature is not None:
            out.append(Reasoning(signature=signature))
        out.append(content)
    return out


def _turn_messages(role: str, parts: list[Part], param: str) -> list[Message]:
    if role == "model":
        if any(isinstance(p, ToolResult) for p in parts):
            raise InvalidRequest(
                f"Invalid '{param}': functionResponse parts belong in a user turn.", param=param, code="invalid_value"
            )
        return [Message(Role.ASSISTANT, tuple(parts))]
    if any(isinstance(p, ToolCall) for p in parts):
        raise InvalidRequest(
            f"Invalid '{param}': functionCall parts belong in a model turn.", param=param, code="invalid_value"
        )
    messages: list[Message] = []
    run: list[Part] = []
    for part in parts:
        if isinstance(part, ToolResult):
            if run:
                messages.append(Message(Role.USER, tuple(run)))
                run = []
            messages.append(Message(Role.TOOL, (part,)))
        else:
            run.append(part)
    if run or not messages:
        messages.append(Message(Role.USER, tuple(run)))
    return messages


# ----- parts: canonical → Gemini ------------------------------------------------------------------------


def _mime_for(url: str) -> str:
    path = url.split("?", 1)[0].split("#", 1)[0]
    suffix = path.rsplit(".", 1)[-1].lower() if "." in path.rsplit("/", 1)[-1] else ""
    return _SUFFIX_MIME_TYPES.get(suffix, DEFAULT_MIME_TYPE)


def _render_image(image: Image, param: str) -> dict[str, Any]:
    if image.data is not None:
        return {"inlineData": {"mimeType": image.media_type or DEFAULT_MIME_TYPE, "data": image.data}}
    if image.url is None:
        raise InvalidRequest(f"Invalid '{param}': an image needs a url or data.", param=param, code="invalid_value")
    if image.url.startswith("data:") and ";base64," in image.url:
        header, data = image.url[5:].split(";base64,", 1)
        return {"inlineData": {"mimeType": image.media_type or header or DEFAULT_MIME_TYPE, "data": data}}
    return {"fileData": {"mimeType": image.media_type or _mime_for(image.url), "fileUri": image.url}}


def _args(call: ToolCall, param: str) -> dict[str, Any]:
    if not call.arguments.strip():
        return {}
    try:
        args = json.loads(call.arguments)
    except ValueError as exc:
        raise InvalidRequest(
            f"Invalid '{param}.arguments': not valid JSON ({exc}).", param=f"{param}.arguments", code="invalid_value"
        ) from exc
    if not isinstance(args, dict):
        raise InvalidRequest(
            f"Invalid '{param}.arguments': Gemini takes function arguments as a JSON object.",
            param=f"{param}.arguments",
            code="invalid_value",
        )
    return args


def _response_object(text: str, has_media: bool) -> dict[str, Any]:
    """A tool's text as a functionResponse `response`: the object itself when the text is exactly that object's
    compact JSON (and would not read back as something else), else `{"result": text}`."""
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        if isinstance(value, dict) and compact_json(value) == text:
            ambiguous = (
                len(value) == 1
                and next(iter(value)) in ("result", "error")
                and isinstance(next(iter(value.values())), str)
            ) or (not value and has_media)
            if not ambiguous:
                return value
    return {"result": text}


def _render_result(result: ToolResult, names: Mapping[str, str], param: str) -> dict[str, Any]:
    name = names.get(result.call_id)
    if name is None:
        raise InvalidRequest(
            f"Invalid '{param}': no earlier tool call has id {result.call_id!r}; Gemini needs the function's name.",
            param=param,
            code="invalid_value",
        )
    texts = [p.text for p in result.content if isinstance(p, Text)]
    media = [_render_image(p, param) for p in result.content if isinstance(p, Image)]
    text = "".join(texts)
    if result.is_error:
        response: dict[str, Any] = {"error": text}
    elif not texts and media:
        response = {}
    else:
        response = _response_object(text, bool(media))
    out: dict[str, Any] = {}
    if not _is_synthetic(result.call_id, name):
        out["id"] = result.call_id
    out["name"] = name
    out["response"] = response
    if media:
        out["parts"] = media
    return {"functionResponse": out}


def _render_parts(parts: Sequence[Part], names: dict[str, str], param: str) -> list[dict[str, Any]]:
    """Gemini parts for canonical parts; `names` (call id → function name) learns each ToolCall on the way."""
    out: list[dict[str, Any]] = []
    signature: str | None = None  # a Reasoning's signature waiting for the part it rides on
    for k, part in enumerate(parts):
        after = parts[k + 1] if k + 1 < len(parts) else None
        rendered: dict[str, Any]
        if isinstance(part, Reasoning):
            if part.redacted is not None and not part.text and part.signature is None:
                continue
            rides = isinstance(after, ToolCall) or (not part.text and isinstance(after, _SIGNATURE_CARRIERS))
            if part.signature is not None and rides:
                signature = part.signature
                if not part.text:
                    continue
                rendered = {"thought": True, "text": part.text}
            else:
                rendered = {"thought": True, "text": part.text}
                if part.signature is not None:
                    rendered["thoughtSignature"] = part.signature
            out.append(rendered)
            continue
        if isinstance(part, Text):
            rendered = {"text": part.text}
        elif isinstance(part, Image):
            rendered = _render_image(part, f"{param}.parts[{k}]")
        elif isinstance(part, ToolCall):
            names[part.id] = part.name
            call: dict[str, Any] = {}
            if not _is_synthetic(part.id, part.name):
                call["id"] = part.id
            call["name"] = part.name
            call["args"] = _args(part, f"{param}.parts[{k}]")
            rendered = {"functionCall": call}
        else:
            rendered = _render_result(part, names, param)
        if signature is not None:
            rendered["thoughtSignature"] = signature
            signature = None
        out.append(rendered)
    return out


# ----- requests -----------------------------------------------------------------------------------------


def _parse_tools(raw: Any, ext: dict[str, Any]) -> tuple[Tool, ...]:
    tools: list[Tool] = []
    others: list[dict[str, Any]] = []
    for i, entry in enumerate(_opt_list(raw, "tools")):
        p = f"tools[{i}]"
        entry = _obj(entry, p)
        declarations = _get(entry, "functionDeclarations")
        for j, decl in enumerate(_opt_list(declarations, f"{p}.functionDeclarations")):
            dp = f"{p}.functionDeclarations[{j}]"
            decl = _obj(decl, dp)
            params = _get(decl, "parameters")
            if params is None:
                params = _get(decl, "parametersJsonSchema")
            tools.append(
                Tool(
                    name=_name(decl, dp),
                    description=_opt_str(_get(decl, "description"), f"{dp}.description"),
                    parameters=_plain(_obj(params, f"{dp}.parameters")) if params is not None else {},
                )
            )
        rest = _rest(entry, ["functionDeclarations"])
        if rest:
            others.append(rest)
    if others:
        ext[_EXT + "tools"] = others
    return tuple(tools)


def _parse_tool_config(raw: Any, ext: dict[str, Any]) -> ToolChoice | None:
    config = _obj(raw, "toolConfig")
    rest = _rest(config, ["functionCallingConfig"])
    choice: ToolChoice | None = None
    calling = _get(config, "functionCallingConfig")
    if calling is not None:
        calling = _obj(calling, "toolConfig.functionCallingConfig")
        mode = _opt_str(_get(calling, "mode"), "toolConfig.functionCallingConfig.mode")
        names_raw = _get(calling, "allowedFunctionNames")
        names_param = "toolConfig.functionCallingConfig.allowedFunctionNames"
        names = [_str(n, f"{names_param}[{k}]") for k, n in enumerate(_opt_list(names_raw, names_param))]
        consumed: list[str] = []
        canonical_mode = _MODES_IN.get((mode or "").upper())
        if canonical_mode == "required" and len(names) == 1:
            choice = ToolChoice(mode="tool", name=names[0])
            consumed = ["mode", "allowedFunctionNames"]
        elif canonical_mode is not None and (canonical_mode == "required" or not names):
            choice = ToolChoice(mode=canonical_mode)
            consumed = ["mode"]
        calling_rest = _rest(calling, consumed)
        if calling_rest:
            rest["functionCallingConfig"] = calling_rest
    if rest:
        ext[_EXT + "toolConfig"] = rest
    return choice


def _parse_thinking(raw: Any, param: str) -> tuple[Thinking, dict[str, Any]]:
    config = _obj(raw, param)
    budget_raw = _get(config, "thinkingBudget")
    level = _opt_str(_get(config, "thinkingLevel"), f"{param}.thinkingLevel")
    include_raw = _get(config, "includeThoughts")
    include = None if include_raw is None else _bool(include_raw, f"{param}.includeThoughts")
    if budget_raw is not None:
        budget = _int(budget_raw, f"{param}.thinkingBudget")
        thinking = (
            Thinking(enabled=False) if budget == 0 else Thinking(budget_tokens=budget) if budget > 0 else Thinking()
        )
    elif level and level.upper() != "THINKING_LEVEL_UNSPECIFIED":
        thinking = Thinking(effort=level.lower())
    else:
        thinking = Thinking()
    rest = _rest(config, ["thinkingBudget", "thinkingLevel", "includeThoughts"])
    rendered_include = True if thinking.enabled else None
    if include != rendered_include:
        rest["includeThoughts"] = bool(include)
    return thinking, rest


def _output_format(config: Mapping[str, Any], consumed: list[str]) -> OutputFormat | None:
    mime = _opt_str(_get(config, "responseMimeType"), "generationConfig.responseMimeType")
    if mime == "text/plain":
        consumed.append("responseMimeType")
        return OutputFormat(kind="text")
    if mime != "application/json":
        return None
    consumed.append("responseMimeType")
    for field in ("responseSchema", "responseJsonSchema"):
        schema = _get(config, field)
        if schema is not None:
            consumed.append(field)
            return OutputFormat(kind="json_schema", schema=_plain(_obj(schema, f"generationConfig.{field}")))
    return OutputFormat(kind="json_object")


def parse_request(body: Mapping[str, Any], *, model: str | None = None) -> ChatRequest:
    """A Gemini generateContent body as a canonical request; `model` is the id from the URL path."""
    body = _obj(body, "body")
    if model is None:
        named = _get(body, "model")
        model = named.removeprefix("models/") if isinstance(named, str) else ""
    ext: dict[str, Any] = {}
    ids = _CallIds()
    messages: list[Message] = []

    system = _get(body, "systemInstruction")
    if system is not None:
        system = _obj(system, "systemInstruction")
        parts = _parse_parts(_opt_list(_get(system, "parts"), "systemInstruction.parts"), "systemInstruction", ids)
        for k, part in enumerate(parts):
            if not isinstance(part, Text | Image):
                p = f"systemInstruction.parts[{k}]"
                raise InvalidRequest(f"Invalid '{p}': system instructions hold text and media only.", param=p)
        if parts:
            messages.append(Message(Role.SYSTEM, tuple(parts)))

    contents = _get(body, "contents")
    if contents is None:
        raise _missing("contents")
    if not _list(contents, "contents"):
        raise InvalidRequest("Invalid 'contents': must not be empty.", param="contents", code="empty_array")
    for i, raw in enumerate(contents):
        p = f"contents[{i}]"
        content = _obj(raw, p)
        role = _get(content, "role")
        role = "user" if role in (None, "", "function") else _str(role, f"{p}.role")
        if role not in ("user", "model"):
            raise InvalidRequest(
                f"Invalid value for '{p}.role': {role!r}. Supported values are: 'user' and 'model'.",
                param=f"{p}.role",
                code="invalid_value",
            )
        raw_parts = _get(content, "parts")
        if raw_parts is None:
            raise _missing(f"{p}.parts")
        messages.extend(_turn_messages(role, _parse_parts(raw_parts, p, ids), p))

    tools = _parse_tools(_get(body, "tools"), ext)
    tool_config = _get(body, "toolConfig")
    tool_choice = None if tool_config is None else _parse_tool_config(tool_config, ext)

    fields: dict[str, Any] = {}
    config_raw = _get(body, "generationConfig")
    if config_raw is not None:
        config = _obj(config_raw, "generationConfig")
        consumed = ["temperature", "topP", "topK", "maxOutputTokens", "stopSequences", "thinkingConfig"]
        for name, key, read in (
            ("temperature", "temperature", _num),
            ("topP", "top_p", _num),
            ("topK", "top_k", _int),
            ("maxOutputTokens", "max_tokens", _int),
        ):
            value = _get(config, name)
            if value is not None:
                fields[key] = read(value, f"generationConfig.{name}")
        stop = _get(config, "stopSequences")
        if stop is not None:
            fields["stop"] = tuple(
                _str(s, f"generationConfig.stopSequences[{k}]")
                for k, s in enumerate(_list(stop, "generationConfig.stopSequences"))
            )
        fields["output_format"] = _output_format(config, consumed)
        rest = _rest(config, consumed)
        thinking_raw = _get(config, "thinkingConfig")
        if thinking_raw is not None:
            fields["thinking"], thinking_rest = _parse_thinking(thinking_raw, "generationConfig.thinkingConfig")
            if thinking_rest:
                rest["thinkingConfig"] = thinking_rest
        if rest:
            ext[_EXT + "generationConfig"] = rest

    for key, value in _rest(
        body, ["contents", "systemInstruction", "tools", "toolConfig", "generationConfig", "model"]
    ).items():
        ext[_EXT + key] = value
    return ChatRequest(
        model=model, messages=tuple(messages), tools=tools, tool_choice=tool_choice, extensions=ext, **fields
    )


def _render_tool_choice(choice: ToolChoice) -> dict[str, Any]:
    calling: dict[str, Any] = {"mode": _MODES_OUT[choice.mode]}
    if choice.mode == "tool" and choice.name:
        calling["allowedFunctionNames"] = [choice.name]
    return {"functionCallingConfig": calling}


def _render_generation_config(req: ChatRequest) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if req.temperature is not None:
        config["temperature"] = req.temperature
    if req.top_p is not None:
        config["topP"] = req.top_p
    if req.top_k is not None:
        config["topK"] = req.top_k
    if req.max_tokens is not None:
        config["maxOutputTokens"] = req.max_tokens
    if req.stop:
        config["stopSequences"] = list(req.stop)
    fmt = req.output_format
    if fmt is not None:
        if fmt.kind == "text":
            config["responseMimeType"] = "text/plain"
        else:
            config["responseMimeType"] = "application/json"
            if fmt.kind == "json_schema" and fmt.schema is not None:
                config["responseSchema"] = _plain(fmt.schema)
    thinking = req.thinking
    if thinking is not None:
        if not thinking.enabled:
            config["thinkingConfig"] = {"thinkingBudget": 0}
        else:
            budget = thinking.budget_tokens
            if budget is None and thinking.effort is not None:
                budget = budget_for(thinking.effort)
            config["thinkingConfig"] = (
                {"includeThoughts": True}
                if budget is None
                else {
                    "thinkingBudget": budget,
                    "includeThoughts": True,
                }
            )
    return config


def _apply_extensions(body: dict[str, Any], extensions: Mapping[str, Any], skip: Iterable[str] = ()) -> None:
    skipped = set(skip)
    for key, value in extensions.items():
        if not key.startswith(_EXT) or key[len(_EXT) :] in skipped:
            continue
        field = key[len(_EXT) :]
        body[field] = _merge(body[field], value) if field in body else _plain(value)


def render_request(req: ChatRequest) -> dict[str, Any]:
    """A canonical request as a Gemini generateContent body (the model goes in the URL, not here)."""
    names: dict[str, str] = {}
    system: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    tool_turn: dict[str, Any] | None = None  # the open user turn of tool results
    for i, message in enumerate(req.messages):
        param = f"messages[{i}]"
        parts = _render_parts(message.parts, names, param)
        if message.role in (Role.SYSTEM, Role.DEVELOPER):
            system.extend(parts)
        elif message.role is Role.TOOL:
            if tool_turn is None:
                tool_turn = {"role": "user", "parts": parts}
                contents.append(tool_turn)
            else:
                tool_turn["parts"].extend(parts)
        elif message.role is Role.USER and tool_turn is not None:
            tool_turn["parts"].extend(parts)
            tool_turn = None
        else:
            tool_turn = None
            contents.append({"role": "model" if message.role is Role.ASSISTANT else "user", "parts": parts})
    if not contents and system:
        contents, system = [{"role": "user", "parts": system}], []

    body: dict[str, Any] = {"contents": contents}
    if system:
        body["systemInstruction"] = {"parts": system}
    if req.tools:
        declarations = []
        for tool in req.tools:
            decl: dict[str, Any] = {"name": tool.name}
            if tool.description is not None:
                decl["description"] = tool.description
            if tool.parameters:
                decl["parameters"] = _plain(tool.parameters)
            declarations.append(decl)
        body["tools"] = [{"functionDeclarations": declarations}]
    if req.tool_choice is not None:
        body["toolConfig"] = _render_tool_choice(req.tool_choice)
    config = _render_generation_config(req)
    if config:
        body["generationConfig"] = config
    _apply_extensions(body, req.extensions)
    return body


# ----- responses ----------------------------------------------------------------------------------------


def _usage(raw: Any, param: str) -> tuple[Usage, dict[str, Any]]:
    meta = _obj(raw, param)
    prompt = _count(meta, "promptTokenCount", param)
    candidates = _count(meta, "candidatesTokenCount", param)
    thoughts = _count(meta, "thoughtsTokenCount", param)
    usage = Usage(
        input=prompt,
        output=candidates + thoughts,
        cached=_count(meta, "cachedContentTokenCount", param),
        reasoning=thoughts,
    )
    tool_use = _get(meta, "toolUsePromptTokenCount")
    rendered = _render_usage(usage, tool_use if isinstance(tool_use, int) else 0)
    rest = {k: v for k, v in _rest(meta, ()).items() if k not in rendered or rendered[k] != v}
    return usage, rest


def _render_usage(usage: Usage, tool_use: int = 0) -> dict[str, Any]:
    counts = {
        "promptTokenCount": usage.input,
        "candidatesTokenCount": max(usage.output - usage.reasoning, 0),
        "thoughtsTokenCount": usage.reasoning,
        "cachedContentTokenCount": usage.cached,
        "totalTokenCount": usage.input + usage.output + tool_use,
    }
    return {k: v for k, v in counts.items() if v}


def _finish_out(finish: FinishReason) -> str:
    return _FINISH_OUT.get(finish, "OTHER")


def parse_response(body: Mapping[str, Any], *, model: str | None = None) -> ChatResponse:
    """A Gemini generateContent answer as a canonical response (the first candidate)."""
    body = _obj(body, "body")
    ext: dict[str, Any] = {}
    parts: list[Part] = []
    finish = FinishReason.UNKNOWN
    candidates = _opt_list(_get(body, "candidates"), "candidates")
    if candidates:
        candidate = _obj(candidates[0], "candidates[0]")
        consumed = ["content"]
        content_rest: dict[str, Any] = {}
        content_raw = _get(candidate, "content")
        if content_raw is not None:
            content = _obj(content_raw, "candidates[0].content")
            raw_parts = _get(content, "parts")
            if raw_parts:
                found = _parse_parts(raw_parts, "candidates[0].content", _CallIds(), lenient=True)
                parts = [p for p in found if not isinstance(p, ToolResult)]
                content_rest = _rest(content, ["parts", "role"] if _get(content, "role") == "model" else ["parts"])
            else:
                content_rest = _rest(content, [])
        raw_finish = _get(candidate, "finishReason")
        if raw_finish is not None:
            finish = _FINISH_IN.get(_str(raw_finish, "candidates[0].finishReason"), FinishReason.UNKNOWN)
            if finish is FinishReason.STOP and any(isinstance(p, ToolCall) for p in parts):
                finish = FinishReason.TOOL_CALLS
            if _finish_out(finish) == raw_finish:
                consumed.append("finishReason")
        rest = _rest(candidate, consumed)
        if content_rest:
            rest["content"] = content_rest
        if rest:
            ext[_EXT + "candidate"] = rest
        if len(candidates) > 1:
            ext[_EXT + "candidates"] = list(candidates[1:])
    else:
        ext[_EXT + "candidates"] = []
        feedback = _get(body, "promptFeedback")
        if isinstance(feedback, Mapping) and _get(feedback, "blockReason"):
            finish = FinishReason.CONTENT_FILTER

    usage: Usage | None = None
    usage_raw = _get(body, "usageMetadata")
    if usage_raw is not None:
        usage, usage_rest = _usage(usage_raw, "usageMetadata")
        if usage_rest:
            ext[_EXT + "usageMetadata"] = usage_rest

    version = _opt_str(_get(body, "modelVersion"), "modelVersion")
    response_id = _opt_str(_get(body, "responseId"), "responseId")
    for key, value in _rest(body, ["candidates", "usageMetadata", "modelVersion", "responseId"]).items():
        ext[_EXT + key] = value
    return ChatResponse(
        id=response_id or "",
        model=version or model or "",
        parts=tuple(parts),
        finish_reason=finish,
        usage=usage,
        extensions=ext,
    )


def render_response(resp: ChatResponse) -> dict[str, Any]:
    """A canonical response as a Gemini generateContent answer with one candidate."""
    extra_candidates = resp.extensions.get(_EXT + "candidates")
    body: dict[str, Any] = {}
    if extra_candidates != []:
        candidate: dict[str, Any] = {}
        parts = _render_parts(resp.parts, {}, "parts")
        if parts:
            candidate["content"] = {"role": "model", "parts": parts}
        candidate["finishReason"] = _finish_out(resp.finish_reason)
        extra = resp.extensions.get(_EXT + "candidate")
        if extra:
            candidate = _merge(candidate, extra)
        body["candidates"] = [candidate, *_plain(extra_candidates or [])]
    usage_extra = resp.extensions.get(_EXT + "usageMetadata") or {}
    if resp.usage is not None:
        tool_use = usage_extra.get("toolUsePromptTokenCount") if isinstance(usage_extra, Mapping) else None
        body["usageMetadata"] = _render_usage(resp.usage, tool_use if isinstance(tool_use, int) else 0)
    if resp.model:
        body["modelVersion"] = resp.model
    if resp.id:
        body["responseId"] = resp.id
    _apply_extensions(body, resp.extensions, skip=("candidate", "candidates"))
    return body


def finish_reason_out(finish: FinishReason) -> str:
    """The Gemini `finishReason` for a canonical one (TOOL_CALLS is STOP: calls speak for themselves)."""
    return _finish_out(finish)


def usage_metadata(usage: Usage) -> dict[str, Any]:
    """`usageMetadata` for canonical usage (zero counts left out, as Gemini does)."""
    return _render_usage(usage)


def usage_from_gemini(usage_metadata: object) -> Usage | None:
    """Canonical usage of a `usageMetadata` object; None when there is none or it cannot be read."""
    if not isinstance(usage_metadata, Mapping):
        return None
    try:
        return _usage(usage_metadata, "usageMetadata")[0]
    except InvalidRequest:
        return None  # an answer with odd counts is still the client's to have
