"""examples/models.py: the local model is deterministic, and SOLO_EXAMPLES_MODEL swaps in another."""

import json

import pytest

from solo.examples.models import MODEL_ENV, LocalModel, ModelError, get_model

CONVERSATION = [
    {"role": "system", "content": "You are Kira.\n\nRelevant memories:\n- Refunds take 5 days\n- Office is in Porto"},
    {"role": "user", "content": "How long do refunds take?"},
]


class EchoModel:
    """A stand-in provider, loaded by name through the environment variable."""

    def __init__(self, name: str) -> None:
        self.name = name

    def complete(self, messages, *, max_tokens, temperature, json_output=False):
        return f"{self.name}: {messages[-1]['content']}"


def test_the_local_model_quotes_the_question_and_the_context_lines_that_match_it_first():
    reply = LocalModel().complete(CONVERSATION, max_tokens=100, temperature=0.7)
    assert reply == (
        'You asked: "How long do refunds take?". What I know that bears on it: Refunds take 5 days; Office is in Porto.'
    )
    assert LocalModel().complete(CONVERSATION, max_tokens=100, temperature=0.7) == reply
    assert LocalModel().complete(CONVERSATION, max_tokens=3, temperature=0.7) == 'You asked: "How ...'


def test_a_json_request_gets_an_analysis_of_the_last_user_message():
    said = "We have 30 students. The app keeps failing. We want to launch a new course. Thanks, great support!"
    answer = json.loads(
        LocalModel().complete([{"role": "user", "content": said}], max_tokens=500, temperature=0, json_output=True)
    )
    assert answer["key_facts"] == ["We have 30 students."]
    assert answer["pain_points"] == ["The app keeps failing."]
    assert answer["goals"] == ["We want to launch a new course."]
    assert (answer["sentiment_trend"], answer["engagement_level"], answer["risk_level"]) == (
        "neutral",
        "medium",
        "medium",
    )


def test_the_environment_variable_names_the_factory_of_another_model(monkeypatch):
    monkeypatch.setenv(MODEL_ENV, f"{__name__}:EchoModel")
    model = get_model("gpt-test")
    assert isinstance(model, EchoModel)
    assert model.complete(CONVERSATION, max_tokens=10, temperature=0) == "gpt-test: How long do refunds take?"

    monkeypatch.delenv(MODEL_ENV)
    assert isinstance(get_model("anything"), LocalModel)


@pytest.mark.parametrize("spec", ["no_colon_here", "solo.examples.models:NoSuchFactory", "no_such_module_xyz:factory"])
def test_a_bad_factory_name_is_a_clear_error(monkeypatch, spec):
    monkeypatch.setenv(MODEL_ENV, spec)
    with pytest.raises(ModelError, match=MODEL_ENV):
        get_model()
