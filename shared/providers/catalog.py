"""The built-in provider catalogue: one `ProviderSpec` row per upstream, and nothing else.

This module is data. Routing, translation and credential handling read these rows; none of them branch on a
provider's name. A behaviour that cannot be expressed as a field belongs in `shared.providers.quirks` as a named
pure function, never as an `if provider == ...` here or anywhere else.

Adding a provider
-----------------
1. Confirm the upstream's base URL, wire format and auth scheme from its own API documentation. If the URL cannot be
   confirmed, leave the provider out: a wrong URL is worse than a missing row.
2. Append a `ProviderSpec` to `PROVIDERS` in the section it belongs to (API key, local, subscription/OAuth).
   - `id` is stored on connections, so never rename an existing one; `alias` is the short model prefix users type.
   - `alias`, `id` and every entry of `aliases` must be lowercase, match ``^[a-z0-9][a-z0-9._-]*$`` and be unique
     across the whole catalogue (`by_prefix` raises on a clash; the tests check it too).
   - `base_url` has no trailing slash and includes the version path, so an OpenAI-format chat call goes to
     ``base_url + "/chat/completions"``.
   - `models` lists a few real upstream model ids (without our prefix) as defaults; users can add more.
3. Run ``pytest tests/shared/providers``.

Where the facts come from
-------------------------
- The OmniRoute seed README and user guide: which providers exist, their prefixes (``cc``, ``cx``, ``gc``, ``gh``,
  ``kr``, ``qw``, ``if``, ``or``, ``ds``, ``pplx`` ...) and example models.
- The project notes ``omniroute-internals.md`` (section 2, provider registry) and ``oauth-providers.md``
  (subscription upstream hosts, formats, required headers, and which free OAuth routes have ended).
- Each provider's public API documentation (the page in `docs_url`) for base URLs and current model ids.

Deliberately absent: Vertex AI (service-account auth and a per-project, per-region URL do not fit a static row),
Deepgram and AssemblyAI (audio-only, with credential schemes the `AuthHeader` enum does not model), and Cursor
(protobuf transport).
"""

from __future__ import annotations

import functools

from shared.providers.spec import (
    AuthHeader,
    AuthKind,
    Capability,
    ProviderSpec,
    WireFormat,
)

__all__ = ["PROVIDERS", "by_prefix", "get_provider"]

_ANTHROPIC_VERSION = ("anthropic-version", "2023-06-01")


def _caps(*extra: Capability) -> frozenset[Capability]:
    """Every chat row can chat and stream; rows add what else they support."""
    return frozenset((Capability.CHAT, Capability.STREAMING, *extra))


# --------------------------------------------------------------------------------------------------------------
# API-key providers
# --------------------------------------------------------------------------------------------------------------
_API_KEY_ROWS: tuple[ProviderSpec, ...] = (
    ProviderSpec(
        id="openai",
        alias="openai",
        name="OpenAI",
        base_url="https://api.openai.com/v1",
        wire_format=WireFormat.OPENAI,
        auth=AuthKind.API_KEY,
        auth_header=AuthHeader.BEARER,
        capabilities=_caps(
            Capability.TOOLS,
            Capability.VISION,
            Capability.REASONING,
            Capability.JSON_MODE,
            Capability.EMBEDDINGS,
            Capability.IMAGES,
            Capability.AUDIO,
        ),
        models=("gpt-5.4", "gpt-5.4-mini", "gpt-5.2", "gpt-5-mini"),
        docs_url="https://platform.openai.com/docs/api-reference",
    ),
    ProviderSpec(
        id="anthropic",
        alias="anthropic",
        name="Anthropic",
        base_url="https://api.anthropic.com/v1",
        wire_format=WireFormat.ANTHROPIC,
        auth=AuthKind.API_KEY,
        auth_header=AuthHeader.X_API_KEY,
        capabilities=_caps(Capability.TOOLS, Capability.VISION, Capability.REASONING),
        models=("claude-opus-4-6", "claude-sonnet-4-6", "claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001"),
        extra_headers=(_ANTHROPIC_VERSION,),
        docs_url="https://docs.anthropic.com/en/api/overview",
    ),
    ProviderSpec(
        id="gemini",
        alias="gemini",
        name="Google Gemini API",
        base_url="https://generativelanguage.googleapis.com/v1beta",
        wire_format=WireFormat.GEMINI,
        auth=AuthKind.API_KEY,
        auth_header=AuthHeader.X_GOOG_API_KEY,
        capabilities=_caps(
            Capability.TOOLS,
            Capability.VISION,
            Capability.REASONING,
            Capability.JSON_MODE,
            Capability.EMBEDDINGS,
            Capability.IMAGES,
            Capability.AUDIO,
        ),
        models=("gemini-3.5-flash", "gemini-3.1-pro-preview", "gemini-2.5-pro", "gemini-2.5-flash"),
        docs_url="https://ai.google.dev/gemini-api/docs",
        aliases=("google",),
    ),
    ProviderSpec(
        id="openrouter",
        alias="or",
        name="OpenRouter",
        base_url="https://openrouter.ai/api/v1",
        wire_format=WireFormat.OPENAI,
        auth=AuthKind.API_KEY,
        auth_header=AuthHeader.BEARER,
        capabilities=_caps(Capability.TOOLS, Capability.VISION, Capability.REASONING, Capability.JSON_MODE),
        models=("anthropic/claude-sonnet-4.5", "google/gemini-2.5-pro", "openai/gpt-5", "deepseek/deepseek-chat"),
        docs_url="https://openrouter.ai/docs",
    ),
    ProviderSpec(
        id="deepseek",
        alias="ds",
        name="DeepSeek",
        base_url="https://api.deepseek.com/v1",
        wire_format=WireFormat.OPENAI,
        auth=AuthKind.API_KEY,
        auth_header=AuthHeader.BEARER,
        capabilities=_caps(Capability.TOOLS, Capability.REASONING, Capability.JSON_MODE),
        models=("deepseek-chat", "deepseek-reasoner"),
        docs_url="https://api-docs.deepseek.com",
    ),
    ProviderSpec(
        id="groq",
        alias="groq",
        name="Groq",
        base_url="https://api.groq.com/openai/v1",
        wire_format=WireFormat.OPENAI,
        auth=AuthKind.API_KEY,
        auth_header=AuthHeader.BEARER,
        capabilities=_caps(Capability.TOOLS, Capability.REASONING, Capability.JSON_MODE, Capability.AUDIO),
        models=("llama-3.3-70b-versatile", "openai/gpt-oss-120b", "openai/gpt-oss-20b", "llama-3.1-8b-instant"),
        docs_url="https://console.groq.com/docs",
    ),
    ProviderSpec(
        id="xai",
        alias="xai",
        name="xAI (Grok API)",
        base_url="https://api.x.ai/v1",
        wire_format=WireFormat.OPENAI,
        auth=AuthKind.API_KEY,
        auth_header=AuthHeader.BEARER,
        capabilities=_caps(Capability.TOOLS, Capability.VISION, Capability.REASONING, Capability.JSON_MODE),
        models=("grok-4", "grok-4-1-fast-reasoning", "grok-code-fast-1"),
        docs_url="https://docs.x.ai",
        aliases=("grok",),
    ),
    ProviderSpec(
        id="mistral",
        alias="mistral",
        name="Mistral AI",
        base_url="https://api.mistral.ai/v1",
        wire_format=WireFormat.OPENAI,
        auth=AuthKind.API_KEY,
        auth_header=AuthHeader.BEARER,
        capabilities=_caps(
            Capability.TOOLS,
            Capability.VISION,
            Capability.REASONING,
            Capability.JSON_MODE,
            Capability.EMBEDDINGS,
        ),
        models=("mistral-medium-latest", "mistral-large-latest", "codestral-latest", "devstral-medium-latest"),
        docs_url="https://docs.mistral.ai",
    ),
    ProviderSpec(
        id="perplexity",
        alias="pplx",
        name="Perplexity (Sonar)",
        # Perplexity's API has no version segment: chat is https://api.perplexity.ai/chat/completions.
        base_url="https://api.perplexity.ai",
        wire_format=WireFormat.OPENAI,
        auth=AuthKind.API_KEY,
        auth_header=AuthHeader.BEARER,
        capabilities=_caps(Capability.REASONING, Capability.JSON_MODE),
        models=("sonar", "sonar-pro", "sonar-reasoning-pro"),
        docs_url="https://docs.perplexity.ai",
    ),
    ProviderSpec(
        id="together",
        alias="together",
        name="Together AI",
        base_url="https://api.together.xyz/v1",
        wire_format=WireFormat.OPENAI,
        auth=AuthKind.API_KEY,
        auth_header=AuthHeader.BEARER,
        capabilities=_caps(Capability.TOOLS, Capability.JSON_MODE, Capability.EMBEDDINGS, Capability.IMAGES),
        models=("meta-llama/Llama-3.3-70B-Instruct-Turbo", "openai/gpt-oss-120b", "deepseek-ai/DeepSeek-V3.1"),
        docs_url="https://docs.together.ai",
        aliases=("togetherai",),
    ),
    ProviderSpec(
        id="fireworks",
        alias="fireworks",
        name="Fireworks AI",
        base_url="https://api.fireworks.ai/inference/v1",
        wire_format=WireFormat.OPENAI,
        auth=AuthKind.API_KEY,
        auth_header=AuthHeader.BEARER,
        capabilities=_caps(Capability.TOOLS, Capability.JSON_MODE, Capability.EMBEDDINGS, Capability.IMAGES),
        models=(
            "accounts/fireworks/models/deepseek-v3p1",
            "accounts/fireworks/models/gpt-oss-120b",
            "accounts/fireworks/models/kimi-k2-instruct-0905",
        ),
        docs_url="https://docs.fireworks.ai",
    ),
    ProviderSpec(
        id="cerebras",
        alias="cerebras",
        name="Cerebras Inference",
        base_url="https://api.cerebras.ai/v1",
        wire_format=WireFormat.OPENAI,
        auth=AuthKind.API_KEY,
        auth_header=AuthHeader.BEARER,
        capabilities=_caps(Capability.TOOLS, Capability.REASONING, Capability.JSON_MODE),
        models=("gpt-oss-120b", "gemma-4-31b"),
        docs_url="https://inference-docs.cerebras.ai",
    ),
    ProviderSpec(
        id="cohere",
        alias="cohere",
        name="Cohere",
        # Cohere's own v2 shape: chat is POST {base}/chat.
        base_url="https://api.cohere.com/v2",
        wire_format=WireFormat.COHERE,
        auth=AuthKind.API_KEY,
        auth_header=AuthHeader.BEARER,
        capabilities=_caps(Capability.TOOLS, Capability.JSON_MODE, Capability.EMBEDDINGS, Capability.RERANK),
        models=("command-a-03-2025", "command-r-plus-08-2024", "command-r7b-12-2024"),
        docs_url="https://docs.cohere.com/reference/chat",
    ),
    ProviderSpec(
        id="nvidia",
        alias="nvidia",
        name="NVIDIA NIM",
        base_url="https://integrate.api.nvidia.com/v1",
        wire_format=WireFormat.OPENAI,
        auth=AuthKind.API_KEY,
        auth_header=AuthHeader.BEARER,
        capabilities=_caps(Capability.TOOLS, Capability.REASONING, Capability.EMBEDDINGS),
        models=("meta/llama-3.3-70b-instruct", "openai/gpt-oss-120b", "deepseek-ai/deepseek-r1"),
        docs_url="https://docs.api.nvidia.com/nim/reference",
        aliases=("nim",),
    ),
    ProviderSpec(
        id="glm",
        alias="glm",
        name="Z.ai GLM (Coding Plan)",
        # The Coding Plan's OpenAI-compatible endpoint; the general pay-per-token API is .../api/paas/v4.
        base_url="https://api.z.ai/api/coding/paas/v4",
        wire_format=WireFormat.OPENAI,
        auth=AuthKind.API_KEY,
        auth_header=AuthHeader.BEARER,
        capabilities=_caps(Capability.TOOLS, Capability.REASONING),
        models=("glm-5.1", "glm-5", "glm-4.7", "glm-4.5-air"),
        docs_url="https://docs.z.ai/devpack/tool/others",
        aliases=("zai",),
    ),
    ProviderSpec(
        id="minimax",
        alias="minimax",
        name="MiniMax",
        # The Anthropic-compatible endpoint (as OmniRoute uses it) keeps thinking as real thinking blocks;
        # MiniMax documents Bearer auth on it. Its OpenAI-compatible twin is https://api.minimax.io/v1.
        base_url="https://api.minimax.io/anthropic/v1",
        wire_format=WireFormat.ANTHROPIC,
        auth=AuthKind.API_KEY,
        auth_header=AuthHeader.BEARER,
        capabilities=_caps(Capability.TOOLS, Capability.REASONING),
        models=("MiniMax-M2.7", "MiniMax-M2.5", "MiniMax-M2.1"),
        extra_headers=(_ANTHROPIC_VERSION,),
        docs_url="https://platform.minimax.io/docs",
    ),
    ProviderSpec(
        id="kimi",
        alias="kimi",
        name="Moonshot AI (Kimi API)",
        base_url="https://api.moonshot.ai/v1",
        wire_format=WireFormat.OPENAI,
        auth=AuthKind.API_KEY,
        auth_header=AuthHeader.BEARER,
        capabilities=_caps(Capability.TOOLS, Capability.VISION, Capability.REASONING, Capability.JSON_MODE),
        models=("kimi-k2.6", "kimi-k2.5"),
        docs_url="https://platform.moonshot.ai/docs",
        aliases=("moonshot",),
    ),
    # Qwen through Alibaba Cloud Model Studio (DashScope) in OpenAI-compatible mode, international region.
    # Prefix "qw" and id "qwen" belong to the (retired) Qwen OAuth row below, so this paid API-key route gets its
    # own id/alias; "qwen-api" is accepted as a readable extra prefix.
    ProviderSpec(
        id="dashscope",
        alias="dashscope",
        name="Qwen via DashScope (Alibaba Cloud Model Studio)",
        base_url="https://dashscope-intl.aliyuncs.com/compatible-mode/v1",
        wire_format=WireFormat.OPENAI,
        auth=AuthKind.API_KEY,
        auth_header=AuthHeader.BEARER,
        capabilities=_caps(
            Capability.TOOLS,
            Capability.VISION,
            Capability.REASONING,
            Capability.JSON_MODE,
            Capability.EMBEDDINGS,
        ),
        models=("qwen-plus", "qwen-max", "qwen-turbo", "qwen3-coder-plus"),
        docs_url="https://www.alibabacloud.com/help/en/model-studio/compatibility-of-openai-with-dashscope",
        aliases=("qwen-api",),
    ),
    ProviderSpec(
        id="siliconflow",
        alias="siliconflow",
        name="SiliconFlow",
        # Global endpoint; mainland-China accounts use https://api.siliconflow.cn/v1.
        base_url="https://api.siliconflow.com/v1",
        wire_format=WireFormat.OPENAI,
        auth=AuthKind.API_KEY,
        auth_header=AuthHeader.BEARER,
        capabilities=_caps(Capability.TOOLS, Capability.REASONING, Capability.EMBEDDINGS, Capability.RERANK),
        models=("deepseek-ai/DeepSeek-V4-Pro", "deepseek-ai/DeepSeek-R1", "Qwen/Qwen2.5-Coder-32B-Instruct"),
        docs_url="https://docs.siliconflow.com",
    ),
    ProviderSpec(
        id="hyperbolic",
        alias="hyperbolic",
        name="Hyperbolic",
        base_url="https://api.hyperbolic.xyz/v1",
        wire_format=WireFormat.OPENAI,
        auth=AuthKind.API_KEY,
        auth_header=AuthHeader.BEARER,
        capabilities=_caps(Capability.TOOLS),
        models=("deepseek-ai/DeepSeek-V3", "Qwen/Qwen2.5-72B-Instruct", "openai/gpt-oss-120b"),
        docs_url="https://docs.hyperbolic.xyz",
    ),
    ProviderSpec(
        id="novita",
        alias="novita",
        name="Novita AI",
        base_url="https://api.novita.ai/openai/v1",
        wire_format=WireFormat.OPENAI,
        auth=AuthKind.API_KEY,
        auth_header=AuthHeader.BEARER,
        capabilities=_caps(Capability.TOOLS, Capability.JSON_MODE),
        models=("deepseek/deepseek-v3-0324", "moonshotai/kimi-k2-instruct", "meta-llama/llama-3.3-70b-instruct"),
        docs_url="https://novita.ai/docs",
    ),
    ProviderSpec(
        id="sambanova",
        alias="sambanova",
        name="SambaNova Cloud",
        base_url="https://api.sambanova.ai/v1",
        wire_format=WireFormat.OPENAI,
        auth=AuthKind.API_KEY,
        auth_header=AuthHeader.BEARER,
        capabilities=_caps(Capability.TOOLS, Capability.JSON_MODE),
        models=("Meta-Llama-3.3-70B-Instruct", "Llama-4-Maverick-17B-128E-Instruct", "DeepSeek-V3.1"),
        docs_url="https://docs.sambanova.ai",
    ),
    ProviderSpec(
        id="deepinfra",
        alias="deepinfra",
        name="DeepInfra",
        base_url="https://api.deepinfra.com/v1/openai",
        wire_format=WireFormat.OPENAI,
        auth=AuthKind.API_KEY,
        auth_header=AuthHeader.BEARER,
        capabilities=_caps(Capability.TOOLS, Capability.JSON_MODE, Capability.EMBEDDINGS),
        models=("deepseek-ai/DeepSeek-V3.2", "meta-llama/Llama-3.3-70B-Instruct-Turbo", "openai/gpt-oss-120b"),
        docs_url="https://deepinfra.com/docs/advanced/openai_api",
    ),
    ProviderSpec(
        id="huggingface",
        alias="hf",
        name="Hugging Face Inference Providers",
        base_url="https://router.huggingface.co/v1",
        wire_format=WireFormat.OPENAI,
        auth=AuthKind.API_KEY,
        auth_header=AuthHeader.BEARER,
        capabilities=_caps(Capability.TOOLS, Capability.JSON_MODE),
        models=("openai/gpt-oss-120b", "deepseek-ai/DeepSeek-R1", "MiniMaxAI/MiniMax-M2"),
        docs_url="https://huggingface.co/docs/inference-providers",
    ),
    ProviderSpec(
        id="nebius",
        alias="nebius",
        name="Nebius Token Factory",
        # Formerly Nebius AI Studio (api.studio.nebius.com); the Token Factory host is the documented one now.
        base_url="https://api.tokenfactory.nebius.com/v1",
        wire_format=WireFormat.OPENAI,
        auth=AuthKind.API_KEY,
        auth_header=AuthHeader.BEARER,
        capabilities=_caps(Capability.TOOLS, Capability.JSON_MODE, Capability.EMBEDDINGS),
        models=("deepseek-ai/DeepSeek-R1-0528", "Qwen/Qwen3-235B-A22B-Instruct-2507", "openai/gpt-oss-120b"),
        docs_url="https://docs.tokenfactory.nebius.com",
    ),
    ProviderSpec(
        id="chutes",
        alias="chutes",
        name="Chutes",
        base_url="https://llm.chutes.ai/v1",
        wire_format=WireFormat.OPENAI,
        auth=AuthKind.API_KEY,
        auth_header=AuthHeader.BEARER,
        capabilities=_caps(Capability.TOOLS),
        models=("Qwen/Qwen3-32B-TEE", "deepseek-ai/DeepSeek-V3.2-TEE", "zai-org/GLM-4.7-TEE"),
        docs_url="https://chutes.ai/docs",
    ),
    ProviderSpec(
        id="vercel",
        alias="vercel",
        name="Vercel AI Gateway",
        base_url="https://ai-gateway.vercel.sh/v1",
        wire_format=WireFormat.OPENAI,
        auth=AuthKind.API_KEY,
        auth_header=AuthHeader.BEARER,
        capabilities=_caps(Capability.TOOLS, Capability.VISION, Capability.REASONING, Capability.EMBEDDINGS),
        models=("openai/gpt-5", "anthropic/claude-sonnet-4.5", "google/gemini-2.5-pro", "zai/glm-4.7"),
        docs_url="https://vercel.com/docs/ai-gateway",
        aliases=("vercel-ai-gateway",),
    ),
)

# --------------------------------------------------------------------------------------------------------------
# Local servers (no credential; plain HTTP on the owner's own machine)
# --------------------------------------------------------------------------------------------------------------
_LOCAL_ROWS: tuple[ProviderSpec, ...] = (
    ProviderSpec(
        id="ollama",
        alias="ollama",
        name="Ollama (local)",
        base_url="http://localhost:11434/v1",
        wire_format=WireFormat.OPENAI,
        auth=AuthKind.NONE,
        auth_header=AuthHeader.NONE,
        capabilities=_caps(Capability.TOOLS, Capability.VISION, Capability.JSON_MODE, Capability.EMBEDDINGS),
        models=("gpt-oss:20b", "llama3.2", "qwen3"),
        docs_url="https://docs.ollama.com/api/openai-compatibility",
    ),
    ProviderSpec(
        id="lmstudio",
        alias="lmstudio",
        name="LM Studio (local)",
        base_url="http://localhost:1234/v1",
        wire_format=WireFormat.OPENAI,
        auth=AuthKind.NONE,
        auth_header=AuthHeader.NONE,
        capabilities=_caps(Capability.TOOLS, Capability.JSON_MODE, Capability.EMBEDDINGS),
        models=("openai/gpt-oss-20b", "openai/gpt-oss-120b"),
        docs_url="https://lmstudio.ai/docs/api/openai-api",
        aliases=("lm-studio",),
    ),
)

# --------------------------------------------------------------------------------------------------------------
# Subscription / OAuth providers. Token flows live with the companion CLI and the cloud refresher; these rows only
# say where inference goes and in which dialect. Per-account values (Copilot plan host, Codex account id, Google
# project id, Kiro profileArn, Qwen resource_url) come from the stored connection, not from here.
# --------------------------------------------------------------------------------------------------------------
_OAUTH_ROWS: tuple[ProviderSpec, ...] = (
    ProviderSpec(
        id="claude",
        alias="cc",
        name="Claude Code (Pro/Max subscription)",
        base_url="https://api.anthropic.com/v1",
        wire_format=WireFormat.ANTHROPIC,
        auth=AuthKind.OAUTH,
        auth_header=AuthHeader.BEARER,
        capabilities=_caps(Capability.TOOLS, Capability.VISION, Capability.REASONING),
        models=("claude-opus-4-6", "claude-sonnet-4-6", "claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001"),
        # The anthropic-beta list (which must carry the OAuth beta) and the client identity are built per request
        # by a quirk, because their order and content vary with the request.
        extra_headers=(_ANTHROPIC_VERSION,),
        docs_url="https://docs.anthropic.com/en/docs/claude-code/overview",
    ),
    ProviderSpec(
        id="codex",
        alias="cx",
        name="OpenAI Codex (ChatGPT subscription)",
        base_url="https://chatgpt.com/backend-api/codex",
        wire_format=WireFormat.RESPONSES,
        auth=AuthKind.OAUTH,
        auth_header=AuthHeader.BEARER,
        capabilities=_caps(Capability.TOOLS, Capability.VISION, Capability.REASONING),
        models=("gpt-5.2-codex", "gpt-5.3-codex", "gpt-5.1-codex-max", "gpt-5.2"),
        extra_headers=(("originator", "codex_cli_rs"),),
        docs_url="https://github.com/openai/codex",
    ),
    ProviderSpec(
        id="github",
        alias="gh",
        name="GitHub Copilot",
        # Default host; the token exchange may name a plan-specific host (api.business/enterprise.githubcopilot.com),
        # which is stored on the connection and wins over this one.
        base_url="https://api.githubcopilot.com",
        wire_format=WireFormat.OPENAI,
        auth=AuthKind.OAUTH,
        auth_header=AuthHeader.BEARER,
        capabilities=_caps(Capability.TOOLS, Capability.VISION, Capability.REASONING),
        models=("gpt-5-mini", "gpt-5.2", "claude-sonnet-4.5", "claude-haiku-4.5", "gemini-2.5-pro"),
        extra_headers=(
            ("copilot-integration-id", "vscode-chat"),
            ("editor-version", "vscode/1.110.0"),
            ("editor-plugin-version", "copilot-chat/0.38.0"),
            ("user-agent", "GitHubCopilotChat/0.38.0"),
            ("openai-intent", "conversation-panel"),
            ("x-github-api-version", "2025-04-01"),
        ),
        docs_url="https://docs.github.com/en/copilot",
        aliases=("copilot",),
    ),
    ProviderSpec(
        id="antigravity",
        alias="ag",
        name="Google Antigravity",
        # Primary host; https://cloudcode-pa.googleapis.com/v1internal is the documented fallback.
        # Calls are {base}:streamGenerateContent?alt=sse and friends.
        base_url="https://daily-cloudcode-pa.googleapis.com/v1internal",
        wire_format=WireFormat.CLOUD_CODE,
        auth=AuthKind.OAUTH,
        auth_header=AuthHeader.BEARER,
        capabilities=_caps(Capability.TOOLS, Capability.VISION, Capability.REASONING),
        models=("gemini-3-pro-high", "gemini-3-flash", "claude-sonnet-4-5", "claude-opus-4-5-thinking"),
    ),
    ProviderSpec(
        id="gemini-cli",
        alias="gc",
        name="Gemini CLI (Code Assist)",
        base_url="https://cloudcode-pa.googleapis.com/v1internal",
        wire_format=WireFormat.CLOUD_CODE,
        auth=AuthKind.OAUTH,
        auth_header=AuthHeader.BEARER,
        capabilities=_caps(Capability.TOOLS, Capability.VISION, Capability.REASONING),
        models=("gemini-2.5-pro", "gemini-3-flash-preview"),
        docs_url="https://github.com/google-gemini/gemini-cli",
        retired_note=(
            "Free consumer Gemini Code Assist OAuth ended on 2026-06-18; only paid Standard/Enterprise seats on a "
            "GCP project may still work."
        ),
    ),
    ProviderSpec(
        id="kiro",
        alias="kr",
        name="Kiro (AWS CodeWhisperer)",
        # Single operation: POST {base}/generateAssistantResponse, answered as an AWS binary event stream.
        base_url="https://codewhisperer.us-east-1.amazonaws.com",
        wire_format=WireFormat.KIRO,
        auth=AuthKind.OAUTH,
        auth_header=AuthHeader.BEARER,
        capabilities=_caps(Capability.TOOLS, Capability.REASONING),
        models=("claude-sonnet-4.5", "claude-haiku-4.5"),
        extra_headers=(
            ("x-amz-target", "AmazonCodeWhispererStreamingService.GenerateAssistantResponse"),
            ("accept", "application/vnd.amazon.eventstream"),
        ),
        docs_url="https://kiro.dev/docs",
    ),
    ProviderSpec(
        id="qwen",
        alias="qw",
        name="Qwen Code (OAuth)",
        # Default host; the token reply's resource_url names the real one.
        base_url="https://portal.qwen.ai/v1",
        wire_format=WireFormat.OPENAI,
        auth=AuthKind.OAUTH,
        auth_header=AuthHeader.BEARER,
        capabilities=_caps(Capability.TOOLS),
        models=("qwen3-coder-plus", "qwen3-coder-flash"),
        extra_headers=(("x-dashscope-authtype", "qwen-oauth"),),
        docs_url="https://github.com/QwenLM/qwen-code",
        retired_note="The Qwen OAuth free tier ended on 2026-04-15; use the DashScope API-key row instead.",
    ),
    ProviderSpec(
        id="iflow",
        alias="if",
        name="iFlow",
        base_url="https://apis.iflow.cn/v1",
        wire_format=WireFormat.OPENAI,
        auth=AuthKind.OAUTH,
        auth_header=AuthHeader.BEARER,
        capabilities=_caps(Capability.TOOLS),
        models=("kimi-k2-thinking", "qwen3-coder-plus", "glm-4.7", "minimax-m2", "deepseek-r1"),
        retired_note="iFlow CLI closed on 2026-04-17; its users were pointed to Qoder.",
    ),
    ProviderSpec(
        id="kimi-code",
        alias="kc",
        name="Kimi Code (OAuth)",
        # The coding subscription, separate from the Moonshot API-key row ("kimi"): other keys, other host.
        base_url="https://api.kimi.com/coding/v1",
        wire_format=WireFormat.OPENAI,
        auth=AuthKind.OAUTH,
        auth_header=AuthHeader.BEARER,
        capabilities=_caps(Capability.TOOLS, Capability.REASONING),
        models=("kimi-for-coding", "kimi-k2.6"),
        aliases=("kimi-coding",),
    ),
    ProviderSpec(
        id="grok-cli",
        alias="gk",
        name="Grok CLI (xAI OAuth)",
        # The Grok CLI proxy speaks the Responses API; with an API key use the "xai" row instead.
        base_url="https://cli-chat-proxy.grok.com/v1",
        wire_format=WireFormat.RESPONSES,
        auth=AuthKind.OAUTH,
        auth_header=AuthHeader.BEARER,
        capabilities=_caps(Capability.TOOLS, Capability.REASONING),
        models=("grok-4", "grok-code-fast-1"),
        aliases=("xai-oauth",),
    ),
)

PROVIDERS: tuple[ProviderSpec, ...] = _API_KEY_ROWS + _LOCAL_ROWS + _OAUTH_ROWS


@functools.cache
def by_prefix() -> dict[str, ProviderSpec]:
    """Map every accepted prefix (alias, id and extra aliases, lowercased) to its row.

    Built once. Raises `ValueError` if two rows claim the same prefix, so a bad edit fails loudly at first use.
    Treat the returned dict as read-only: it is shared by every caller.
    """
    index: dict[str, ProviderSpec] = {}
    for spec in PROVIDERS:
        for prefix in spec.prefixes:
            key = prefix.lower()
            owner = index.setdefault(key, spec)
            if owner is not spec:
                raise ValueError(f"prefix {key!r} is claimed by both {owner.id!r} and {spec.id!r}")
    return index


def get_provider(prefix: str) -> ProviderSpec | None:
    """Return the row for a model prefix such as ``"ds"``, ``"deepseek"`` or ``"Moonshot"``; None if unknown."""
    return by_prefix().get(prefix.strip().lower())
