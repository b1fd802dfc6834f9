"""Drives chatstudio with the official OpenAI Python SDK, as a user would.

Usage: openai_sdk.py BASE_URL API_KEY CHATBOT_ID
Prints one JSON line with what it observed; the Rust test checks it.
"""
import json
import sys

from openai import OpenAI

base, key, bot = sys.argv[1:4]
client = OpenAI(api_key=key, base_url=f"{base}/api/openai/{bot}")

plain = client.chat.completions.create(
    model="anything",
    messages=[
        {"role": "assistant", "content": "How can I help you today?"},
        {"role": "user", "content": "I need help with something."},
    ],
)

chunks = []
stream = client.chat.completions.create(
    model="anything",
    messages=[{"role": "user", "content": "stream please"}],
    stream=True,
    stream_options={"include_usage": True},
)
usage = None
for chunk in stream:
    if chunk.choices and chunk.choices[0].delta.content:
        chunks.append(chunk.choices[0].delta.content)
    if chunk.usage:
        usage = chunk.usage.total_tokens

versioned = OpenAI(api_key=key, base_url=f"{base}/api/openai/{bot}/v0").chat.completions.create(
    model="x", messages=[{"role": "user", "content": "versioned"}]
)

try:
    client.chat.completions.create(model="x", messages=[{"role": "assistant", "content": "no user"}])
    error = None
except Exception as e:  # the SDK raises BadRequestError with the envelope's message
    error = f"{type(e).__name__}: {getattr(e, 'message', e)}"

print(json.dumps({
    "plain": plain.choices[0].message.content,
    "plain_id": plain.id,
    "model": plain.model,
    "streamed": "".join(chunks),
    "stream_pieces": len(chunks),
    "usage": usage,
    "versioned": versioned.choices[0].message.content,
    "error": error,
}))
