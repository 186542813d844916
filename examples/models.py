"""A pluggable language model for the examples (Agent, Customer).

Objects talk to a model only through `LanguageModel.complete(messages, ...)`, so the
model behind it can be swapped without touching them. `get_model(name)` picks it:

- By default, `LocalModel`: deterministic and offline (same input, same output), so
  the examples and their tests run anywhere. It is a stand-in, not a language model:
  a reply quotes the last user message and the context lines that share words with
  it; a JSON request gets an analysis of the last user message made of cue words.
- `SOLO_EXAMPLES_MODEL=package.module:factory` points at a real provider instead.
  `factory(name)` gets the configured model name and returns any object with a
  matching `complete` method. For example, in `mymodels.py`:

      class OpenAIModel:
          def __init__(self, name):
              self.client, self.name = openai.OpenAI(), name

          def complete(self, messages, *, max_tokens, temperature, json_output=False):
              reply = self.client.chat.completions.create(
                  model=self.name, messages=messages, max_tokens=max_tokens, temperature=temperature,
                  response_format={"type": "json_object"} if json_output else None,
              )
              return reply.choices[0].message.content

  then run the workers with `SOLO_EXAMPLES_MODEL=mymodels:OpenAIModel`. A real model
  call runs inside the object's call: the object takes no other call meanwhile.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import re
from collections.abc import Callable
from typing import Protocol

MODEL_ENV = "SOLO_EXAMPLES_MODEL"
LOCAL_MODEL_NAME = "local"

Message = dict[str, str]  # {"role": "system" | "user" | "assistant", "content": "..."}


class LanguageModel(Protocol):
    def complete(
        self, messages: list[Message], *, max_tokens: int, temperature: float, json_output: bool = False
    ) -> str:
        """The model's reply to `messages`; with `json_output`, a JSON object as text."""
        ...


class ModelError(Exception):
    """Raised when a model cannot be loaded or its reply cannot be used."""


def get_model(name: str = LOCAL_MODEL_NAME) -> LanguageModel:
    """The model called `name`, from the factory named in SOLO_EXAMPLES_MODEL, else the local one."""
    spec = os.environ.get(MODEL_ENV, "").strip()
    if not spec:
        return LocalModel(name)
    return _factory(spec)(name)


@functools.cache
def _factory(spec: str) -> Callable[[str], LanguageModel]:
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ModelError(f"{MODEL_ENV} must look like package.module:factory, not {spec!r}")
    try:
        return getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ModelError(f"{MODEL_ENV}={spec!r} cannot be loaded: {exc}") from exc


# -- the local, deterministic stand-in -------------------------------------------------

_WORD = re.compile(r"[a-z0-9']+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_STOP_WORDS = frozenset(
    "a an and are as at be but by do does for from has have how i in is it its me my of on or our so "
    "that the their them there this to was we what when where which who why will with you your".split()
)
_PAIN_CUES = (
    "problem",
    "issue",
    "slow",
    "broken",
    "frustrat",
    "difficult",
    "struggl",
    "can't",
    "cannot",
    "too expensive",
    "bug",
    "error",
    "complain",
    "annoy",
    "fails",
    "failing",
)
_GOAL_CUES = ("want", "goal", "plan to", "hope", "looking for", "looking to", "would like", "need to", "aim")
_FACT_CUES = (
    "we are",
    "we have",
    "we use",
    "we run",
    "i am",
    "i'm",
    "our ",
    "based in",
    "employees",
    "work at",
    "my name",
)
_POSITIVE = ("great", "thanks", "thank you", "love", "happy", "good", "excellent", "pleased", "helpful")
_NEGATIVE = ("bad", "angry", "disappointed", "unhappy", "terrible", "cancel", "worst", *_PAIN_CUES)


class LocalModel:
    """Deterministic offline model: replies and analyses derived only from its input."""

    def __init__(self, name: str = LOCAL_MODEL_NAME) -> None:
        self.name = name

    def complete(
        self, messages: list[Message], *, max_tokens: int, temperature: float, json_output: bool = False
    ) -> str:
        last_user = next((m["content"] for m in reversed(messages) if m.get("role") == "user"), "")
        if json_output:
            return json.dumps(analyse(last_user))
        system = "\n".join(m["content"] for m in messages if m.get("role") == "system")
        return _truncate_words(reply(last_user, system), max_tokens)


def reply(question: str, context: str, *, at_most: int = 3) -> str:
    """Quote the question and add the context's bullet lines that share the most words with it."""
    bullets = [line[2:].strip() for line in context.splitlines() if line.startswith("- ")]
    asked = _words(question)
    ranked = sorted(enumerate(bullets), key=lambda item: (-len(asked & _words(item[1])), item[0]))
    chosen = [text.rstrip(".") for _, text in ranked[:at_most] if text]
    answer = f'You asked: "{_shorten(question.strip(), 120)}".'
    if chosen:
        answer += " What I know that bears on it: " + "; ".join(chosen) + "."
    return answer


def analyse(text: str) -> dict[str, object]:
    """Context updates read off the text by cue words: what a model would be asked to extract."""
    sentences = [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]
    pain_points = [s for s in sentences if _has_cue(s, _PAIN_CUES)]
    goals = [s for s in sentences if s not in pain_points and _has_cue(s, _GOAL_CUES)]
    key_facts = [s for s in sentences if s not in pain_points and s not in goals and _has_cue(s, _FACT_CUES)]
    score = sum(_has_cue(s, _POSITIVE) for s in sentences) - sum(_has_cue(s, _NEGATIVE) for s in sentences)
    sentiment = "positive" if score > 0 else "negative" if score < 0 else "neutral"
    engagement = "high" if len(sentences) >= 6 else "medium" if len(sentences) >= 2 else "low"
    summary = f"{len(sentences)} statements analysed; sentiment {sentiment}"
    if goals:
        summary += f"; main goal: {_shorten(goals[0], 80).rstrip('.!?')}"
    return {
        "summary": summary + ".",
        "key_facts": key_facts,
        "pain_points": pain_points,
        "goals": goals,
        "sentiment_trend": sentiment,
        "engagement_level": engagement,
        "risk_level": "high" if len(pain_points) >= 3 else "medium" if pain_points else "low",
    }


def _has_cue(sentence: str, cues: tuple[str, ...]) -> bool:
    lowered = sentence.lower()
    return any(cue in lowered for cue in cues)


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP_WORDS and len(w) > 2}


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def _truncate_words(text: str, max_words: int) -> str:
    """max_tokens, counted in words: near enough for a stand-in."""
    words = text.split(" ")
    return text if len(words) <= max_words else " ".join(words[:max_words]) + " ..."
