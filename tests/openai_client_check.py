"""`pocketlm serve` checked with the official `openai` Python client.

Usage: openai_client_check.py BASE_URL API_KEY
Non-streaming and streaming chat completions (with usage), the model list,
structured output (`response_format` json_schema and json_object, an
unenforceable schema refused), tools (a call, its result and the answer;
streamed tool_calls deltas; an invalid tool refused) and a rejected key. Prints one line per check
and a final "N passed, N failed".
"""
import json
import sys

import openai

base_url, key = sys.argv[1], sys.argv[2]
client = openai.OpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=300)
results = []


def check(name, fn):
    try:
        fn()
        results.append(True)
        print(f"ok   {name}")
    except Exception as e:  # report every failure, then go on
        results.append(False)
        print(f"FAIL {name}: {type(e).__name__}: {e}")


def models():
    ids = [m.id for m in client.models.list().data]
    assert ids, "no models listed"


def non_streaming():
    r = client.chat.completions.create(
        model="local", messages=[{"role": "user", "content": "Say hello in one word."}], max_tokens=8, temperature=0)
    text = r.choices[0].message.content
    assert text and text.strip(), f"empty answer: {r}"
    assert r.choices[0].finish_reason in ("stop", "length"), r.choices[0].finish_reason
    assert r.usage.completion_tokens > 0 and r.usage.prompt_tokens > 0, r.usage


def streaming():
    stream = client.chat.completions.create(
        model="local", messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a fruit."}],
        max_tokens=8, temperature=0, stream=True, stream_options={"include_usage": True})
    parts, finish, usage = [], None, None
    for chunk in stream:
        if chunk.choices:
            parts.append(chunk.choices[0].delta.content or "")
            finish = chunk.choices[0].finish_reason or finish
        if chunk.usage:
            usage = chunk.usage
    assert "".join(parts).strip(), "empty streamed answer"
    assert finish in ("stop", "length"), finish
    assert usage and usage.completion_tokens > 0, usage


CITY_SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "enum": ["Paris", "Rome", "Berlin"]},
        "population_millions": {"type": "integer", "minimum": 0, "maximum": 40},
    },
    "required": ["city", "population_millions"],
    "additionalProperties": False,
}


def json_schema_response_format():
    r = client.chat.completions.create(
        model="local", messages=[{"role": "user", "content": "Describe the capital of France."}], max_tokens=60, temperature=0,
        response_format={"type": "json_schema", "json_schema": {"name": "city", "strict": True, "schema": CITY_SCHEMA}})
    value = json.loads(r.choices[0].message.content)
    assert set(value) == {"city", "population_millions"}, value
    assert value["city"] in ("Paris", "Rome", "Berlin") and 0 <= value["population_millions"] <= 40, value


def json_object_streaming():
    stream = client.chat.completions.create(
        model="local", messages=[{"role": "user", "content": "Give a JSON object describing a cat."}], max_tokens=120,
        temperature=0, stream=True, response_format={"type": "json_object"})
    parts, finish = [], None
    for chunk in stream:
        if chunk.choices:
            parts.append(chunk.choices[0].delta.content or "")
            finish = chunk.choices[0].finish_reason or finish
    text = "".join(parts)
    if finish == "stop":
        assert isinstance(json.loads(text), dict), text
    else:
        assert finish == "length" and text.startswith("{"), (finish, text)


def invalid_schema_is_a_bad_request():
    try:
        client.chat.completions.create(
            model="local", messages=[{"role": "user", "content": "hi"}],
            response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "array", "uniqueItems": True}}})
    except openai.BadRequestError as e:
        assert "uniqueItems" in str(e), e
        return
    raise AssertionError("an unenforceable schema was accepted")


TIMER_TOOL = {
    "type": "function",
    "function": {
        "name": "set_timer",
        "description": "Start a countdown timer.",
        "parameters": {
            "type": "object",
            "properties": {"minutes": {"type": "integer", "minimum": 1, "maximum": 180}},
            "required": ["minutes"],
            "additionalProperties": False,
        },
    },
}
TIMER_ASK = [{"role": "user", "content": "Set a timer for 10 minutes."}]


def tool_call_round_trip():
    r = client.chat.completions.create(
        model="local", messages=TIMER_ASK, tools=[TIMER_TOOL], tool_choice="required", max_tokens=60, temperature=0)
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls", choice
    call = choice.message.tool_calls[0]
    assert call.function.name == "set_timer" and call.id, call
    minutes = json.loads(call.function.arguments)["minutes"]
    assert isinstance(minutes, int) and 1 <= minutes <= 180, call.function.arguments
    # The result goes back as a `tool` message; `none` makes the model answer in text.
    followup = TIMER_ASK + [choice.message.model_dump(exclude_none=True),
                            {"role": "tool", "tool_call_id": call.id, "content": json.dumps({"ok": True})}]
    r2 = client.chat.completions.create(
        model="local", messages=followup, tools=[TIMER_TOOL], tool_choice="none", max_tokens=30, temperature=0)
    assert r2.choices[0].message.content and not r2.choices[0].message.tool_calls, r2.choices[0]


def tool_calls_streamed():
    stream = client.chat.completions.create(
        model="local", messages=TIMER_ASK, tools=[TIMER_TOOL],
        tool_choice={"type": "function", "function": {"name": "set_timer"}}, max_tokens=60, temperature=0, stream=True)
    calls, finish = {}, None
    for chunk in stream:
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        for part in delta.tool_calls or []:
            entry = calls.setdefault(part.index, {"id": None, "name": "", "arguments": ""})
            entry["id"] = part.id or entry["id"]
            if part.function:
                entry["name"] += part.function.name or ""
                entry["arguments"] += part.function.arguments or ""
        finish = chunk.choices[0].finish_reason or finish
    assert finish == "tool_calls" and len(calls) == 1, (finish, calls)
    call = calls[0]
    assert call["id"] and call["name"] == "set_timer", call
    assert isinstance(json.loads(call["arguments"])["minutes"], int), call


def bad_tool_is_a_bad_request():
    bad = {"type": "function", "function": {"name": "no spaces allowed", "parameters": {"type": "object"}}}
    try:
        client.chat.completions.create(model="local", messages=TIMER_ASK, tools=[bad], max_tokens=8)
    except openai.BadRequestError as e:
        assert "no spaces allowed" in str(e), e
        return
    raise AssertionError("an invalid tool name was accepted")


def embeddings():
    # The client asks for base64 unless told otherwise, and decodes it.
    out = client.embeddings.create(model="all-minilm-l6-v2-f16", input=["The cat sat on the mat.", "A cat is on a rug.", "Stocks fell today."])
    vectors = [d.embedding for d in out.data]
    assert len(vectors) == 3 and all(len(v) == 384 for v in vectors), [len(v) for v in vectors]
    dot = lambda a, b: sum(x * y for x, y in zip(a, b))
    assert dot(vectors[0], vectors[1]) > dot(vectors[0], vectors[2]), "the two cat sentences are closest"
    assert out.usage.prompt_tokens > 10, out.usage
    floats = client.embeddings.create(model="x", input="The cat sat on the mat.", encoding_format="float").data[0].embedding
    assert abs(dot(floats, vectors[0]) - 1) < 1e-4


def rejected_key():
    bad = openai.OpenAI(base_url=base_url, api_key="wrong", max_retries=0)
    try:
        bad.models.list()
    except openai.AuthenticationError:
        return
    raise AssertionError("a wrong key was accepted")


check("models.list", models)
check("chat.completions (non-streaming)", non_streaming)
check("chat.completions (streaming, include_usage)", streaming)
check("response_format json_schema (strict)", json_schema_response_format)
check("response_format json_object (streaming)", json_object_streaming)
check("unenforceable schema -> BadRequestError", invalid_schema_is_a_bad_request)
check("tools: call, tool result, answer", tool_call_round_trip)
check("tools: streamed tool_calls deltas (named tool_choice)", tool_calls_streamed)
check("invalid tool -> BadRequestError", bad_tool_is_a_bad_request)
check("embeddings (base64 and float)", embeddings)
check("wrong API key -> AuthenticationError", rejected_key)
passed = sum(results)
print(f"openai {openai.__version__} client check: {passed} passed, {len(results) - passed} failed")
sys.exit(0 if all(results) else 1)
