"""Reasoning effort (OpenAI's words) ↔ thinking token budget (Anthropic's and Gemini's numbers).

One table, used in both directions: an effort renders as its budget, and a budget reads back as the
smallest effort whose budget covers it, so effort → budget → effort is the identity.
"""

from __future__ import annotations

EFFORT_BUDGETS: dict[str, int] = {
    "minimal": 1024,  # Anthropic's smallest allowed budget
    "low": 4096,
    "medium": 8192,
    "high": 24576,
    "xhigh": 32768,
}


def budget_for(effort: str) -> int:
    return EFFORT_BUDGETS.get(effort, EFFORT_BUDGETS["medium"])


def effort_for(budget: int) -> str:
    for effort, limit in EFFORT_BUDGETS.items():
        if budget <= limit:
            return effort
    return "xhigh"
