"""List prices of the catalogue's pay-per-token models, in USD per 1M tokens. Data only.

Keyed by (catalogue provider id, upstream model id as in the catalogue row). `shared.domain.pricing` turns
these rows into `Price`s and explains how each rate is billed; the owner overrides any of them with
`PATCH /api/pricing`.

Where the numbers come from (collected 2026-11; each source as of the date given):
- pydantic/genai-prices, `prices/providers/*.yml` at commit 47df840 (2026-08-21): OpenAI, Anthropic,
  Google, xAI, Mistral, Groq, Perplexity, Cohere, MiniMax, Moonshot, Fireworks, Cerebras, and the
  Hugging Face router's per-provider rows for Nebius.
- anomalyco/models.dev, `providers/*/models/*.toml` at commit f3fc692 (2026-07-02): DeepSeek, Together,
  DashScope (Alibaba Model Studio, international), SiliconFlow, Novita, DeepInfra, Hugging Face,
  Nebius, Chutes, OpenRouter, Vercel AI Gateway; it agrees with genai-prices on the first group.
- Provider rate cards as listed by gateways that resell them at cost (June 2026): SambaNova Cloud and
  Hyperbolic.
Only the base tier is recorded: a few models bill long prompts higher (OpenAI gpt-5.4 above 272K input
tokens, Gemini Pro and Claude Sonnet 4.5 above 200K), so such requests are under-counted. Per-request
fees (Perplexity's search fee) are not modelled.

Deliberately absent:
- Subscription (OAuth) and local rows: they cost nothing per token (see `FLAT_RATE_PROVIDERS` for the
  API-key rows that are flat-rate too).
- `UNPRICED`: catalogue models without a public per-token price we could confirm; they count $0 until
  the owner sets one.
"""

from __future__ import annotations

from typing import NamedTuple


class ListPrice(NamedTuple):
    """USD per 1M tokens. None: billed at the fallback rate (cached and cache writes at `input`,
    reasoning at `output`)."""

    input: float
    output: float
    cached: float | None = None
    cache_creation: float | None = None
    reasoning: float | None = None


# API-key rows billed flat (a subscription or a free tier), so every model costs $0 per token:
# glm is Z.ai's Coding Plan endpoint (a monthly plan); nvidia is the free NIM developer API.
FLAT_RATE_PROVIDERS: frozenset[str] = frozenset({"glm", "nvidia"})

LIST_PRICES: dict[tuple[str, str], ListPrice] = {
    # --- OpenAI (cache writes are free; cached input 90% off) ---
    ("openai", "gpt-5.4"): ListPrice(2.5, 15.0, cached=0.25),
    ("openai", "gpt-5.4-mini"): ListPrice(0.75, 4.5, cached=0.075),
    ("openai", "gpt-5.2"): ListPrice(1.75, 14.0, cached=0.175),
    ("openai", "gpt-5-mini"): ListPrice(0.25, 2.0, cached=0.025),
    # --- Anthropic (5-minute cache writes at 1.25× input, reads at 0.1×) ---
    ("anthropic", "claude-opus-4-6"): ListPrice(5.0, 25.0, cached=0.5, cache_creation=6.25),
    ("anthropic", "claude-sonnet-4-6"): ListPrice(3.0, 15.0, cached=0.3, cache_creation=3.75),
    ("anthropic", "claude-sonnet-4-5-20250929"): ListPrice(3.0, 15.0, cached=0.3, cache_creation=3.75),
    ("anthropic", "claude-haiku-4-5-20251001"): ListPrice(1.0, 5.0, cached=0.1, cache_creation=1.25),
    # --- Google Gemini API (paid tier) ---
    ("gemini", "gemini-3.5-flash"): ListPrice(1.5, 9.0, cached=0.15),
    ("gemini", "gemini-3.1-pro-preview"): ListPrice(2.0, 12.0, cached=0.2),
    ("gemini", "gemini-2.5-pro"): ListPrice(1.25, 10.0, cached=0.125),
    ("gemini", "gemini-2.5-flash"): ListPrice(0.3, 2.5, cached=0.03),
    # --- OpenRouter (the price of its default route) ---
    ("openrouter", "anthropic/claude-sonnet-4.5"): ListPrice(3.0, 15.0, cached=0.3, cache_creation=3.75),
    ("openrouter", "google/gemini-2.5-pro"): ListPrice(1.25, 10.0, cached=0.125),
    ("openrouter", "openai/gpt-5"): ListPrice(1.25, 10.0, cached=0.125),
    ("openrouter", "deepseek/deepseek-chat"): ListPrice(0.2002, 0.8001),
    # --- DeepSeek: since V4 (2026-04-24) deepseek-chat/-reasoner were aliases of deepseek-v4-flash,
    # retired on 2026-07-24; the V4 ids are listed too so a custom model finds its price. ---
    ("deepseek", "deepseek-chat"): ListPrice(0.14, 0.28, cached=0.0028),
    ("deepseek", "deepseek-reasoner"): ListPrice(0.14, 0.28, cached=0.0028),
    ("deepseek", "deepseek-v4-flash"): ListPrice(0.14, 0.28, cached=0.0028),
    ("deepseek", "deepseek-v4-pro"): ListPrice(0.435, 0.87, cached=0.003625),
    # --- Groq ---
    ("groq", "llama-3.3-70b-versatile"): ListPrice(0.59, 0.79),
    ("groq", "openai/gpt-oss-120b"): ListPrice(0.15, 0.6, cached=0.075),
    ("groq", "openai/gpt-oss-20b"): ListPrice(0.075, 0.3, cached=0.0375),
    ("groq", "llama-3.1-8b-instant"): ListPrice(0.05, 0.08),
    # --- xAI ---
    ("xai", "grok-4"): ListPrice(3.0, 15.0, cached=0.75),
    ("xai", "grok-4-1-fast-reasoning"): ListPrice(0.2, 0.5, cached=0.05),
    ("xai", "grok-code-fast-1"): ListPrice(0.2, 1.5, cached=0.02),
    # --- Mistral ---
    ("mistral", "mistral-medium-latest"): ListPrice(0.4, 2.0),
    ("mistral", "mistral-large-latest"): ListPrice(0.5, 1.5),
    ("mistral", "codestral-latest"): ListPrice(0.3, 0.9),
    ("mistral", "devstral-medium-latest"): ListPrice(0.4, 2.0),
    # --- Perplexity (tokens only; the per-request search fee is not modelled) ---
    ("perplexity", "sonar"): ListPrice(1.0, 1.0),
    ("perplexity", "sonar-pro"): ListPrice(3.0, 15.0),
    ("perplexity", "sonar-reasoning-pro"): ListPrice(2.0, 8.0),
    # --- Together AI ---
    ("together", "meta-llama/Llama-3.3-70B-Instruct-Turbo"): ListPrice(0.88, 0.88),
    ("together", "openai/gpt-oss-120b"): ListPrice(0.15, 0.6),
    ("together", "deepseek-ai/DeepSeek-V3.1"): ListPrice(0.6, 1.7),
    # --- Fireworks AI ---
    ("fireworks", "accounts/fireworks/models/gpt-oss-120b"): ListPrice(0.15, 0.6, cached=0.014),
    # --- Cerebras ---
    ("cerebras", "gpt-oss-120b"): ListPrice(0.35, 0.75),
    # --- Cohere ---
    ("cohere", "command-a-03-2025"): ListPrice(2.5, 10.0),
    ("cohere", "command-r-plus-08-2024"): ListPrice(2.5, 10.0),
    ("cohere", "command-r7b-12-2024"): ListPrice(0.0375, 0.15),
    # --- MiniMax ---
    ("minimax", "MiniMax-M2.7"): ListPrice(0.3, 1.2, cached=0.06, cache_creation=0.375),
    ("minimax", "MiniMax-M2.5"): ListPrice(0.3, 1.2, cached=0.03, cache_creation=0.375),
    ("minimax", "MiniMax-M2.1"): ListPrice(0.3, 1.2, cached=0.03, cache_creation=0.375),
    # --- Moonshot AI (Kimi API) ---
    ("kimi", "kimi-k2.6"): ListPrice(0.95, 4.0, cached=0.16),
    ("kimi", "kimi-k2.5"): ListPrice(0.6, 3.0, cached=0.1),
    # --- DashScope, international (lowest input-length tier; thinking-mode output at `reasoning`) ---
    ("dashscope", "qwen-plus"): ListPrice(0.4, 1.2, reasoning=4.0),
    ("dashscope", "qwen-max"): ListPrice(1.6, 6.4),
    ("dashscope", "qwen-turbo"): ListPrice(0.05, 0.2, reasoning=0.5),
    ("dashscope", "qwen3-coder-plus"): ListPrice(1.0, 5.0),
    # --- SiliconFlow (global) ---
    ("siliconflow", "deepseek-ai/DeepSeek-V4-Pro"): ListPrice(1.74, 3.48, cached=0.145),
    ("siliconflow", "deepseek-ai/DeepSeek-R1"): ListPrice(0.5, 2.18),
    # --- Hyperbolic ---
    ("hyperbolic", "deepseek-ai/DeepSeek-V3"): ListPrice(0.25, 0.25),
    ("hyperbolic", "Qwen/Qwen2.5-72B-Instruct"): ListPrice(0.4, 0.4),
    ("hyperbolic", "openai/gpt-oss-120b"): ListPrice(0.3, 0.3),
    # --- Novita AI ---
    ("novita", "deepseek/deepseek-v3-0324"): ListPrice(0.27, 1.12, cached=0.135),
    ("novita", "moonshotai/kimi-k2-instruct"): ListPrice(0.57, 2.3),
    ("novita", "meta-llama/llama-3.3-70b-instruct"): ListPrice(0.135, 0.4),
    # --- SambaNova Cloud ---
    ("sambanova", "Meta-Llama-3.3-70B-Instruct"): ListPrice(0.6, 1.2),
    ("sambanova", "Llama-4-Maverick-17B-128E-Instruct"): ListPrice(0.63, 1.8),
    ("sambanova", "DeepSeek-V3.1"): ListPrice(3.0, 4.5),
    # --- DeepInfra ---
    ("deepinfra", "deepseek-ai/DeepSeek-V3.2"): ListPrice(0.26, 0.38, cached=0.13),
    ("deepinfra", "meta-llama/Llama-3.3-70B-Instruct-Turbo"): ListPrice(0.1, 0.32),
    ("deepinfra", "openai/gpt-oss-120b"): ListPrice(0.039, 0.19),
    # --- Hugging Face Inference Providers (the router's default route) ---
    ("huggingface", "openai/gpt-oss-120b"): ListPrice(0.25, 0.69),
    ("huggingface", "deepseek-ai/DeepSeek-R1"): ListPrice(0.7, 2.5),
    ("huggingface", "MiniMaxAI/MiniMax-M2"): ListPrice(0.3, 1.2),
    # --- Nebius Token Factory ---
    ("nebius", "deepseek-ai/DeepSeek-R1-0528"): ListPrice(0.8, 2.4),
    ("nebius", "Qwen/Qwen3-235B-A22B-Instruct-2507"): ListPrice(0.2, 0.6),
    ("nebius", "openai/gpt-oss-120b"): ListPrice(0.15, 0.6, cached=0.015, cache_creation=0.18),
    # --- Chutes ---
    ("chutes", "Qwen/Qwen3-32B-TEE"): ListPrice(0.104, 0.416, cached=0.052),
    ("chutes", "deepseek-ai/DeepSeek-V3.2-TEE"): ListPrice(1.0, 1.0, cached=0.5),
    # --- Vercel AI Gateway (the underlying providers' list prices, no markup) ---
    ("vercel", "openai/gpt-5"): ListPrice(1.25, 10.0, cached=0.125),
    ("vercel", "anthropic/claude-sonnet-4.5"): ListPrice(3.0, 15.0, cached=0.3, cache_creation=3.75),
    ("vercel", "google/gemini-2.5-pro"): ListPrice(1.25, 10.0, cached=0.125),
    ("vercel", "zai/glm-4.7"): ListPrice(0.6, 2.2, cached=0.12),
}

# Catalogue models of pay-per-token rows with no price here, and why.
UNPRICED: dict[tuple[str, str], str] = {
    ("fireworks", "accounts/fireworks/models/deepseek-v3p1"): "no longer on Fireworks' serverless price list",
    ("fireworks", "accounts/fireworks/models/kimi-k2-instruct-0905"): "no longer on Fireworks' serverless price list",
    ("cerebras", "gemma-4-31b"): "no published per-token price found",
    ("siliconflow", "Qwen/Qwen2.5-Coder-32B-Instruct"): "no published per-token price found",
    ("chutes", "zai-org/GLM-4.7-TEE"): "no published per-token price found",
}
